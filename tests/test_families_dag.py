"""The workflow run for real on the families that read their task's input otherwise than BERT: a
tiny Llama (grouped-query attention, 2 key/value heads for the 4 query heads, a tokenizer without
a pad token; its head reads the last non-padding token) and a tiny ModernBERT (alternating global
and local attention, mean pooling), side by side in `models:`, one task, seed 1. The Llama model
also runs under LoRA (`methods: [full, lora]`) with a freeze intervention, added to the finished
full-only tree as a user would add it.

One test, so the suite pays for one small DAG: the full-only run (both models' random start to
heads.csv through the shared theta0 sweep, both probe starts' theta0), then the plan of adding
LoRA (no full and no theta0 job), then LoRA's run (heads.csv, one random freeze order kept)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tests.make_tiny_model import make_tiny_model
from tests.test_workflow import planned_jobs
from tests.workflow_utils import Replace, make_workdir, run_snakemake, tiny_config, write_config

LLAMA, MBERT = "tiny_llama", "tiny_mbert"
LAYERS, HEADS, KV_HEADS, HEAD_DIM = 2, 4, 2, 8  # tests/make_tiny_model.py
TASK = {
    "nli_a": {
        "data": {"source": "synthetic", "n_train": 64, "n_validation": 40, "seed": 0},
        "train": {
            "learning_rate": 1.0e-3,
            "num_train_epochs": 1,
            "per_device_train_batch_size": 16,
            "eval_steps": 2,
        },
    }
}
OVERRIDES = {
    "models": Replace({LLAMA: {"name_or_path": LLAMA}, MBERT: {"name_or_path": MBERT}}),
    "tasks": Replace(TASK),
    "seeds": [1],
    "eval_subset": {"size": 24},
    "methods": ["full"],
    # one random quarter of the 8 heads (2) held, its frozen theta1 kept for the check below
    "interventions": Replace(
        {
            "fraction": 0.25,
            "orders": ["random"],
            "n_random": 1,
            "starts": ["random"],
            "keep_checkpoints": True,
        }
    ),
}
# LoRA added as a user adds it: the method and its settings
BOTH = {
    **OVERRIDES,
    "methods": ["full", "lora"],
    "lora": {"r": 4, "alpha": 8, "train": {"learning_rate": 1.0e-2}},
}


def seed_dir(model: str, start: str = "random") -> str:
    return f"results/{model}/nli_a/{start}/seed1"


FULL_TARGETS = [
    *(f"{seed_dir(m)}/heads.csv" for m in (LLAMA, MBERT)),
    *(f"{seed_dir(m, 'probe')}/probe.json" for m in (LLAMA, MBERT)),
]
LORA_RUN = f"{seed_dir(LLAMA)}/lora"  # theta1 and its measures under LoRA
FROZEN = f"{LORA_RUN}/freeze/random_0"
LORA_TARGETS = [f"{LORA_RUN}/heads.csv", f"{FROZEN}/run_config.json", f"{FROZEN}/update.jsonl"]
#: the jobs of the Llama model's LoRA seed: its fine-tune and what is measured on theta1
LORA_JOBS = Counter(
    {
        "finetune": 1,
        "importance_post": 1,
        "update": 1,
        "function_change": 1,
        "heads": 1,
        "finetune_frozen": 1,
        "update_frozen": 1,
    }
)


def _workdir(tmp_path: Path) -> Path:
    wd = make_workdir(tmp_path, OVERRIDES)
    make_tiny_model(str(wd / LLAMA), "llama")
    make_tiny_model(str(wd / MBERT), "modernbert")
    return wd


def _finite(frame: pd.DataFrame, columns: list[str]) -> None:
    for col in columns:
        values = frame[col].to_numpy(float)
        assert all(math.isfinite(v) for v in values), col


@pytest.mark.dag
def test_gqa_decoder_and_modernbert_run_and_lora_is_added_to_the_finished_tree(tmp_path):
    """Both models to heads.csv (and the probe start's theta0) under full fine-tuning; then
    `methods: [full, lora]` plans the Llama model's LoRA jobs and nothing else, and runs them."""
    wd = _workdir(tmp_path)
    run_snakemake(wd, *FULL_TARGETS, timeout=1800)
    _check_family_paths(wd)
    write_config(wd, tiny_config(BOTH))
    # adding LoRA to the finished full-only tree: LoRA's jobs for the Llama model, no full
    # fine-tune or measure and no theta0 job (shared by the methods) rerun
    plan = planned_jobs(wd, *FULL_TARGETS, *LORA_TARGETS)
    assert Counter(rule for rule, _ in plan) == LORA_JOBS, plan
    assert all(w.get("method") == "lora/" and w["model"] == LLAMA for _, w in plan), plan
    run_snakemake(wd, *LORA_TARGETS, timeout=1800)
    _check_lora_run(wd)


def _own_loss(wd: Path, ckpt: str, subset: bool = True) -> float:
    """Mean cross-entropy of a checkpoint on the eval subset (``subset``) or the whole validation
    split, one example at a time through the model's own forward (its own pooling, no padding):
    the reference for the losses the workflow computes on batches of pooled states."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    data = wd / "results/data/nli_a"
    rows = [json.loads(line) for line in (data / "validation.jsonl").read_text().splitlines()]
    if subset:
        rows = [rows[i] for i in json.loads((data / "eval_subset.json").read_text())["indices"]]
    tok = AutoTokenizer.from_pretrained(wd / ckpt)
    model = AutoModelForSequenceClassification.from_pretrained(wd / ckpt).eval()
    losses = []
    with torch.no_grad():
        for r in rows:
            enc = tok(r["premise"], r["hypothesis"], truncation=True, max_length=48,
                      return_tensors="pt")  # fmt: skip
            logits = model(**enc).logits.double()
            label = torch.tensor([r["label"]])
            losses.append(float(torch.nn.functional.cross_entropy(logits, label)))
    return sum(losses) / len(losses)


def _check_family_paths(wd: Path) -> None:
    """Model types, poolings, padding, heads and key/value groups of the full-only run."""
    from safetensors import safe_open

    for model, model_type, pooling in ((LLAMA, "llama", "last"), (MBERT, "modernbert", "mean")):
        d = wd / seed_dir(model)
        assert json.loads((d / "run_config.json").read_text())["model_type"] == model_type
        heads = pd.read_csv(d / "heads.csv")
        assert list(zip(heads["layer"], heads["head"], strict=True)) == [
            (la, h) for la in range(LAYERS) for h in range(HEADS)
        ]  # one row per query head
        _finite(heads, ["I_pre", "I_post", "G", "F", "U", "Urel", "Uq", "Uk", "Uv", "Uo"])
        assert (heads["U"] > 0).all() and (heads["C_rel"] > 0).all()
        # the shared theta0 sweep and the probe's features pooled as the family's head pools
        for name in ("theta0_sweep", "probe_features"):
            path = wd / f"results/{model}/nli_a/{name}.safetensors"
            with safe_open(path, "pt") as f:
                assert f.metadata()["pooling"] == pooling, (model, name)
        # the probe, fitted on those features, is the probe start's theta0 head: its validation
        # loss is the model's own
        probe = json.loads((wd / seed_dir(model, "probe") / "probe.json").read_text())
        own = _own_loss(wd, f"{seed_dir(model, 'probe')}/ckpt_init", subset=False)
        assert probe["validation"]["probe"]["loss"] == pytest.approx(own, rel=1e-5), model
        # the all-gates-1 losses of the shared sweep (theta0) and of theta1's sweep are the
        # model's own on the eval subset: the sweeps read the token (or mean) the head reads
        for column, ckpt in (("loss_base_pre", "ckpt_init"), ("loss_base_post", "ckpt_final")):
            expected = _own_loss(wd, f"{seed_dir(model)}/{ckpt}")
            assert heads[column].to_numpy() == pytest.approx(expected, rel=1e-5), (model, column)
    llama = pd.read_csv(wd / seed_dir(LLAMA) / "heads.csv")
    # grouped-query attention: query heads 0-1 read key/value head 0, heads 2-3 head 1
    assert llama["kv_group"].tolist() == [h // (HEADS // KV_HEADS) for h in range(HEADS)] * LAYERS
    for _, group in llama.groupby(["layer", "kv_group"]):  # a group's Uk, Uv are its rows'
        assert group["Uk"].nunique() == 1 and group["Uv"].nunique() == 1
    mbert = pd.read_csv(wd / seed_dir(MBERT) / "heads.csv")
    assert mbert["kv_group"].tolist() == list(range(HEADS)) * LAYERS  # each head its own
    # the decoder's tokenizer had no pad token: theta0 pads with its end-of-sequence token, on
    # the right, and the config's pad_token_id is that token's (the head skips what is padding)
    init_log = (wd / f"logs/init_checkpoint/{LLAMA}/nli_a/random/seed1.log").read_text()
    assert "pad token set to '[SEP]'" in init_log and "padding side set to right" in init_log
    theta0_config = json.loads((wd / seed_dir(LLAMA) / "ckpt_init/config.json").read_text())
    assert theta0_config["pad_token_id"] == 102 and theta0_config["use_cache"] is False
    tok_config = json.loads((wd / seed_dir(LLAMA) / "ckpt_init/tokenizer_config.json").read_text())
    assert tok_config["pad_token"] == "[SEP]" and tok_config["padding_side"] == "right"


def _held_and_moved(theta0: dict, theta1: dict, frozen: list[tuple[int, int]]):
    """(held, moved): torch.equal of theta1's and theta0's slices, of the frozen heads' query rows
    and output columns and the key/value rows of the groups frozen whole (held), and of every
    other slice (moved). Cut by hand from Llama's module names: head h's query rows and output
    columns h*d:(h+1)*d, its key/value rows those of its group h // (HEADS / KV_HEADS)."""
    per_group = HEADS // KV_HEADS
    held, moved = [], []
    for layer in range(LAYERS):
        att = f"model.layers.{layer}.self_attn"
        q, o = f"{att}.q_proj.weight", f"{att}.o_proj.weight"
        for head in range(HEADS):
            cut = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
            same = [
                torch.equal(theta1[q][cut], theta0[q][cut]),
                torch.equal(theta1[o][:, cut], theta0[o][:, cut]),
            ]
            (held if (layer, head) in frozen else moved).extend(same)
        for group in range(KV_HEADS):
            members = range(group * per_group, (group + 1) * per_group)
            whole = all((layer, h) in frozen for h in members)
            cut = slice(group * HEAD_DIM, (group + 1) * HEAD_DIM)
            for part in ("k_proj", "v_proj"):
                w = f"{att}.{part}.weight"
                (held if whole else moved).append(torch.equal(theta1[w][cut], theta0[w][cut]))
    return held, moved


def _check_lora_run(wd: Path) -> None:
    """LoRA's theta1 saved merged, its heads table, and the freeze intervention under LoRA."""
    theta0 = load_file(wd / seed_dir(LLAMA) / "ckpt_init/model.safetensors")
    lora = wd / LORA_RUN
    rc = json.loads((lora / "run_config.json").read_text())
    assert rc["method"] == "lora" and rc["model_type"] == "llama"
    theta1 = load_file(lora / "ckpt_final/model.safetensors")
    assert theta1.keys() == theta0.keys()  # merged: theta0's names, no lora_A/lora_B tensors
    assert not (lora / "ckpt_final/adapter_config.json").exists()
    attention = ("q_proj", "k_proj", "v_proj", "o_proj")
    untouched = [
        n for n in theta0 if not n.startswith("score.") and n.split(".")[-2] not in attention
    ]
    assert len(untouched) > 10 and all(torch.equal(theta0[n], theta1[n]) for n in untouched)
    lora_heads = pd.read_csv(lora / "heads.csv")
    assert len(lora_heads) == LAYERS * HEADS and (lora_heads["U"] > 0).all()
    assert lora_heads["kv_group"].tolist() == [h // 2 for h in range(HEADS)] * LAYERS
    _finite(lora_heads, ["I_pre", "I_post", "G", "U", "Urel", "A_js", "C_rel"])
    full_heads = pd.read_csv(wd / seed_dir(LLAMA) / "heads.csv")  # theta0's measures are shared
    assert lora_heads["I_pre"].tolist() == full_heads["I_pre"].tolist()
    # the frozen LoRA run: merged too; the frozen heads' slices are theta0's bit for bit
    frozen_rc = json.loads((wd / FROZEN / "run_config.json").read_text())
    assert frozen_rc["method"] == "lora"
    frozen = [tuple(h) for h in frozen_rc["frozen_heads"]]
    assert len(frozen) == 2  # a quarter of the 8 heads
    final = load_file(wd / FROZEN / "ckpt_final/model.safetensors")
    assert final.keys() == theta0.keys()
    held, moved = _held_and_moved(theta0, final, frozen)
    whole = sum(
        all((la, h) in frozen for h in range(g * 2, g * 2 + 2))
        for la in range(LAYERS)
        for g in range(KV_HEADS)
    )
    assert len(held) == 2 * len(frozen) + 2 * whole and all(held)
    assert moved and not any(moved)  # every other slice was trained
    update = [json.loads(line) for line in (wd / FROZEN / "update.jsonl").read_text().splitlines()]
    for r in update:
        if (r["layer"], r["head"]) in frozen:
            assert r["Uq"] == 0.0 and r["Uo"] == 0.0
        else:
            assert r["Uq"] > 0 and r["Uo"] > 0
