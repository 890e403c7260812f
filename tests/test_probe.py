"""The probe start (LP-FT) and the shared theta0 sweep, on tiny random models.

References do not share the code under test: head logits are checked against the model's own full
forward, the shared sweep's importance against the full per-checkpoint ablation sweep.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import headplast.model.adapters as adapters
from headplast.io import ArtifactError, save_tensors
from headplast.measure.importance import ablation_sweep
from headplast.measure.shared_sweep import (
    Theta0Sweep,
    importance_from_theta0_sweep,
    measure_importance_shared,
    measure_theta0_sweep,
    theta0_hidden_sweep,
)
from headplast.model.adapters import UnsupportedModelError, resolve_classifier
from headplast.model.classifier import EncoderMismatchError, classifier_logits, pooled_features
from headplast.model.tiny import tiny_model
from headplast.train.defaults import PROBE_DEFAULTS
from headplast.train.probe import (
    ProbeFeatures,
    compute_probe_features,
    evaluate_classifier,
    fit_probe,
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


def _encoder_state(model, classifier=None) -> dict[str, torch.Tensor]:
    classifier = classifier or resolve_classifier(model)
    return {k: v.clone() for k, v in model.state_dict().items() if classifier.is_encoder(k)}


def _assert_encoders_equal(a, b) -> None:
    sa, sb = _encoder_state(a), _encoder_state(b)
    assert sa.keys() == sb.keys() and len(sa) > 10
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _same_encoder_new_head(model, seed: int):
    """Another seed's theta0: the same encoder, a head initialised from ``seed``."""
    torch.manual_seed(seed)
    other = type(model)(model.config).eval()
    classifier = resolve_classifier(model)
    other.load_state_dict(_encoder_state(model, classifier), strict=False)
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
        classifier = resolve_classifier(model)
        assert set(classifier.classifier_modules) == expect[name]
        assert classifier.pooling == "first"
        names = {n for n, _ in model.named_parameters()}
        outside = {n for n in names if not classifier.is_encoder(n)}
        assert outside == set(classifier.classifier_parameters)
    roberta = set(resolve_classifier(tiny_roberta()).classifier_parameters)
    assert roberta == {
        f"classifier.{m}.{p}" for m in ("dense", "out_proj") for p in ("weight", "bias")
    }
    electra = resolve_classifier(tiny_electra())  # the embedding projection is part of the encoder
    assert electra.is_encoder("electra.embeddings_project.weight")
    assert set(electra.classifier_modules) == {"classifier"}


@pytest.mark.parametrize("family", list(BUILDERS))
def test_classifier_logits_equal_the_full_forward(family):
    model = BUILDERS[family]()
    batches = random_batches(2, 5, 12, token_types=family != "roberta")
    features, labels = pooled_features(model, batches)
    with torch.no_grad():
        ref = torch.cat(
            [model(**{k: v for k, v in b.items() if k != "labels"}).logits for b in batches]
        )
        got = classifier_logits(model, features, chunk=3)
    assert features.shape == (10, 32) and torch.equal(
        labels, torch.cat([b["labels"] for b in batches])
    )
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_head_reading_an_unknown_pooling_is_refused(monkeypatch):
    patched = tuple(
        dataclasses.replace(a, pooling="attention") if a.family == "bert" else a
        for a in adapters.ADAPTERS
    )
    monkeypatch.setattr(adapters, "ADAPTERS", patched)
    model = tiny_bert()
    with pytest.raises(UnsupportedModelError, match="'bert'.*none of the poolings.*'attention'"):
        pooled_features(model, random_batches(1))
    with pytest.raises(UnsupportedModelError, match="starts: \\[random\\]"):
        theta0_hidden_sweep(model, random_batches(1))


# ------------------------------------------------------------------------------------------ probe


@pytest.mark.parametrize("family", ["bert", "deberta"])
def test_probe_learns_and_changes_only_the_head(family):
    model = BUILDERS[family]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    classifier = resolve_classifier(model)
    x_train, y_train = pooled_features(model, _marked_batches(150, 0))
    x_val, y_val = pooled_features(model, _marked_batches(150, 1))
    chance = evaluate_classifier(model, x_val, y_val)["accuracy"]
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
    after = evaluate_classifier(model, x_val, y_val)
    assert losses[-1] < losses[0] / 5
    assert after["accuracy"] >= 0.95 > chance + 0.2
    state = model.state_dict()
    for k, v in before.items():
        if classifier.is_encoder(k):
            assert torch.equal(v, state[k]), f"encoder tensor {k} changed"
    for k in classifier.classifier_parameters:
        assert not torch.equal(before[k], state[k]), f"head tensor {k} unchanged"
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_probe_is_deterministic_in_the_seed():
    def run(seed):
        model = tiny_bert()
        x, y = pooled_features(model, _marked_batches(60, 0))
        fit_probe(
            model, x, y, epochs=2, learning_rate=1e-2, batch_size=16, weight_decay=0.01, seed=seed
        )
        return model.classifier.weight.detach().clone()

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_probe_hparams_checked():
    """The config's block over the defaults; 1 is the smallest value allowed, 0 the first
    refused; the held-out part is the task's selection rows now, so `holdout_fraction` is an
    unknown key."""
    assert merge_probe_hparams({"epochs": 3}) == {**PROBE_DEFAULTS, "epochs": 3}
    edge = {"epochs": 1, "batch_size": 1, "max_train_samples": 1, "patience": 1}
    assert merge_probe_hparams(edge) == {**PROBE_DEFAULTS, **edge}
    with pytest.raises(ValueError, match="unknown `probe` key.*'epoch'"):
        merge_probe_hparams({"epoch": 3})
    with pytest.raises(ValueError, match="unknown `probe` key.*'holdout_fraction'"):
        merge_probe_hparams({"holdout_fraction": 0.1})
    with pytest.raises(ValueError, match="probe.batch_size"):
        merge_probe_hparams({"batch_size": 0})
    with pytest.raises(ValueError, match="probe.patience"):
        merge_probe_hparams({"patience": 0})
    with pytest.raises(ValueError, match="probe.max_train_samples"):
        merge_probe_hparams({"max_train_samples": 0})


def test_early_stopping_keeps_the_head_of_the_lowest_held_out_loss():
    """Learnable train rows, held-out rows with every third label wrong: the held-out loss goes
    up, then down to its minimum at epoch 4, then up as the head fits the train rows; fitting
    stops `patience` (3) epochs after the minimum, and the saved head is the best epoch's (its
    held-out loss, recomputed, is the minimum recorded)."""
    model = tiny_bert()
    x, y = pooled_features(model, _marked_batches(60, 0))
    y_held = y[30:].clone()
    y_held[::3] = (y_held[::3] + 1) % 3
    held = (x[30:], y_held)
    fit = fit_probe(
        model, x[:30], y[:30], epochs=40, learning_rate=1e-2, batch_size=10, weight_decay=0.0,
        seed=0, held_out=held, patience=3,
    )  # fmt: skip
    losses = fit.held_out_loss
    assert len(losses) == len(fit.train_loss) == 7
    assert losses[1] > losses[0] > losses[2] > losses[3] < losses[4] < losses[5] < losses[6]
    assert fit.best_epoch == 4 == int(np.argmin(losses)) + 1
    kept = evaluate_classifier(model, *held)["loss"]
    assert kept == pytest.approx(losses[3], abs=1e-6)
    assert kept < losses[-1]


def test_early_stopping_needs_a_strictly_lower_held_out_loss():
    """With learning rate 0 the held-out loss is the same every epoch: an equal loss is no
    improvement, so fitting stops after `patience` epochs and keeps the first epoch's head."""
    model = tiny_bert()
    x, y = pooled_features(model, _marked_batches(40, 0))
    fit = fit_probe(
        model, x[:30], y[:30], epochs=10, learning_rate=0.0, batch_size=None, weight_decay=0.0,
        seed=0, held_out=(x[30:], y[30:]), patience=2,
    )  # fmt: skip
    assert len(fit.held_out_loss) == 3 and len(set(fit.held_out_loss)) == 1
    assert fit.best_epoch == 1


def test_non_finite_probe_loss_stops_the_fit_and_restores_the_flags():
    """A learning rate that blows the head up: fitting stops in the first epoch, naming it and the
    config key to lower, and every parameter's requires_grad is back as it was (a frozen one
    too)."""
    model = tiny_bert()
    x, y = pooled_features(model, _marked_batches(16, 0))
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    with pytest.raises(
        FloatingPointError, match=r"probe loss is (nan|inf) in epoch 1; lower `probe.learning_rate`"
    ):
        fit_probe(
            model, x, y, epochs=3, learning_rate=float("inf"), batch_size=4, weight_decay=0.0,
            seed=0,
        )  # fmt: skip
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    assert flags.pop("bert.embeddings.word_embeddings.weight") is False and all(flags.values())


def _plain_adamw_losses(model, x, y, *, epochs, lr, batch_size, weight_decay, seed):
    """The reference fit: AdamW on the head parameters over minibatches of a permutation drawn
    from a generator seeded ``seed`` each epoch; per epoch the example-weighted mean loss."""
    classifier = resolve_classifier(model)
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW(
        [named[n] for n in classifier.classifier_parameters], lr=lr, weight_decay=weight_decay
    )
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for idx in order.split(batch_size):
            loss = torch.nn.functional.cross_entropy(classifier_logits(model, x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(y))
    return losses


def test_fit_probe_equals_a_plain_adamw_loop():
    """fit_probe without a held-out part is AdamW with the given learning rate and weight decay
    over seeded minibatches (the last one smaller: 40 rows in 16, 16, 8), its per-epoch loss the
    example-weighted mean; ``batch_size: None`` is one batch of every row. Same losses and head."""
    model = tiny_bert()
    x, y = pooled_features(model, _marked_batches(40, 0))
    for batch_size, weight_decay in ((16, 0.0), (None, 0.5)):
        fitted, ref = copy.deepcopy(model), copy.deepcopy(model)
        fit = fit_probe(
            fitted, x, y, epochs=2, learning_rate=3e-2, batch_size=batch_size,
            weight_decay=weight_decay, seed=5,
        )  # fmt: skip
        want = _plain_adamw_losses(
            ref, x, y, epochs=2, lr=3e-2, batch_size=batch_size or 40,
            weight_decay=weight_decay, seed=5,
        )  # fmt: skip
        assert fit.train_loss == pytest.approx(want, rel=1e-6)
        assert fit.held_out_loss == [] and fit.best_epoch == 2
        for name in resolve_classifier(model).classifier_parameters:
            got, exp = fitted.get_parameter(name), ref.get_parameter(name)
            torch.testing.assert_close(got, exp, rtol=0, atol=1e-6, msg=name)


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


@pytest.fixture(scope="module")
def probe_inputs(tmp_path_factory):
    """Two seeds' random theta0 of one tiny BERT (the same encoder, seeds 1 and 2), a 40/20 pair
    split with 4 selection rows drawn from the train split (selection.json), and the probe
    features computed from seed 2's theta0 on 30 of the other 36 train rows."""
    from headplast.data.selection import selection_record
    from headplast.io import write_json
    from headplast.train.theta0 import init_checkpoint

    root = tmp_path_factory.mktemp("probe")
    src = make_tiny_model(str(root / "src"))
    init_dir = root / "random" / "ckpt_init"
    init_checkpoint(src, 2, 1, init_dir)
    init_checkpoint(src, 2, 2, root / "seed2")
    _write_pairs(root)
    selection = selection_record({"fraction": 0.1}, _labels(root / "train.jsonl"), 20)
    write_json(root / "selection.json", selection)
    features = root / "probe_features.safetensors"
    info = compute_probe_features(
        root / "seed2", root / "train.jsonl", root / "validation.jsonl", features,
        max_length=32, tokens_per_batch=8192, max_train_samples=30,
        selection_path=root / "selection.json",
    )  # fmt: skip
    return {
        "root": root,
        "init_dir": init_dir,
        "features": features,
        "info": info,
        "selection": selection["indices"],
    }


def _labels(path: Path) -> list[int]:
    return [json.loads(line)["label"] for line in path.read_text().splitlines()]


def test_probe_features_subsample_and_max_length(probe_inputs):
    """The probe features hold the train rows fine-tuning uses (the train split less the
    selection rows, then a sorted sample drawn with SUBSAMPLE_SEED; every row without
    ``max_train_samples``), the selection rows apart, and every split is encoded with
    ``max_length``: truncating the pairs changes the train and the validation features. Without
    a selection record the validation split is the held-out part."""
    from headplast.train.defaults import SUBSAMPLE_SEED

    root, chosen = probe_inputs["root"], probe_inputs["selection"]
    train, val = _labels(root / "train.jsonl"), _labels(root / "validation.jsonl")
    info = probe_inputs["info"]
    assert set(info) == {
        "device", "n_train", "n_selection", "selection_split", "n_validation", "seconds",
    }  # fmt: skip
    assert (info["n_train"], info["n_selection"], info["n_validation"]) == (30, 4, 20)
    assert info["selection_split"] == "train" and len(chosen) == 4
    loaded = ProbeFeatures.load(probe_inputs["features"])
    kept = [i for i in range(40) if i not in chosen]
    sample = [kept[i] for i in sorted(random.Random(SUBSAMPLE_SEED).sample(range(36), 30))]
    assert not set(sample) & set(chosen)
    # every pair has the same length in tokens, so batch order is file order
    assert loaded.train_labels.tolist() == [train[i] for i in sample]
    assert loaded.selection_labels.tolist() == [train[i] for i in chosen]
    assert loaded.validation_labels.tolist() == val
    assert loaded.n_train_all == 40 and loaded.train.shape == (30, 32)
    assert loaded.selection.shape == (4, 32) and loaded.selection_split == "train"
    assert loaded.validation.shape == (20, 32) and loaded.train.dtype == torch.float32
    short = root / "short.safetensors"
    info = compute_probe_features(
        root / "seed2", root / "train.jsonl", root / "validation.jsonl", short,
        max_length=6, tokens_per_batch=8192,
    )  # fmt: skip
    assert (info["n_train"], info["n_selection"], info["n_validation"]) == (40, 20, 20)
    cut = ProbeFeatures.load(short)
    assert cut.train_labels.tolist() == train and cut.n_train_all == 40
    assert cut.selection_split == "validation" and torch.equal(cut.selection, cut.validation)
    assert cut.encoder_sha256 == loaded.encoder_sha256  # seed 2's theta0 both times
    # 9 tokens ([CLS] yes the cat sat [SEP] a dog [SEP]) cut to 6 change every first-token state
    assert (cut.train[sample] - loaded.train).abs().amax(-1).min() > 1e-4
    assert (cut.train[chosen] - loaded.selection).abs().amax(-1).min() > 1e-4
    assert (cut.validation - loaded.validation).abs().amax(-1).min() > 1e-4


def test_probe_features_file_checked(tmp_path):
    """A features file round-trips; one with any single shape wrong (train not 2-d, train and
    validation or selection widths, any label count) or without its metadata is refused as an
    artifact to rebuild."""
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 1, 0])
    ok = ProbeFeatures(
        x, y, x[:2].clone(), y[:2].clone(), x[:3].clone(), y[:3].clone(), "ab" * 32, 9
    )
    ok.save(tmp_path / "ok.safetensors")
    back = ProbeFeatures.load(tmp_path / "ok.safetensors")
    assert back.n_train_all == 9 and back.encoder_sha256 == "ab" * 32
    assert back.selection_split == "train"
    for k in ProbeFeatures.TENSORS:
        assert torch.equal(getattr(back, k), getattr(ok, k)), k
    bad = {
        "3-d train": dataclasses.replace(ok, train=torch.randn(4, 8, 2)),
        "widths": dataclasses.replace(ok, validation=torch.randn(3, 7)),
        "train labels": dataclasses.replace(ok, train_labels=y[:3]),
        "validation labels": dataclasses.replace(ok, validation_labels=y.clone()),
        "selection widths": dataclasses.replace(ok, selection=torch.randn(2, 7)),
        "selection labels": dataclasses.replace(ok, selection_labels=y[:3].clone()),
    }
    for name, feats in bad.items():
        feats.save(tmp_path / "bad.safetensors")
        with pytest.raises(ArtifactError, match="inconsistent shapes"):
            ProbeFeatures.load(tmp_path / "bad.safetensors")
            pytest.fail(name)
    tensors = {k: getattr(ok, k) for k in ProbeFeatures.TENSORS}
    save_tensors(tmp_path / "nometa.safetensors", tensors, {"encoder_sha256": "ab" * 32})
    with pytest.raises(ArtifactError, match="no n_train_all, selection_split in its metadata"):
        ProbeFeatures.load(tmp_path / "nometa.safetensors")


#: Early stopping within the run: held-out loss lowest at epoch 3, fitting stops after epoch 4.
PROBE_HP = {"epochs": 10, "learning_rate": 5e-2, "batch_size": 9, "patience": 1}


def test_probe_checkpoint_on_disk(probe_inputs, tmp_path):
    """Features computed once from one seed's theta0 serve another seed's probe (same encoder);
    the saved probe theta0 reloads with the random theta0's encoder bit for bit, its head
    changed, and a record whose every number is recomputed here: the losses are fit_probe's on
    the fit rows with the configured hyper-parameters, the validation and train numbers the
    random and the saved model's, the majority rate that of the validation labels."""
    from headplast.measure.stage import load_checkpoint

    init_dir, features = probe_inputs["init_dir"], probe_inputs["features"]
    probe_dir = tmp_path / "probe" / "ckpt_init"
    record = probe_checkpoint(init_dir, features, probe_dir, hparams=PROBE_HP, seed=1)
    assert (probe_dir / "model.safetensors").exists() and (probe_dir / "config.json").exists()
    assert (probe_dir / "tokenizer.json").exists() or (probe_dir / "vocab.txt").exists()
    json.dumps(record, allow_nan=False)
    loaded = ProbeFeatures.load(features)
    random_model, _ = load_checkpoint(init_dir, torch.device("cpu"))
    probe_model, _ = load_checkpoint(probe_dir, torch.device("cpu"))
    _assert_encoders_equal(random_model, probe_model)
    assert not torch.equal(random_model.classifier.weight, probe_model.classifier.weight)
    assert not torch.equal(
        random_model.bert.pooler.dense.weight, probe_model.bert.pooler.dense.weight
    )
    # the reference: the random theta0 fitted directly on the same 30 fit rows, early-stopped on
    # the 4 selection rows
    x_fit, y_fit = loaded.train, loaded.train_labels
    x_val, y_val = loaded.validation, loaded.validation_labels
    ref = copy.deepcopy(random_model)
    fit = fit_probe(
        ref, x_fit, y_fit, epochs=10, learning_rate=5e-2, batch_size=9, weight_decay=0.01,
        seed=1, held_out=(loaded.selection, loaded.selection_labels), patience=1,
    )  # fmt: skip
    assert len(fit.train_loss) < 10  # stopped early: patience counts
    assert fit.best_epoch == len(fit.train_loss) - 1
    val = _labels(probe_inputs["root"] / "validation.jsonl")
    assert set(record) == {
        "hparams", "seed", "init_dir", "init_model_sha256", "features", "encoder_sha256",
        "head_modules", "head_parameters", "n_train_split", "n_train_examples",
        "n_held_out_examples", "held_out", "n_validation_examples", "train_loss_per_epoch",
        "held_out_loss_per_epoch", "epochs_run", "best_epoch", "train", "validation",
        "validation_majority_rate", "device", "seconds",
    }  # fmt: skip
    assert record["hparams"] == {**PROBE_DEFAULTS, **PROBE_HP}
    assert record["seed"] == 1 and record["init_dir"] == str(init_dir)
    assert record["features"] == str(features)
    model_bytes = (init_dir / "model.safetensors").read_bytes()
    assert record["init_model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert record["encoder_sha256"] == loaded.encoder_sha256
    assert set(record["head_modules"]) == {"bert.pooler", "classifier"}
    assert sorted(record["head_parameters"]) == [
        "bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias",
        "classifier.weight",
    ]  # fmt: skip
    assert (record["n_train_split"], record["n_train_examples"]) == (40, 30)
    assert (record["n_held_out_examples"], record["n_validation_examples"]) == (4, 20)
    assert record["held_out"] == "the task's selection rows (train split)"
    assert record["train_loss_per_epoch"] == [round(v, 6) for v in fit.train_loss]
    assert record["held_out_loss_per_epoch"] == [round(v, 6) for v in fit.held_out_loss]
    assert (record["epochs_run"], record["best_epoch"]) == (len(fit.train_loss), fit.best_epoch)
    assert record["train"] == evaluate_classifier(probe_model, x_fit, y_fit)
    assert record["train"] == evaluate_classifier(ref, x_fit, y_fit)
    assert record["validation"] == {
        "random_head": evaluate_classifier(random_model, x_val, y_val),
        "probe": evaluate_classifier(probe_model, x_val, y_val),
    }
    assert record["validation_majority_rate"] == max(val.count(0), val.count(1)) / 20
    assert record["device"] == "cpu" and record["seconds"] >= 0


def test_probe_checkpoint_selecting_on_the_validation_split(probe_inputs, tmp_path):
    """``selection.split: validation`` (features without a selection record): every train row is
    fitted on and the validation split is the held-out part, as the record says."""
    root = probe_inputs["root"]
    features = tmp_path / "f.safetensors"
    compute_probe_features(
        root / "seed2", root / "train.jsonl", root / "validation.jsonl", features,
        max_length=32, tokens_per_batch=8192,
    )  # fmt: skip
    hp = {"epochs": 2, "learning_rate": 1e-2, "batch_size": None}
    record = probe_checkpoint(
        probe_inputs["init_dir"], features, tmp_path / "p", hparams=hp, seed=3
    )
    assert (record["n_train_examples"], record["n_held_out_examples"]) == (40, 20)
    assert record["held_out"] == "the task's selection rows (validation split)"
    assert len(record["held_out_loss_per_epoch"]) == len(record["train_loss_per_epoch"])
    assert record["seed"] == 3


def test_probe_features_of_another_encoder_are_refused(tmp_path):
    from headplast.train.theta0 import init_checkpoint

    other = make_tiny_model(str(tmp_path / "other"))
    init_checkpoint(other, 2, 1, tmp_path / "theta0")
    x, y = torch.zeros(4, 32), torch.zeros(4, dtype=torch.long)
    ProbeFeatures(x, y, x.clone(), y.clone(), x.clone(), y.clone(), "0" * 64, 4).save(
        tmp_path / "f.safetensors"
    )
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
        x, y = pooled_features(probe, _marked_batches(60, seed))
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
    """A theta0 sweep file round-trips with its precision (one written before the precision was
    recorded loads with none, and importance then runs in fp32); a file with any single shape
    wrong or without the encoder's fingerprint is refused as an artifact to rebuild."""
    bad = Path(tmp_path / "x.safetensors")
    bad.write_bytes(b"not safetensors")
    with pytest.raises(Exception, match="not a theta0 sweep"):
        Theta0Sweep.load(bad)
    n, d = 3, 4
    ok = Theta0Sweep(
        torch.randn(n, d), torch.randn(2, 2, n, d), torch.tensor([0, 1, 1]),
        torch.tensor([2, 0, 1]), "cd" * 32, "bf16",
    )  # fmt: skip
    ok.save(tmp_path / "ok.safetensors")
    back = Theta0Sweep.load(tmp_path / "ok.safetensors")
    assert (back.encoder_sha256, back.precision) == ("cd" * 32, "bf16")
    for k in Theta0Sweep.TENSORS:
        assert torch.equal(getattr(back, k), getattr(ok, k)), k
    tensors = {k: getattr(ok, k) for k in Theta0Sweep.TENSORS}
    save_tensors(tmp_path / "old.safetensors", tensors, {"encoder_sha256": "cd" * 32})
    assert Theta0Sweep.load(tmp_path / "old.safetensors").precision == ""
    save_tensors(tmp_path / "nofp.safetensors", tensors, {"precision": "fp32"})
    with pytest.raises(ArtifactError, match="no encoder_sha256 in its metadata"):
        Theta0Sweep.load(tmp_path / "nofp.safetensors")
    bad = {
        "3-d ablate": dataclasses.replace(ok, ablate=torch.randn(2, n, d)),
        "ablate's examples": dataclasses.replace(ok, ablate=torch.randn(2, 2, n + 1, d)),
        "labels": dataclasses.replace(ok, labels=torch.tensor([0, 1])),
        "order": dataclasses.replace(ok, order=torch.tensor([0, 1, 2, 3])),
    }
    for name, sweep in bad.items():
        sweep.save(tmp_path / "bad.safetensors")
        with pytest.raises(ArtifactError, match="inconsistent shapes"):
            Theta0Sweep.load(tmp_path / "bad.safetensors")
            pytest.fail(name)


def test_shared_sweep_stages_equal_the_full_measure(probe_inputs, tmp_path):
    """The shared sweep's two stages as the workflow runs them on a checkpoint: the theta0 sweep
    over an unsorted eval subset of pairs of different lengths (length-sorted batches, the longest
    truncated to ``max_length``, precision ``auto``: fp32 on the CPU), then importance from it.
    Its rows and its per-example arrays (in eval-subset order) equal the full per-checkpoint
    measure's, and each recorded state's label is that of the eval-subset example its ``order``
    names."""
    from headplast.io import write_json
    from headplast.measure.stage import measure_importance

    init_dir = probe_inputs["init_dir"]
    rng = random.Random(1)
    words = "the cat sat on a mat while dogs ran far away".split()
    rows = [
        {
            "premise": " ".join(rng.choices(words, k=rng.randint(1, 9))),
            "hypothesis": "a dog",
            "label": rng.randint(0, 1),
        }
        for _ in range(16)
    ]
    val = tmp_path / "validation.jsonl"
    val.write_text("".join(json.dumps(r) + "\n" for r in rows))
    indices = [11, 3, 14, 0, 7, 9, 5, 12, 2, 8]
    write_json(tmp_path / "subset.json", {"indices": indices})
    kw = {"max_length": 10, "tokens_per_batch": 48}  # 6 to 14 tokens: the longest are cut
    path = tmp_path / "theta0_sweep.safetensors"
    subset = tmp_path / "subset.json"
    info = measure_theta0_sweep(init_dir, val, subset, path, **kw, precision="auto", progress=False)
    sweep = Theta0Sweep.load(path)
    assert sweep.precision == "fp32" and sweep.ablate.shape == (2, 4, 10, 32)
    order = sweep.order.tolist()
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert sweep.labels.tolist() == [rows[indices[p]]["label"] for p in order]
    got, got_info = measure_importance_shared(init_dir, path, tmp_path / "shared.npz")
    want, want_info = measure_importance(
        init_dir, val, subset, **kw, progress=False,
        per_example_path=tmp_path / "full.npz",
    )  # fmt: skip
    assert set(info) == {"device", "precision", "tf32", "n_batches", "seconds"}
    assert info["tf32"] is False  # CPU: TF32 is a CUDA setting
    assert (info["device"], info["precision"]) == ("cpu", "fp32")
    assert info["n_batches"] == want_info["n_batches"] > 1
    assert set(got_info) == {"device", "seconds"} and got_info["device"] == "cpu"
    _rows_close(got, want)
    shared, full = np.load(tmp_path / "shared.npz"), np.load(tmp_path / "full.npz")
    assert sorted(shared.files) == sorted(full.files) == ["acc_d", "d", "kl"]
    for k in full.files:
        assert shared[k].shape == (10, 2, 4)
        np.testing.assert_allclose(shared[k], full[k], rtol=0, atol=1e-6, err_msg=k)
    assert measure_importance_shared(init_dir, path)[0] == got  # no per-example file asked for
