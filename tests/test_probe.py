"""The probe start (LP-FT) and the shared theta0 sweep, on tiny random models.

References do not share the code under test: head logits are checked against the model's own full
forward, the shared sweep's importance against the full per-checkpoint ablation sweep.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import headplast.model.adapters as adapters
from headplast.io import ArtifactError
from headplast.measure.importance import ablation_sweep
from headplast.measure.shared_sweep import (
    Theta0Sweep,
    importance_from_theta0_sweep,
    theta0_hidden_sweep,
)
from headplast.model.adapters import UnsupportedModelError, resolve_head
from headplast.model.head import EncoderMismatchError, first_token_features, head_logits
from headplast.model.tiny import tiny_model
from headplast.train.probe import (
    ProbeFeatures,
    compute_probe_features,
    evaluate_head,
    fit_probe,
    holdout_split,
    merge_probe_hparams,
    probe_checkpoint,
)
from tests.conftest import random_batches, tiny_bert, tiny_deberta
from tests.make_tiny_model import make_tiny_model


def tiny_roberta(seed: int = 0):
    return tiny_model("roberta", seed, num_hidden_layers=2)


def tiny_electra(seed: int = 0):
    return tiny_model("electra", seed, num_hidden_layers=2)


BUILDERS = {"bert": tiny_bert, "deberta": tiny_deberta, "roberta": tiny_roberta}


def _encoder_state(model, head=None) -> dict[str, torch.Tensor]:
    head = head or resolve_head(model)
    return {k: v.clone() for k, v in model.state_dict().items() if head.is_encoder(k)}


def _assert_encoders_equal(a, b) -> None:
    sa, sb = _encoder_state(a), _encoder_state(b)
    assert sa.keys() == sb.keys() and len(sa) > 10
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _same_encoder_new_head(model, seed: int):
    """Another seed's theta0: the same encoder, a head initialised from ``seed``."""
    torch.manual_seed(seed)
    other = type(model)(model.config).eval()
    head = resolve_head(model)
    other.load_state_dict(_encoder_state(model, head), strict=False)
    return other


def _marked_batches(n: int, seed: int, max_len: int = 10) -> list[dict[str, torch.Tensor]]:
    """Learnable data: the first token (the one the head reads) names the label."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 128, (n, max_len), generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    ids[:, 0] = 5 + labels
    return [{"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}]


# --------------------------------------------------------------------------------- adapter table


def test_head_split_per_family():
    expect = {
        "bert": {"bert.pooler", "classifier"},
        "deberta": {"pooler", "classifier"},  # DeBERTa's ContextPooler is outside the base model
        "roberta": {"classifier"},  # RobertaClassificationHead: dense + out_proj
    }
    for name, build in BUILDERS.items():
        model = build()
        head = resolve_head(model)
        assert set(head.head_modules) == expect[name]
        assert head.head_reads_first_token
        names = {n for n, _ in model.named_parameters()}
        outside = {n for n in names if not head.is_encoder(n)}
        assert outside == set(head.head_parameters)
    roberta = set(resolve_head(tiny_roberta()).head_parameters)
    assert roberta == {
        f"classifier.{m}.{p}" for m in ("dense", "out_proj") for p in ("weight", "bias")
    }
    electra = resolve_head(tiny_electra())  # the embedding projection is part of the encoder
    assert electra.is_encoder("electra.embeddings_project.weight")
    assert set(electra.head_modules) == {"classifier"}


@pytest.mark.parametrize("family", list(BUILDERS))
def test_head_logits_equal_the_full_forward(family):
    model = BUILDERS[family]()
    batches = random_batches(2, 5, 12, token_types=family != "roberta")
    features, labels = first_token_features(model, batches)
    with torch.no_grad():
        ref = torch.cat(
            [model(**{k: v for k, v in b.items() if k != "labels"}).logits for b in batches]
        )
        got = head_logits(model, features, chunk=3)
    assert features.shape == (10, 32) and torch.equal(
        labels, torch.cat([b["labels"] for b in batches])
    )
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_head_reading_more_than_the_first_token_is_refused(monkeypatch):
    patched = tuple(
        dataclasses.replace(a, head_reads_first_token=False) if a.family == "bert" else a
        for a in adapters.ADAPTERS
    )
    monkeypatch.setattr(adapters, "ADAPTERS", patched)
    model = tiny_bert()
    with pytest.raises(UnsupportedModelError, match="'bert'.*more than the first token"):
        first_token_features(model, random_batches(1))
    with pytest.raises(UnsupportedModelError, match="starts: \\[random\\]"):
        theta0_hidden_sweep(model, random_batches(1))


# ------------------------------------------------------------------------------------------ probe


@pytest.mark.parametrize("family", ["bert", "deberta"])
def test_probe_learns_and_changes_only_the_head(family):
    model = BUILDERS[family]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = resolve_head(model)
    x_train, y_train = first_token_features(model, _marked_batches(150, 0))
    x_val, y_val = first_token_features(model, _marked_batches(150, 1))
    chance = evaluate_head(model, x_val, y_val)["accuracy"]
    losses = fit_probe(
        model,
        x_train,
        y_train,
        epochs=10,
        learning_rate=1e-2,
        batch_size=50,
        weight_decay=0.0,
        seed=0,
    ).train_loss
    after = evaluate_head(model, x_val, y_val)
    assert losses[-1] < losses[0] / 5
    assert after["accuracy"] >= 0.95 > chance + 0.2
    state = model.state_dict()
    for k, v in before.items():
        if head.is_encoder(k):
            assert torch.equal(v, state[k]), f"encoder tensor {k} changed"
    for k in head.head_parameters:
        assert not torch.equal(before[k], state[k]), f"head tensor {k} unchanged"
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_probe_is_deterministic_in_the_seed():
    def run(seed):
        model = tiny_bert()
        x, y = first_token_features(model, _marked_batches(60, 0))
        fit_probe(
            model, x, y, epochs=2, learning_rate=1e-2, batch_size=16, weight_decay=0.01, seed=seed
        )
        return model.classifier.weight.detach().clone()

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_probe_hparams_checked():
    assert merge_probe_hparams({"epochs": 3})["epochs"] == 3
    with pytest.raises(ValueError, match="unknown `probe` key.*'epoch'"):
        merge_probe_hparams({"epoch": 3})
    with pytest.raises(ValueError, match="probe.batch_size"):
        merge_probe_hparams({"batch_size": 0})
    with pytest.raises(ValueError, match="probe.patience"):
        merge_probe_hparams({"patience": 0})
    with pytest.raises(ValueError, match=r"probe.holdout_fraction.*\[0, 1\)"):
        merge_probe_hparams({"holdout_fraction": 1.0})


def test_holdout_split_is_the_same_for_every_seed_and_disjoint():
    fit, held = holdout_split(50, 0.1)
    assert held.numel() == 5 and fit.numel() == 45
    assert sorted(fit.tolist() + held.tolist()) == list(range(50))
    assert torch.equal(held, holdout_split(50, 0.1)[1])  # no training seed in it
    assert holdout_split(50, 0.0)[1].numel() == 0
    assert holdout_split(3, 0.01)[1].numel() == 1 and holdout_split(3, 0.99)[0].numel() == 1


def test_early_stopping_keeps_the_head_of_the_lowest_held_out_loss():
    """A learning rate high enough to overfit 30 random-label examples: the held-out loss rises
    after its minimum, fitting stops `patience` epochs later, and the saved head is the best
    epoch's (its held-out loss, recomputed, is the minimum recorded)."""
    model = tiny_bert()
    x, y = first_token_features(model, _marked_batches(60, 0))
    y = torch.randint(0, 3, y.shape, generator=torch.Generator().manual_seed(0))  # noise labels
    held = (x[30:], y[30:])
    fit = fit_probe(
        model,
        x[:30],
        y[:30],
        epochs=200,
        learning_rate=3e-2,
        batch_size=None,
        weight_decay=0.0,
        seed=0,
        held_out=held,
        patience=3,
    )
    best = int(np.argmin(fit.held_out_loss)) + 1
    assert fit.best_epoch == best < len(fit.train_loss) == best + 3 < 200
    assert len(fit.held_out_loss) == len(fit.train_loss)
    kept = evaluate_head(model, *held)["loss"]
    assert kept == pytest.approx(fit.held_out_loss[best - 1], abs=1e-6)
    assert kept < fit.held_out_loss[-1]


def _write_pairs(tmp_path: Path) -> None:
    rng = random.Random(0)
    for name, n in (("train", 40), ("validation", 20)):
        with open(tmp_path / f"{name}.jsonl", "w") as fh:
            for _ in range(n):
                label = rng.randint(0, 1)
                row = {
                    "premise": ("yes " if label else "no ") + "the cat sat",
                    "hypothesis": "a dog",
                }
                fh.write(json.dumps({**row, "label": label}) + "\n")


def test_probe_checkpoint_on_disk(tmp_path):
    """Features computed once from one seed's theta0 serve another seed's probe (same encoder);
    the saved probe theta0 reloads with the random theta0's encoder bit for bit, its head
    changed, and a record whose validation numbers are the saved model's."""
    from headplast.measure.stage import load_checkpoint
    from headplast.train.theta0 import init_checkpoint

    src = make_tiny_model(str(tmp_path / "src"))
    init_dir, probe_dir = tmp_path / "random" / "ckpt_init", tmp_path / "probe" / "ckpt_init"
    init_checkpoint(src, 2, 1, init_dir)
    init_checkpoint(src, 2, 2, tmp_path / "seed2")
    _write_pairs(tmp_path)
    features = tmp_path / "probe_features.safetensors"
    info = compute_probe_features(
        tmp_path / "seed2", tmp_path / "train.jsonl", tmp_path / "validation.jsonl", features,
        max_length=32, max_train_samples=30,
    )  # fmt: skip
    assert info["n_train"] == 30 and info["n_validation"] == 20
    loaded = ProbeFeatures.load(features)
    assert loaded.n_train_all == 40 and loaded.train.shape == (30, 32)
    hp = {"epochs": 3, "learning_rate": 1e-2, "batch_size": None, "weight_decay": 0.0}
    record = probe_checkpoint(init_dir, features, probe_dir, hparams=hp, seed=1)
    assert (probe_dir / "model.safetensors").exists() and (probe_dir / "config.json").exists()
    assert (probe_dir / "tokenizer.json").exists() or (probe_dir / "vocab.txt").exists()
    assert record["hparams"]["epochs"] == 3 and record["epochs_run"] <= 3
    assert len(record["train_loss_per_epoch"]) == len(record["held_out_loss_per_epoch"])
    assert record["n_train_examples"] == 27 and record["n_held_out_examples"] == 3
    assert set(record["head_modules"]) == {"bert.pooler", "classifier"}
    assert record["n_train_split"] == 40 and record["validation_majority_rate"] >= 0.5
    json.dumps(record, allow_nan=False)
    random_model, _ = load_checkpoint(init_dir, torch.device("cpu"))
    probe_model, _ = load_checkpoint(probe_dir, torch.device("cpu"))
    _assert_encoders_equal(random_model, probe_model)
    assert not torch.equal(random_model.classifier.weight, probe_model.classifier.weight)
    assert not torch.equal(
        random_model.bert.pooler.dense.weight, probe_model.bert.pooler.dense.weight
    )
    # the record's validation numbers are the saved model's, on the features' validation split
    x_val, y_val = loaded.validation, loaded.validation_labels
    assert evaluate_head(probe_model, x_val, y_val) == pytest.approx(
        record["validation"]["probe"], abs=1e-6
    )


def test_probe_features_of_another_encoder_are_refused(tmp_path):
    from headplast.train.theta0 import init_checkpoint

    other = make_tiny_model(str(tmp_path / "other"))
    init_checkpoint(other, 2, 1, tmp_path / "theta0")
    x, y = torch.zeros(4, 32), torch.zeros(4, dtype=torch.long)
    ProbeFeatures(x, y, x.clone(), y.clone(), "0" * 64, 4).save(tmp_path / "f.safetensors")
    with pytest.raises(EncoderMismatchError, match="another encoder.*probe_features"):
        probe_checkpoint(
            tmp_path / "theta0", tmp_path / "f.safetensors", tmp_path / "out",
            hparams={"epochs": 1}, seed=1,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ArtifactError, match="not a probe features file"):
        ProbeFeatures.load(tmp_path / "bad.safetensors")


# ------------------------------------------------------------------------------ shared theta0 sweep


def _rows_close(a: list[dict], b: list[dict], tol: float = 1e-6) -> None:
    assert len(a) == len(b) > 0
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert abs(ra[k] - rb[k]) <= tol, (k, ra, rb)


@pytest.mark.parametrize("family", ["bert", "deberta"])
def test_shared_sweep_equals_the_full_sweep_for_every_seed_and_start(family, tmp_path):
    """One sweep of the first seed's theta0 gives each seed's and each start's importance_pre rows
    as the full per-checkpoint sweep does; all theta0s share the encoder bit for bit."""
    batches = random_batches(3, 6, 12, seed=1)
    theta0 = {("random", 1): BUILDERS[family](seed=1)}
    theta0[("random", 2)] = _same_encoder_new_head(theta0[("random", 1)], seed=2)
    for seed in (1, 2):  # the probe start of each seed: its random theta0 after probing
        probe = copy.deepcopy(theta0[("random", seed)])
        x, y = first_token_features(probe, _marked_batches(60, seed))
        fit_probe(
            probe, x, y, epochs=3, learning_rate=1e-2, batch_size=None, weight_decay=0.0, seed=seed
        )
        theta0[("probe", seed)] = probe
    first = theta0[("random", 1)]
    for model in theta0.values():
        _assert_encoders_equal(first, model)
    assert not torch.equal(
        theta0[("random", 1)].classifier.weight, theta0[("random", 2)].classifier.weight
    )
    assert not torch.equal(
        theta0[("random", 1)].classifier.weight, theta0[("probe", 1)].classifier.weight
    )

    theta0_hidden_sweep(first, batches, sweep_tokens=150).save(
        tmp_path / "theta0_sweep.safetensors"
    )
    sweep = Theta0Sweep.load(tmp_path / "theta0_sweep.safetensors")
    L, H = first.config.num_hidden_layers, first.config.num_attention_heads
    assert sweep.ablate.shape == (L, H, 18, 32) and sweep.ablate.dtype == torch.float32
    for key, model in theta0.items():
        full = ablation_sweep(model, batches, sweep_tokens=150)
        shared = importance_from_theta0_sweep(model, sweep)
        _rows_close(full.rows(), shared.rows())
        assert np.ptp(shared.importance) > 0, key


def test_shared_sweep_refuses_another_encoder():
    batches = random_batches(1, 4, 8)
    sweep = theta0_hidden_sweep(tiny_bert(seed=0), batches)
    with pytest.raises(EncoderMismatchError, match="encoder differs"):
        importance_from_theta0_sweep(tiny_bert(seed=5), sweep)


def test_sweep_file_checked(tmp_path):
    bad = Path(tmp_path / "x.safetensors")
    bad.write_bytes(b"not safetensors")
    with pytest.raises(Exception, match="not a theta0 sweep"):
        Theta0Sweep.load(bad)
