"""Workflow tests on a real run of the tiny DAG: its artifacts, dry runs that check exactly which
jobs a config change reruns, the HTML report, and two runs of one seed giving the same bytes.
Checks that run no job are in tests/test_workflow_files.py (pytest-xdist keeps this file in the
process that holds the finished DAG; those run in the other)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.browser import open_page
from tests.workflow_utils import make_workdir, run_snakemake, tiny_config, write_config

BIN = Path(sys.executable).parent
TRAINING = {"init_checkpoint", "probe_features", "probe_checkpoint", "finetune"}
DATA = {"synthetic_nli", "prepare_data", "eval_subset", "selection_split"}


def planned_jobs(workdir: Path, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run (with ``args``) would execute."""
    out = run_snakemake(workdir, "--dry-run", *args).stdout
    jobs, rule = [], None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.append((rule, {}))
            continue
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and jobs:
            jobs[-1][1].update(dict(kv.split("=", 1) for kv in m.group(1).split(", ")))
    for _, wildcards in jobs:  # full fine-tuning's `{method}` is empty: its jobs as before LoRA
        if wildcards.get("method") == "":
            del wildcards["method"]
    return jobs


def rules_of(jobs) -> set[str]:
    return {rule for rule, _ in jobs}


@pytest.mark.dag
def test_tiny_dag_produces_every_artifact(finished):
    cfg = tiny_config()
    (model,) = cfg["models"]
    for task in cfg["tasks"]:
        assert (finished / f"results/data/{task}/eval_subset.json").exists()
        # theta1 chosen on 12 of the 120 train pairs, never on the validation split
        selection = json.loads((finished / f"results/data/{task}/selection.json").read_text())
        assert (selection["split"], selection["n_examples"]) == ("train", 12)
        for rc_path in (finished / "results" / model / task).glob("*/seed*/run_config.json"):
            rc = json.loads(rc_path.read_text())
            assert rc["selection"]["indices_sha256"] == selection["indices_sha256"], rc_path
            assert rc["n_train_examples"] == 108 and rc["selection"]["n_examples"] == 12
        assert (finished / "results" / model / task / "theta0_sweep.safetensors").exists()
        assert (finished / "results" / model / task / "probe_features.safetensors").exists()
        for start, seed in itertools.product(cfg["starts"], cfg["seeds"]):
            run = finished / "results" / model / task / start
            d = run / f"seed{seed}"
            for name in (
                "importance_pre.jsonl",
                "importance_post.jsonl",
                "gradfisher_pre.jsonl",
                "update.jsonl",
                "pruning.jsonl",
                "function_change.jsonl",
                "stats.json",
                "cases.json",
                "run_config.json",
                "ckpt_init/model.safetensors",
                "ckpt_final/model.safetensors",
            ):
                assert (d / name).stat().st_size > 0, name
            heads = pd.read_csv(d / "heads.csv")
            assert len(heads) == 2 * 4
            for col in "layer head I_pre I_post G F Ppred U Urel Uq Uk Uv Uo A_js C_rel".split():
                assert heads[col].notna().all(), col
            assert (heads["U"] > 0).all()  # training moved every head
            assert (heads["C_rel"] > 0).all() and (heads["A_js"] >= 0).all()
            stats = json.loads((d / "stats.json").read_text())
            assert "I_pre~A_js" in stats["pairs"] and stats["pruning"]["random"]["n"] == 2
            for fig in ("fig_I_vs_U", "fig_I_vs_G", "fig_stats", "fig_heatmaps", "fig_pruning"):
                png = (d / f"{fig}.png").read_bytes()
                assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, fig
            run_config = json.loads((d / "run_config.json").read_text())
            assert ("probe" in run_config) == (start == "probe")
            if (
                start == "probe"
            ):  # the probe's record, and its theta0 is what fine-tuning started from
                assert run_config["probe"]["validation"]["probe"]["accuracy"] >= 0
                assert run_config["probe"]["seed"] == seed
                probe = run_config["probe"]
                assert 1 <= probe["best_epoch"] <= probe["epochs_run"] <= cfg["probe"]["epochs"]
                assert probe["n_held_out_examples"] > 0  # early stopping on the train split
            for fig in (
                "fig_heatmaps_mean",
                "fig_rank_stability",
                "fig_I_vs_U_mean",
                "fig_pruning_mean",
            ):
                png = (run / "summary" / f"{fig}.png").read_bytes()
                assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # freeze interventions (the random start only, orders Urel and one random draw)
    for task in cfg["tasks"]:
        run = finished / "results" / model / task
        for seed in cfg["seeds"]:
            base = json.loads((run / f"random/seed{seed}/run_config.json").read_text())
            for order in ("Urel", "random_0"):
                d = run / f"random/seed{seed}/freeze/{order}"
                rc = json.loads((d / "run_config.json").read_text())
                assert rc["freeze"]["order"] == order and len(rc["frozen_heads"]) == 2  # 8 / 4
                assert rc["global_steps"] == base["global_steps"]  # same data and settings
                upd = pd.read_json(d / "update.jsonl", lines=True).set_index(["layer", "head"])
                frozen = [tuple(h) for h in rc["frozen_heads"]]
                assert (upd.loc[frozen, "Urel"] == 0).all()  # held bit for bit at theta0
                assert (upd.drop(index=frozen)["U"] > 0).all()  # the others trained
                assert not (d / "ckpt_final" / "model.safetensors").exists()  # temporary
            assert not (run / f"probe/seed{seed}/freeze").exists()
        table = pd.read_csv(run / "random/summary/freeze.csv")
        assert list(table["order"]) == ["Urel", "random_0"] and (table["n_seeds"] == 2).all()
        assert table.loc[0, "verdict"] in ("below", "within", "above")
        assert (table["frozen_Urel_max"] == 0).all()
        assert (run / "random/summary/fig_freeze.png").read_bytes()[:4] == b"\x89PNG"
        assert not (run / "probe/summary/freeze.csv").exists()
    comparison = pd.read_csv(finished / "results/comparison/tasks_comparison.csv")
    assert set(comparison["measure"]) >= {"I_pre", "Urel"}
    assert set(comparison["model"]) == {model} and set(comparison["start"]) == set(cfg["starts"])
    starts = pd.read_csv(finished / "results/comparison/starts_comparison.csv")
    assert set(starts["start"]) == {"random", "probe"} and set(starts["task"]) == set(cfg["tasks"])
    assert {"I_pre", "Urel", "I_pre~Urel"} <= set(starts["item"])
    assert (finished / "results/comparison/fig_starts.png").read_bytes()[:4] == b"\x89PNG"
    assert planned_jobs(finished) == []  # nothing stale after a complete run


def _rerun_plan(finished: Path, overrides: dict) -> list[tuple[str, dict[str, str]]]:
    write_config(finished, tiny_config(overrides))
    try:
        return planned_jobs(finished)
    finally:
        write_config(finished, tiny_config())


# The tiny DAG's wildcards (.test/config.yaml), spelled out: the reference for the rerun plans.
MODEL, TASKS, STARTS, SEEDS = "tiny_bert", ("nli_a", "nli_b"), ("random", "probe"), ("1", "2")
PER_SEED_ANALYSIS = ("stats", "cases", "fig_I_vs_U", "fig_I_vs_G", "fig_stats", "fig_heatmaps")
SUMMARY_TAIL = {"per_run": ("summary_seeds", "fig_summary")}
PRUNING_SUMMARY = ("summary_pruning", "fig_pruning_mean")
# what reads every run's summaries: the comparisons, the findings page and the explorer
COMPARISONS = ("compare_tasks", "compare_starts", "findings", "explorer", "all")


def job_multiset(jobs) -> Counter:
    """Counter of (rule, frozenset of wildcard items): the exact jobs of a plan, with repeats."""
    return Counter((rule, frozenset(w.items())) for rule, w in jobs)


def expected_jobs(
    per_seed=(), per_run=(), per_model_task=(), per_task_data=(), once=(), tasks=TASKS
) -> Counter:
    """The jobs of the listed rules, for ``tasks`` only: per (start, seed), per run summary
    ({model, task, start}), per (model, task) (the shared theta0 sweep), per task data ({task}),
    and rules without wildcards."""
    out: Counter = Counter()
    for task in tasks:
        for start in STARTS:
            for rule in per_seed:
                for seed in SEEDS:
                    w = {"model": MODEL, "task": task, "start": start, "seed": seed}
                    out[(rule, frozenset(w.items()))] += 1
            for rule in per_run:
                w = {"model": MODEL, "task": task, "start": start}
                out[(rule, frozenset(w.items()))] += 1
        for rule in per_model_task:
            out[(rule, frozenset({"model": MODEL, "task": task}.items()))] += 1
        for rule in per_task_data:
            out[(rule, frozenset({"task": task}.items()))] += 1
    for rule in once:
        out[(rule, frozenset())] += 1
    return out


FREEZE_START, FREEZE_ORDERS = "random", ("Urel", "random_0")  # .test/config.yaml


def freeze_jobs(per_order=(), per_run=(), tasks=TASKS, orders=FREEZE_ORDERS) -> Counter:
    """The freeze interventions' jobs of the listed rules: per (seed, order) and per run, for the
    one start the tiny DAG runs them for."""
    out: Counter = Counter()
    for task in tasks:
        base = {"model": MODEL, "task": task, "start": FREEZE_START}
        for rule in per_order:
            for seed in SEEDS:
                for order in orders:
                    out[(rule, frozenset({**base, "seed": seed, "order": order}.items()))] += 1
        for rule in per_run:
            out[(rule, frozenset(base.items()))] += 1
    return out


@pytest.mark.dag
def test_interventions_rerun_only_their_own_jobs(finished):
    """A new fraction reruns every frozen fine-tune and what reads it, nothing else; one more
    random draw adds its own jobs and the summaries, and leaves the existing draws alone; fewer
    tasks rerun nothing but the page."""
    page_and_all = Counter({("findings", frozenset()): 1, ("all", frozenset()): 1})
    jobs = _rerun_plan(finished, {"interventions": {"fraction": 0.5}})
    assert (
        job_multiset(jobs)
        == freeze_jobs(("finetune_frozen", "update_frozen"), ("freeze_summary", "fig_freeze"))
        + page_and_all
    )
    jobs = _rerun_plan(finished, {"interventions": {"n_random": 2}})
    assert (
        job_multiset(jobs)
        == freeze_jobs(("finetune_frozen", "update_frozen"), orders=("random_1",))
        + freeze_jobs(per_run=("freeze_summary", "fig_freeze"))
        + page_and_all
    )
    # keeping them to one task (the reference config's first run) reruns only the page that
    # lists them; adding the task back (config/full-design.yaml) adds only its own jobs
    assert job_multiset(_rerun_plan(finished, {"interventions": {"tasks": ["nli_a"]}})) == (
        page_and_all
    )


def test_job_multiset_tells_one_seed_from_all():
    """The comparison the rerun tests rely on: a plan for one seed is not the plan for all."""
    w = {"model": MODEL, "task": "nli_a", "start": "random", "seed": "1"}
    one = [("stats", w)]
    assert job_multiset(one) != expected_jobs(per_seed=("stats",), tasks=("nli_a",))
    assert job_multiset(one * 2) != job_multiset(one)
    every = [("stats", {**w, "start": start, "seed": seed}) for start in STARTS for seed in SEEDS]
    assert job_multiset(every) == expected_jobs(per_seed=("stats",), tasks=("nli_a",))


def _reversed_keys(value):
    """``value`` with the keys of every mapping in reverse order."""
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    return value


@pytest.mark.dag
def test_key_order_and_spelling_of_the_config_rerun_nothing(finished):
    """After a finished run, the same config with its keys sorted (as a YAML tool writes it) or
    reversed at every level plans nothing; nor do nested `--config` overrides equal to the
    file's values, given as text ("1e-2") or as an integer where a number is asked for."""
    cfg = tiny_config()
    try:
        for text in (
            yaml.safe_dump(cfg, sort_keys=True),
            yaml.safe_dump(_reversed_keys(cfg), sort_keys=False),
        ):
            (finished / "test_config.yaml").write_text(text)
            assert planned_jobs(finished) == [], text
    finally:
        write_config(finished, cfg)
    train = cfg["tasks"]["nli_b"]["train"]
    same = {"nli_b": {"train": {"eval_steps": train["eval_steps"], "learning_rate": "1e-3"}}}
    assert train["learning_rate"] == 1e-3
    probe = {"learning_rate": "1e-2", "epochs": cfg["probe"]["epochs"]}
    assert cfg["probe"]["learning_rate"] == 1e-2
    jobs = planned_jobs(
        finished, "--config", f"tasks={json.dumps(same)}", f"probe={json.dumps(probe)}"
    )
    assert jobs == []
    # an override that differs is seen (the check above can fail)
    changed = {"nli_b": {"train": {"learning_rate": "2e-3"}}}
    assert "finetune" in rules_of(
        planned_jobs(finished, "--config", f"tasks={json.dumps(changed)}")
    )


@pytest.mark.dag
def test_analysis_parameter_reruns_only_statistics_and_figures(finished):
    jobs = _rerun_plan(finished, {"analysis": {"top_k": 2}})  # stats and compare_tasks use it
    assert job_multiset(jobs) == expected_jobs(
        per_seed=("stats", "fig_stats"), **SUMMARY_TAIL, once=COMPARISONS
    )
    jobs = _rerun_plan(finished, {"analysis": {"top_quantile": 0.25}})  # cases only
    assert job_multiset(jobs) == expected_jobs(
        per_seed=("cases", "fig_I_vs_U", "fig_I_vs_G"), **SUMMARY_TAIL, once=COMPARISONS
    )


@pytest.mark.dag
def test_pruning_parameter_reruns_only_pruning_and_what_reads_it(finished):
    jobs = _rerun_plan(finished, {"pruning": {"n_random_orders": 3}})
    assert job_multiset(jobs) == expected_jobs(
        per_seed=("pruning", "stats", "fig_stats", "fig_pruning"),
        per_run=("summary_seeds", "fig_summary", *PRUNING_SUMMARY),
        once=COMPARISONS,
    )


@pytest.mark.dag
def test_eval_subset_size_reruns_measures_not_training(finished):
    jobs = _rerun_plan(finished, {"eval_subset": {"size": 30}})
    per_seed_measures = (
        "importance_pre_shared",
        "importance_post",
        "gradfisher_pre",
        "pruning",
        "function_change",
    )
    assert job_multiset(jobs) == expected_jobs(
        per_seed=(*per_seed_measures, "heads", *PER_SEED_ANALYSIS, "fig_pruning"),
        per_run=("summary_seeds", "fig_summary", *PRUNING_SUMMARY),
        per_model_task=("theta0_sweep",),
        per_task_data=("eval_subset",),
        once=COMPARISONS,
    )


@pytest.mark.dag
def test_training_hyperparameter_reruns_only_that_task(finished):
    jobs = _rerun_plan(finished, {"tasks": {"nli_a": {"train": {"learning_rate": 5.0e-4}}}})
    assert job_multiset(jobs) == expected_jobs(
        per_seed=(
            "finetune",
            "importance_post",
            "update",
            "pruning",
            "function_change",
            "heads",
            *PER_SEED_ANALYSIS,
            "fig_pruning",
        ),
        per_run=("summary_seeds", "fig_summary", *PRUNING_SUMMARY, "fig_training"),
        once=COMPARISONS,
        tasks=("nli_a",),
    ) + freeze_jobs(
        ("finetune_frozen", "update_frozen"), ("freeze_summary", "fig_freeze"), ("nli_a",)
    )


@pytest.mark.dag
def test_selection_settings_rerun_the_fine_tunes_and_what_follows_nothing_before(finished):
    """`selection:` reruns the selection rows, the probe (its early stopping reads them), every
    fine-tune and frozen fine-tune and what follows, exactly the jobs of forcing
    selection_split; not the data, theta0, the eval subset or the theta0 sweep. A task's own
    `tasks.<task>.selection` reruns that task alone."""
    jobs = _rerun_plan(finished, {"selection": {"seed": 5}})
    forced = planned_jobs(finished, "--forcerun", "selection_split")
    assert job_multiset(jobs) == job_multiset(forced)
    counts = Counter(rule for rule, _ in jobs)
    assert counts["selection_split"] == 2 and counts["finetune"] == 8
    assert counts["probe_features"] == 2 and counts["probe_checkpoint"] == 4
    assert counts["finetune_frozen"] == 8  # 2 tasks x 2 seeds x 2 orders (random start)
    assert not rules_of(jobs) & {"init_checkpoint", "theta0_sweep", *(DATA - {"selection_split"})}
    random_pre = [
        job
        for job in jobs
        if job[0] in {"importance_pre_shared", "gradfisher_pre"} and job[1]["start"] == "random"
    ]
    assert random_pre == []  # the random start's theta0 measures do not read the selection
    one = _rerun_plan(finished, {"tasks": {"nli_a": {"selection": {"fraction": 0.2}}}})
    assert {w.get("task") for _, w in one} == {"nli_a", None}  # None: the comparisons
    assert Counter(rule for rule, _ in one)["finetune"] == 4


@pytest.mark.dag
def test_probe_hyperparameter_reruns_exactly_the_probe_start(finished):
    """Changing a `probe:` value reruns every job of the probe start (probing, fine-tuning, every
    measure, statistic and summary) and the comparisons across starts: nothing of the random
    start, no data job and not the shared theta0 sweep."""
    everything = planned_jobs(finished, "--forceall")
    expected = [
        job
        for job in everything
        if job[1].get("start") == "probe"  # probe_checkpoint's path spells `probe` itself
        or job[0] in {"probe_checkpoint", *COMPARISONS}
    ]
    for change in (
        {"learning_rate": 5.0e-3},
        {"epochs": 2},
        {"batch_size": 8},
        {"patience": 1},
    ):
        jobs = _rerun_plan(finished, {"probe": change})
        assert job_multiset(jobs) == job_multiset(expected), change
    # the train subsample changes the features too: once per (model, task), for every seed
    subsample = _rerun_plan(finished, {"probe": {"max_train_samples": 100}})
    features = expected_jobs(per_model_task=("probe_features",))
    assert job_multiset(subsample) == job_multiset(expected) + features
    assert {"probe_checkpoint", "finetune", "importance_pre_shared", "update"} <= rules_of(jobs)
    assert not [job for job in jobs if job[1].get("start") == "random"]
    assert not rules_of(jobs) & ({"init_checkpoint", "theta0_sweep"} | DATA)


@pytest.mark.dag
def test_changed_package_code_reruns_exactly_its_rules(finished):
    """A real change to the gradients code reruns gradfisher_pre and what depends on it, the
    same jobs as forcing gradfisher_pre; training and the other measures stay. A comment or
    docstring edit reruns nothing."""
    link = finished / "src"
    package = link.resolve()
    link.unlink()
    shutil.copytree(package, link)  # the workdir's own copy of the same code
    try:
        grad = link / "headplast" / "measure" / "gradients.py"
        original = grad.read_text()
        assert planned_jobs(finished) == []
        docs = original.replace('"""G, F, Ppred', '"""Gradient statistics: G, F, Ppred', 1)
        grad.write_text(docs.replace("DEFAULT_EPS = 1e-20", "DEFAULT_EPS = 1e-20  # eps") + "#\n")
        assert docs != original and planned_jobs(finished) == []
        forced = planned_jobs(finished, "--forcerun", "gradfisher_pre")  # the reference
        grad.write_text(original.replace("DEFAULT_EPS = 1e-20", "DEFAULT_EPS = 1e-12"))
        jobs = planned_jobs(finished)
        assert job_multiset(jobs) == job_multiset(forced)
        assert Counter(rule for rule, _ in jobs)["gradfisher_pre"] == 8  # tasks x starts x seeds
        assert not rules_of(jobs) & (TRAINING | DATA | {"importance_pre", "importance_post"})
    finally:
        shutil.rmtree(link)
        link.symlink_to(package, target_is_directory=True)
    assert planned_jobs(finished) == []  # the original code: up to date again


@pytest.mark.dag
def test_a_start_without_usable_seed_is_a_finding_and_the_dag_completes(finished, tmp_path):
    """Every seed of one start degenerate (the others healthy) and degenerate seeds left out:
    that start's summaries say "no usable seed" with the seeds named, the findings page says it
    in words, and every other artifact of the DAG is made (nothing left to plan). Run on a copy
    of the finished tree, so the shared one is untouched."""
    work = tmp_path / "wf"
    shutil.copytree(finished, work, symlinks=True)
    for rc_path in sorted(work.glob("results/*/*/*/seed*/run_config.json")):
        rc = json.loads(rc_path.read_text())
        rc["degenerate"] = rc_path.parts[-4:-2] == ("nli_a", "random")
        rc_path.write_text(json.dumps(rc))
    write_config(work, tiny_config({"analysis": {"keep_degenerate": False}}))
    run_snakemake(work)
    summary = work / "results" / MODEL / "nli_a/random/summary"
    words = json.loads((summary / "pair_stats.json").read_text())["no_usable_seed"]
    assert words.startswith("no usable seed: every seed [1, 2] is degenerate")
    assert json.loads((summary / "pruning_auc.json").read_text())["no_usable_seed"] == words
    findings = json.loads((work / "results/findings.json").read_text())
    by_run = {(r["task"], r["start"]): r for r in findings["runs"]}
    assert by_run[("nli_a", "random")]["no_usable_seed"] == words
    assert all(not r["no_usable_seed"] for k, r in by_run.items() if k != ("nli_a", "random"))
    assert words in (work / "results/findings.html").read_text()
    assert planned_jobs(work) == []  # every artifact made, nothing stale


@pytest.mark.dag
def test_a_run_where_no_start_is_usable_finishes_and_says_so(finished, tmp_path, browser):
    """Every seed of every start degenerate, degenerate seeds left out, and no --keep-going: the
    run exits 0, each summary across runs says why it has nothing (the start comparison one row
    per start, its figure in words), the findings page says no start is usable, the explorer
    opens, and the report is built. Run on a copy of the finished tree."""
    work = tmp_path / "wf"
    shutil.copytree(finished, work, symlinks=True)
    for rc_path in sorted(work.glob("results/*/*/*/seed*/run_config.json")):
        rc = json.loads(rc_path.read_text())
        rc["degenerate"] = True
        rc_path.write_text(json.dumps(rc))
    write_config(work, tiny_config({"analysis": {"keep_degenerate": False}}))
    proc = run_snakemake(work)  # check=True: a non-zero exit fails here
    assert "--keep-going" not in proc.args
    results = work / "results"
    starts = pd.read_csv(results / "comparison/starts_comparison.csv")
    assert len(starts) == len(TASKS) * len(STARTS)
    assert set(starts["section"]) == {"not_compared"}
    assert starts["note"].str.startswith("not compared: no usable seed").all()
    assert (results / "comparison/fig_starts.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(results / "comparison/tasks_comparison.csv").empty
    for task in TASKS:
        for start in STARTS:
            summary = results / MODEL / task / start / "summary"
            for fig in ("fig_heatmaps_mean", "fig_pruning_mean", "fig_training"):
                assert (summary / f"{fig}.png").read_bytes()[:4] == b"\x89PNG", (task, start)
        assert pd.read_csv(results / MODEL / task / "random/summary/freeze.csv").empty
    findings = json.loads((results / "findings.json").read_text())
    assert all(r["no_usable_seed"] for r in findings["runs"])
    for t in findings["tasks"]:
        assert t["sentences"][-1].startswith("No start has a usable seed")
    with open_page(browser, results / "findings.html") as page:
        headline = page.locator(".hp-findings .headline")
        headline.wait_for(state="visible")
        text = headline.inner_text()
        assert text.count("No start has a usable seed") == len(TASKS)
        assert "analysis.keep_degenerate" in text
    with open_page(browser, results / "explorer.html") as page:
        page.wait_for_load_state("load")
    run_snakemake(work, "--report", "report.html")
    assert (work / "report.html").stat().st_size > 100_000
    assert planned_jobs(work) == []


@pytest.mark.dag
def test_checkpoints_name_the_task_labels(finished):
    """theta0 and theta1 carry the task's label names (results/data/<task>/meta.json)."""
    import json

    for ckpt in sorted(finished.glob("results/*/*/random/seed*/ckpt_*/config.json")):
        cfg = json.loads(ckpt.read_text())
        meta = json.loads((finished / "results/data" / ckpt.parts[-5] / "meta.json").read_text())
        assert list(cfg["id2label"].values()) == meta["label_names"], ckpt
        assert cfg["label2id"] == {n: i for i, n in enumerate(meta["label_names"])}
    assert len(sorted(finished.glob("results/*/*/random/seed*/ckpt_*/config.json"))) == 8


@pytest.mark.dag
def test_report_has_every_figure_and_opens_on_the_findings(finished, browser):
    run_snakemake(finished, "--report", "report.html")
    html = (finished / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in (
        "fig_I_vs_U",
        "fig_stats",
        "fig_heatmaps_mean",
        "fig_rank_stability",
        "fig_pruning",
        "fig_pruning_mean",
        "fig_freeze",
        "fig_training",
        "findings.html",
        "explorer.html",
    ):
        assert name in html, name
    # in Chromium the report's first page is the findings: the answer box, no click needed.
    # Snakemake's own template warns about its Tailwind build; that one message is accepted.
    with open_page(browser, finished / "report.html", allow=("cdn.tailwindcss.com",)) as page:
        headline = page.locator(".hp-findings .headline")
        headline.wait_for(state="visible")
        assert "I_pre and Urel" in headline.inner_text()


# ------------------------------------------------------------------------------- determinism

JSONL = ["importance_pre.jsonl", "importance_post.jsonl", "gradfisher_pre.jsonl", "update.jsonl"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, finished):
    """The four per-head JSONL files of one task and seed from two runs in their own folders: the
    session's whole tiny DAG (2 tasks x 2 seeds), and a run of seed 1 alone up to those files (a
    different DAG: the same numbers)."""
    wd = make_workdir(tmp_path_factory.mktemp("run_b"), {"seeds": [1]})
    run_snakemake(wd, *[f"results/tiny_bert/nli_a/random/seed1/{f}" for f in JSONL])
    return [finished, wd]


@pytest.mark.dag
def test_two_runs_give_byte_identical_jsonl(two_runs):
    a, b = (wd / "results" / "tiny_bert" / "nli_a" / "random" / "seed1" for wd in two_runs)
    for name in JSONL:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert len((a / name).read_text().splitlines()) == 8  # 2 layers x 4 heads


@pytest.mark.dag
def test_workflow_checkpoints_are_safetensors_only(two_runs):
    seed_dir = two_runs[0] / "results" / "tiny_bert" / "nli_a" / "random" / "seed1"
    for which in ("ckpt_init", "ckpt_final"):
        names = {p.name for p in (seed_dir / which).iterdir()}
        assert "model.safetensors" in names, (which, names)
        pickles = [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
        assert pickles == [], (which, pickles)
