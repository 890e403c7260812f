"""Data-parallel fine-tuning of one job: 2 gloo processes on CPU (torchrun) against 1 process.

The same tiny BERT and keyword NLI data as tests/test_training.py (64 training pairs, configured
batch 8, 1 epoch): both runs must take 8 optimizer steps, the 2-process run with 4 examples per
process and step, and its checkpoint must load.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from headplast.model.loading import load_model
from headplast.train.distributed import finetune_data_parallel, gpus_of_job
from headplast.train.finetune import batch_over_processes, finetune
from headplast.train.theta0 import init_checkpoint
from tests.make_tiny_model import make_tiny_model

torch.set_num_threads(1)

HP = {
    "learning_rate": 1e-2,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 32,
    "eval_steps": 4,
}


@pytest.mark.parametrize(
    ("per_device", "accumulation", "world", "expected"),
    [
        (8, 1, 1, (8, 1)),
        (8, 1, 2, (4, 1)),
        (32, 1, 8, (4, 1)),
        (4, 2, 2, (4, 1)),
        (6, 2, 4, (3, 1)),
        (2, 4, 4, (2, 1)),
        (1, 8, 2, (1, 4)),
        (16, 4, 8, (8, 1)),
    ],
)
def test_batch_over_processes_keeps_the_effective_batch(per_device, accumulation, world, expected):
    batch, steps = batch_over_processes(per_device, accumulation, world)
    assert (batch, steps) == expected
    assert world * batch * steps == per_device * accumulation


def test_batch_over_processes_refuses_an_indivisible_batch():
    with pytest.raises(ValueError, match="8 x 1 = 8 cannot be split over 3 processes"):
        batch_over_processes(8, 1, 3)


@pytest.mark.parametrize(
    ("gpu", "gres", "n"),
    [
        (1, None, 1),
        (4, None, 4),
        (0, "gpu:4", 4),
        (0, "gpu:a100:2", 2),
        (None, None, 1),
        (0, "tmpdisk:10", 1),
    ],
)
def test_gpus_of_job(gpu, gres, n):
    assert gpus_of_job(gpu, gres) == n


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    src = Path(make_tiny_model(str(root / "src_model")))
    rng = random.Random(1)
    words = "the a cat dog sat ran on under big small red blue".split()
    for name, n in (("train", 64), ("validation", 32)):
        with open(root / f"{name}.jsonl", "w") as fh:
            for _ in range(n):
                label = rng.randint(0, 1)
                vocab = words[:6] if label else words[6:]
                premise = " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 9)))
                hyp = " ".join(rng.choice(words) for _ in range(rng.randint(2, 5)))
                row = {"premise": premise, "hypothesis": ("yes " if label else "no ") + hyp}
                fh.write(json.dumps({**row, "label": label}) + "\n")
    init_checkpoint(src, 2, 0, root / "ckpt_init")
    return root


def _kwargs(root: Path, name: str) -> dict:
    return dict(
        init_dir=root / "ckpt_init",
        train_path=root / "train.jsonl",
        validation_path=root / "validation.jsonl",
        out_dir=root / name / "ckpt_final",
        trainer_dir=root / name / "trainer_out",
        hparams=HP,
        seed=0,
        max_length=64,
    )


@pytest.mark.training
def test_two_gloo_processes_take_the_steps_of_one(setup, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    one = finetune(**_kwargs(setup, "one"))
    two = finetune_data_parallel(2, **_kwargs(setup, "two"))
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert one["global_steps"] == two["global_steps"] == 8  # 64 examples / batch 8, one epoch
    assert (one["per_device_train_batch_size_used"], one["gradient_accumulation_steps_used"]) == (
        8,
        1,
    )
    assert (two["per_device_train_batch_size_used"], two["gradient_accumulation_steps_used"]) == (
        4,
        1,
    )
    assert one["effective_train_batch_size"] == two["effective_train_batch_size"] == 8
    assert two["device"] == "cpu" and two["hparams"]["per_device_train_batch_size"] == 8
    # theta1 loads; it moved away from theta0; the run record is rank 0's alone
    final = load_model(setup / "two" / "ckpt_final")
    init = load_model(setup / "ckpt_init")
    assert final.config.num_labels == 2
    w1 = final.state_dict()["classifier.weight"]
    assert not torch.equal(w1, init.state_dict()["classifier.weight"])
    assert 0.0 <= two["validation"]["theta1"]["accuracy"] <= 1.0
    assert two["best_checkpoint_step"] in (4, 8)
    assert not list((setup / "two" / "trainer_out").glob("checkpoint-*"))
