"""Two models in one DAG (tiny BERT + tiny DeBERTa-v2) and a task that imports an existing
fine-tune instead of training: dry runs of the job plan and the config refusals, and one real
run of the per-seed part (1 seed) that imports theta1 with its labels permuted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.make_tiny_model import make_tiny_model
from tests.test_workflow import planned_jobs
from tests.workflow_utils import Replace, make_workdir, run_snakemake, tiny_config

#: Each test starts Snakemake (dry runs, lint, a module import): the workflow tier.
pytestmark = pytest.mark.snakemake

MODELS = {"tiny_bert": {"name_or_path": "tiny_model"}, "tiny_deb": {"name_or_path": "tiny_deb"}}
# the "public fine-tune": generic label names, its order 0 contradiction, 1 entailment, 2 neutral
LABEL_MAP = {"LABEL_0": "contradiction", "LABEL_1": "entailment", "LABEL_2": "neutral"}
CKPT_TASK = {
    "data": {"source": "synthetic", "n_train": 60, "n_validation": 40, "seed": 2},
    "checkpoints": {"final": "public_ft", "model": "tiny_bert", "label_map": LABEL_MAP},
}


def _workdir(tmp_path: Path, seeds=(1, 2), **task_overrides) -> Path:
    tasks = {"nli_b": None, "nli_ckpt": CKPT_TASK, **task_overrides}
    wd = make_workdir(
        tmp_path,
        {"models": Replace(MODELS), "seeds": list(seeds), "tasks": tasks},
    )
    cfg_path = wd / "test_config.yaml"
    import yaml

    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["tasks"] = {k: v for k, v in cfg["tasks"].items() if v is not None}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    make_tiny_model(str(wd / "tiny_deb"), "deberta")
    if not (wd / "public_ft").exists():
        from headplast.train.theta0 import init_checkpoint

        init_checkpoint(wd / "tiny_model", 3, 5, wd / "public_ft")  # id2label LABEL_0..2
    return wd


def test_two_models_and_a_checkpoint_task_plan(tmp_path):
    wd = _workdir(tmp_path)
    jobs = planned_jobs(wd)
    runs = Counter((r, w.get("model"), w.get("task")) for r, w in jobs if "seed" in w)
    starts = len(tiny_config()["starts"])  # random and probe: each seed's jobs once per start
    for model in MODELS:  # the trained task fans out over both models, both seeds, both starts
        assert runs[("finetune", model, "nli_a")] == 2 * starts
        assert runs[("importance_post", model, "nli_a")] == 2 * starts
    # the checkpoint task: imported (no finetune), for its own model only
    assert runs[("import_final", "tiny_bert", "nli_ckpt")] == 2 * starts
    assert runs[("init_checkpoint", "tiny_bert", "nli_ckpt")] == 2  # the random start's theta0
    assert not [
        k for k in runs if k[2] == "nli_ckpt" and (k[0] == "finetune" or k[1] == "tiny_deb")
    ]
    assert not [k for k in runs if k[0] == "import_final" and k[2] != "nli_ckpt"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, "`tasks.nli_ckpt.checkpoints.model`: missing; with several `models:`"),
        ({"model": "roberta"}, "'roberta' is not a key of `models:`"),
        ({"train": True}, "give either `train:`"),
    ],
)
def test_checkpoint_task_config_refusals(tmp_path, change, message):
    task = json.loads(json.dumps(CKPT_TASK))
    if change.get("model", "") is None:
        del task["checkpoints"]["model"]
    elif "model" in change:
        task["checkpoints"]["model"] = change["model"]
    if "train" in change:
        task["train"] = {
            "learning_rate": 1e-3,
            "num_train_epochs": 1,
            "per_device_train_batch_size": 8,
        }
    wd = _workdir(tmp_path, nli_ckpt=task)
    proc = run_snakemake(wd, "--dry-run", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.dag
def test_checkpoint_task_real_run_one_seed(tmp_path):
    """One seed: theta1 of DeBERTa trained on nli_a, and BERT's heads.csv with theta1 imported
    from public_ft (the rest of the DAG is the same rules as tests/test_workflow.py runs)."""
    wd = _workdir(tmp_path, seeds=(1,))
    deb = "results/tiny_deb/nli_a/random/seed1"
    imp = "results/tiny_bert/nli_ckpt/random/seed1"
    run_snakemake(wd, f"{deb}/run_config.json", f"{imp}/heads.csv", timeout=2400)
    assert json.loads((wd / deb / "run_config.json").read_text())["model_type"] == "deberta-v2"
    rc = json.loads((wd / imp / "run_config.json").read_text())
    assert rc["theta1_source"] == "public_ft" and rc["label_permutation"] == [1, 2, 0]
    ft, final = (
        load_file(wd / "public_ft/model.safetensors"),
        load_file(wd / imp / "ckpt_final/model.safetensors"),
    )
    assert torch.equal(final["classifier.weight"], ft["classifier.weight"][[1, 2, 0]])
    assert torch.equal(
        final["bert.encoder.layer.0.attention.self.query.weight"],
        ft["bert.encoder.layer.0.attention.self.query.weight"],
    )
    heads = (wd / imp / "heads.csv").read_text().splitlines()
    assert len(heads) == 1 + 2 * 4  # 2 layers x 4 heads
    assert not (wd / imp / "trainer_out").exists()  # nothing was trained for the checkpoint task
