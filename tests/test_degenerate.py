"""Degenerate runs: flagged in run_config.json, warned about in the finetune log, left out of the
across-seed summary (and named there) unless the config keeps them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headplast.analysis.seeds import no_usable_seed, split_degenerate
from headplast.analysis.statistics import PAIRS, counter_examples, pair_statistics
from headplast.data.selection import selection_record
from headplast.io import read_json, write_json
from headplast.train.degenerate import degeneracy, majority_class_rate, warning_text
from headplast.train.theta0 import init_checkpoint
from tests.make_tiny_model import make_tiny_model
from tests.pruning_rows import synthetic_curves
from tests.script_runner import run_script
from tests.test_summary import make_heads

HP = {
    "learning_rate": 0.0,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 32,
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "eval_steps": 4,
    "max_train_samples": None,
    "gradient_accumulation_steps": 1,
    "save_total_limit": 1,
}


def test_majority_rate_and_flag():
    assert majority_class_rate([0, 1, 1, 2]) == (0.5, 1)
    assert degeneracy(0.51, [0, 1, 1, 2], 0.02)["degenerate"] is True
    d = degeneracy(0.6, [0, 1, 1, 2], 0.02)
    assert d["degenerate"] is False and d["accuracy_margin"] == pytest.approx(0.1)
    cfgs = {1: {"degenerate": False}, 2: {"degenerate": True}, 3: {}}
    assert split_degenerate(cfgs) == ([1, 3], [2])
    assert split_degenerate(cfgs, keep_degenerate=True) == ([1, 2, 3], [2])


def test_degeneracy_record_at_the_threshold():
    """The run record's fields, exactly; a margin exactly equal to ``min_accuracy_gain`` is
    degenerate (the run must beat the majority rate by *more* than the gain), a hair above is not;
    a tie for the majority goes to the label seen first."""
    labels = [1, 0, 0, 1]  # rate 0.5, 0 and 1 tied
    assert majority_class_rate(labels) == (0.5, 1)
    assert degeneracy(0.75, labels, 0.25) == {
        "degenerate": True,
        "majority_class_rate": 0.5,
        "majority_label": 1,
        "accuracy_margin": 0.25,
        "min_accuracy_gain": 0.25,
    }
    assert degeneracy(0.75 + 1e-9, labels, 0.25)["degenerate"] is False
    assert majority_class_rate([2, 0, 2, 2, 1]) == (0.6, 2)


def test_warning_and_no_usable_seed_sentences():
    """The two sentences users read: the finetune log's warning (numbers to 4 decimals, the margin
    signed) and the summaries' statement when no seed is left; no warning for a healthy run or a
    record without the flag."""
    rc = {
        "seed": 7,
        "degenerate": True,
        "validation": {"theta1": {"accuracy": 0.6875}},
        "majority_class_rate": 0.75,
        "min_accuracy_gain": 0.02,
        "accuracy_margin": -0.0625,
    }
    assert warning_text(rc) == (
        "DEGENERATE RUN (seed 7): theta1 validation accuracy 0.6875 does not beat the "
        "majority-class rate 0.7500 by more than analysis.min_accuracy_gain = 0.02 (margin "
        "-0.0625). The model did not learn the task; this seed is left out of the across-seed "
        "summaries unless analysis.keep_degenerate is true. Try another seed, a smaller learning "
        "rate or more epochs."
    )
    assert warning_text({**rc, "degenerate": False}) is None
    assert warning_text({"validation": rc["validation"]}) is None
    assert no_usable_seed((3, 1)) == (
        "no usable seed: every seed [3, 1] is degenerate (theta1 does not beat the majority "
        "class; see their run_config.json). Nothing is summarised; set config key "
        "analysis.keep_degenerate: true to summarise them anyway"
    )


@pytest.fixture(scope="module")
def lr0_run(tmp_path_factory):
    """A real fine-tuning run with learning rate 0 on a tiny BERT: theta1 = theta0, a random
    classifier, which cannot beat the majority class of a 3:1 validation split."""
    root = tmp_path_factory.mktemp("degenerate")
    src = Path(make_tiny_model(str(root / "src_model")))
    rng = random.Random(2)
    for name, n in (("train", 16), ("validation", 32)):
        with open(root / f"{name}.jsonl", "w") as fh:
            for i in range(n):
                label = int(i % 4 == 0)  # 3:1, majority rate 0.75
                words = " ".join(rng.choice("a b c d e f".split()) for _ in range(5))
                fh.write(json.dumps({"premise": words, "hypothesis": words, "label": label}))
                fh.write("\n")
    init_checkpoint(src, 2, 0, root / "ckpt_init")
    train = [json.loads(line)["label"] for line in (root / "train.jsonl").open()]
    write_json(root / "selection.json", selection_record({"fraction": 0.25}, train, 32))
    out = {
        "model": str(root / "ckpt_final" / "model.safetensors"),
        "config": str(root / "ckpt_final" / "config.json"),
        "run_config": str(root / "run_config.json"),
    }
    log = run_script(
        "finetune",
        root,
        input={
            "init_model": str(root / "ckpt_init" / "model.safetensors"),
            "init_config": str(root / "ckpt_init" / "config.json"),
            "train": str(root / "train.jsonl"),
            "validation": str(root / "validation.jsonl"),
            "selection": str(root / "selection.json"),
        },
        output=out,
        params={
            "hparams": HP,
            "seed": 0,
            "max_length": 32,
            "precision": "fp32",
            "min_accuracy_gain": 0.02,
        },
    )
    return read_json(out["run_config"]), log


def test_learning_rate_zero_is_flagged_and_warned(lr0_run):
    rc, log = lr0_run
    v0, v1 = rc["validation"]["theta0"], rc["validation"]["theta1"]
    assert v1["accuracy"] == pytest.approx(v0["accuracy"])  # nothing was learnt
    assert rc["majority_class_rate"] == 0.75 and rc["majority_label"] == 0
    assert rc["degenerate"] is True
    assert rc["accuracy_margin"] == pytest.approx(v1["accuracy"] - 0.75)
    # chosen on 4 train rows; the degenerate check reads the 32 validation rows
    assert (rc["selection"]["split"], rc["selection"]["n_examples"]) == ("train", 4)
    assert rc["n_train_examples"] == 12
    last = [line for line in log.splitlines() if line.strip()][-1]
    assert "DEGENERATE RUN (seed 0)" in last and "analysis.min_accuracy_gain" in last


def _seed_files(tmp_path, run_configs):
    files = {"heads": [], "stats": [], "cases": [], "run_config": []}
    for s, rc in run_configs.items():
        df = make_heads(s)
        df.to_csv(tmp_path / f"heads{s}.csv", index=False)
        write_json(tmp_path / f"stats{s}.json", pair_statistics(df, PAIRS, 3, 99, 99, 0))
        write_json(tmp_path / f"cases{s}.json", counter_examples(df, 0.25, 0.5))
        write_json(tmp_path / f"rc{s}.json", rc)
        for k, name in (("heads", "heads{}.csv"), ("stats", "stats{}.json")):
            files[k].append(str(tmp_path / name.format(s)))
        files["cases"].append(str(tmp_path / f"cases{s}.json"))
        files["run_config"].append(str(tmp_path / f"rc{s}.json"))
    return files


def _summary_outputs(folder) -> dict[str, str]:
    """The four outputs of summary_seeds, in ``folder``."""
    kinds = {"heads_mean": "csv", "stability": "json", "pair_stats": "json", "case_counts": "csv"}
    return {k: str(folder / f"{k}.{ext}") for k, ext in kinds.items()}


@pytest.mark.parametrize("keep", [False, True])
def test_degenerate_seed_left_out_of_summary(lr0_run, tmp_path, keep):
    healthy = {"degenerate": False, "validation": {"theta1": {"accuracy": 0.9}}}
    run_configs = {1: healthy, 2: lr0_run[0], 3: healthy}
    files = _seed_files(tmp_path, run_configs)
    out = _summary_outputs(tmp_path)
    log = run_script(
        "summary_seeds",
        tmp_path,
        input=files,
        output=out,
        params={"seeds": [1, 2, 3], "keep_degenerate": keep},
    )
    ps = read_json(out["pair_stats"])
    mean = pd.read_csv(out["heads_mean"])
    assert ps["degenerate_seeds"] == [2]
    if keep:
        assert ps["seeds"] == [1, 2, 3] and ps["degenerate_excluded"] == []
        assert ps["n_seeds"] == 3 and (mean["n_seeds"] == 3).all()
    else:
        assert ps["seeds"] == [1, 3] and ps["degenerate_excluded"] == [2]
        assert ps["n_seeds"] == 2 and (mean["n_seeds"] == 2).all()
        assert set(ps["pairs"]["I_pre~Urel"]["rho"]["values"]) == {"1", "3"}
        expect = (make_heads(1).I_pre + make_heads(3).I_pre) / 2
        assert np.allclose(mean.sort_values(["layer", "head"]).I_pre_mean, expect)
        assert read_json(out["stability"])["I_pre"]["n_pairs"] == 1
        assert "left out: [2]" in log


@pytest.mark.parametrize("keep", [False, True])
def test_degenerate_seed_left_out_of_pruning_summary(lr0_run, tmp_path, keep):
    """The pruning summary leaves out the same seeds as summary_seeds: seed 2's curves (far
    off the others) reach neither the mean curves nor the AUCs unless kept."""
    healthy = {"degenerate": False, "validation": {"theta1": {"accuracy": 0.9}}}
    run_configs = {1: healthy, 2: lr0_run[0], 3: healthy}
    files = {"pruning": [], "run_config": []}
    for s, rc in run_configs.items():
        rows = [  # pruning.jsonl rows: the curves plus which heads were removed
            {**r, "n_removed": 2 * r["step"], "removed": [[0, h] for h in range(2 * r["step"])]}
            for r in synthetic_curves({1: 0.0, 2: -0.5, 3: 0.1}[s])
        ]
        (tmp_path / f"pruning{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        write_json(tmp_path / f"rc{s}.json", rc)
        files["pruning"].append(str(tmp_path / f"pruning{s}.jsonl"))
        files["run_config"].append(str(tmp_path / f"rc{s}.json"))
    out = {"curves": str(tmp_path / "pruning_mean.csv"), "auc": str(tmp_path / "auc.json")}
    params = {"seeds": [1, 2, 3], "keep_degenerate": keep}
    log = run_script("summary_pruning", tmp_path, input=files, output=out, params=params)
    auc = read_json(out["auc"])
    curves = pd.read_csv(out["curves"])
    want = ["1", "2", "3"] if keep else ["1", "3"]
    assert sorted(auc["I_pre"]["per_seed"]) == want
    assert (curves["n_seeds"] == len(want)).all()
    assert f"left out: {[] if keep else [2]}" in log
    if not keep:  # I_pre at half the heads: 0.9 + 0.0 and 0.9 + 0.1
        mid = curves[(curves["order"] == "I_pre") & (curves["fraction"] == 0.5)].iloc[0]
        assert mid["acc_mean"] == pytest.approx(0.95)
    # every seed degenerate: no curves, and the areas' file says so (the run goes on)
    only2 = {"pruning": files["pruning"][1:2], "run_config": files["run_config"][1:2]}
    params = {"seeds": [2], "keep_degenerate": False}
    run_script("summary_pruning", tmp_path, input=only2, output=out, params=params)
    assert pd.read_csv(out["curves"]).empty
    assert read_json(out["auc"])["no_usable_seed"].startswith("no usable seed: every seed [2]")
    fig = str(tmp_path / "fig_pruning_mean.png")
    run_script("fig_pruning_mean", tmp_path, input=out, output={"fig": fig},
               wildcards={"task": "t", "start": "random"})  # fmt: skip
    assert open(fig, "rb").read()[:4] == b"\x89PNG"


def test_all_seeds_degenerate_is_a_finding_not_a_crash(lr0_run, tmp_path):
    """A start or task whose every seed is degenerate: the summaries are written, empty, and say
    so with the seeds named; its figures state the reason; a comparison of tasks leaves it out."""
    files = _seed_files(tmp_path, {1: lr0_run[0], 2: lr0_run[0]})
    out = _summary_outputs(tmp_path)
    log = run_script("summary_seeds", tmp_path, input=files, output=out, params={"seeds": [1, 2]})
    ps = read_json(out["pair_stats"])
    assert ps["no_usable_seed"].startswith("no usable seed: every seed [1, 2] is degenerate")
    assert "analysis.keep_degenerate" in ps["no_usable_seed"]
    assert ps["seeds"] == [] and ps["degenerate_excluded"] == [1, 2] and ps["pairs"] == {}
    assert pd.read_csv(out["heads_mean"]).empty and read_json(out["stability"]) == {}
    assert "seeds [] summarised" in log
    figs = {
        k: str(tmp_path / f"{k}.png")
        for k in ("heatmaps", "stability_fig", "scatter_I_vs_U", "scatter_I_vs_G")
    }
    summary_inputs = {k: out[k] for k in ("heads_mean", "stability", "pair_stats")}
    run_script("fig_summary", tmp_path, input=summary_inputs, output=figs)
    for f in figs.values():
        assert open(f, "rb").read()[:4] == b"\x89PNG"
    # compare_tasks with one healthy run and the empty one: the empty one is left out
    (tmp_path / "h").mkdir()
    healthy = _seed_files(tmp_path / "h", {1: {"degenerate": False}, 2: {"degenerate": False}})
    hout = _summary_outputs(tmp_path / "h")
    run_script("summary_seeds", tmp_path, input=healthy, output=hout, params={"seeds": [1, 2]})
    table = str(tmp_path / "tasks.csv")
    log = run_script(
        "compare_tasks",
        tmp_path,
        input={"heads_mean": [hout["heads_mean"], out["heads_mean"]]},
        output={"table": table},
        params={"runs": ["m/a/random", "m/b/random"], "top_k": 3},
    )
    assert "m/b/random: no usable seed" in log
    assert pd.read_csv(table).empty  # one task left: no pair of tasks to compare
