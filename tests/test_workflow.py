"""Workflow tests: lint and format, a real run of the tiny DAG, dry runs that check exactly which
jobs a config change reruns, the HTML report, and the agreement of pip and conda pins."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow_utils import REPO, make_workdir, run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
MEASURES = {"theta0_sweep", "importance_pre_shared", "importance_post", "gradfisher_pre"}
TRAINING = {"init_checkpoint", "probe_checkpoint", "finetune"}
DATA = {"synthetic_nli", "prepare_data", "eval_subset"}
ANALYSIS = {"stats", "cases", "fig_I_vs_U", "fig_I_vs_G", "fig_stats", "fig_heatmaps"}
SUMMARY = {"summary_seeds", "fig_summary", "compare_tasks", "compare_starts", "all"}


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
    return jobs


def rules_of(jobs) -> set[str]:
    return {rule for rule, _ in jobs}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The tiny DAG (2 tasks x 2 seeds, 2-layer x 4-head random BERT) run once, for real."""
    workdir = make_workdir(tmp_path_factory.mktemp("dag"))
    run_snakemake(workdir)
    return workdir


def test_lint_and_format_clean():
    lint = subprocess.run(
        [
            str(BIN / "snakemake"),
            "--lint",
            "--configfile",
            "config/demo.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0 and "Lints for" not in lint.stdout + lint.stderr, lint.stdout
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr


def test_python_lint_and_format_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([str(BIN / "ruff"), *args], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reference_config_plans_the_full_experiment():
    """config/config.yaml: DeBERTa-v3-base on MNLI and RTE, 5 seeds -> one job per artifact."""
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--dry-run", "--quiet", "rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    assert counts["finetune"] == "20" and counts["importance_pre_shared"] == "20"
    assert counts["probe_checkpoint"] == "10" and counts["theta0_sweep"] == "2"
    assert counts["eval_subset"] == "2" and counts["compare_tasks"] == "1"


def test_tiny_dag_produces_every_artifact(finished):
    cfg = tiny_config()
    (model,) = cfg["models"]
    for task in cfg["tasks"]:
        assert (finished / f"results/data/{task}/eval_subset.json").exists()
        assert (finished / "results" / model / task / "theta0_sweep.safetensors").exists()
        for start, seed in itertools.product(cfg["starts"], cfg["seeds"]):
            run = finished / "results" / model / task / start
            d = run / f"seed{seed}"
            for name in (
                "importance_pre.jsonl",
                "importance_post.jsonl",
                "gradfisher_pre.jsonl",
                "update.jsonl",
                "stats.json",
                "cases.json",
                "run_config.json",
                "ckpt_init/model.safetensors",
                "ckpt_final/model.safetensors",
            ):
                assert (d / name).stat().st_size > 0, name
            heads = pd.read_csv(d / "heads.csv")
            assert len(heads) == 2 * 4
            for col in "layer head I_pre I_post G F Ppred U Urel Uq Uk Uv Uo".split():  # SPEC
                assert heads[col].notna().all(), col
            assert (heads["U"] > 0).all()  # training moved every head
            for fig in ("fig_I_vs_U", "fig_I_vs_G", "fig_stats", "fig_heatmaps"):
                png = (d / f"{fig}.png").read_bytes()
                assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, fig
            run_config = json.loads((d / "run_config.json").read_text())
            assert ("probe" in run_config) == (start == "probe")
            if (
                start == "probe"
            ):  # the probe's record, and its theta0 is what fine-tuning started from
                assert run_config["probe"]["validation"]["probe"]["accuracy"] >= 0
                assert run_config["probe"]["seed"] == seed
            for fig in ("fig_heatmaps_mean", "fig_rank_stability", "fig_I_vs_U_mean"):
                png = (run / "summary" / f"{fig}.png").read_bytes()
                assert png[:8] == b"\x89PNG\r\n\x1a\n"
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


def test_analysis_parameter_reruns_only_statistics_and_figures(finished):
    jobs = _rerun_plan(finished, {"analysis": {"top_k": 2}})
    assert "stats" in rules_of(jobs)
    assert rules_of(jobs) <= ANALYSIS | SUMMARY
    jobs = _rerun_plan(finished, {"analysis": {"top_quantile": 0.25}})
    assert {"cases", "fig_I_vs_U", "fig_I_vs_G"} <= rules_of(jobs) <= ANALYSIS | SUMMARY
    assert "stats" not in rules_of(jobs)


def test_eval_subset_size_reruns_measures_not_training(finished):
    jobs = _rerun_plan(finished, {"eval_subset": {"size": 30}})
    assert {"eval_subset", *MEASURES, "heads"} <= rules_of(jobs)
    assert not rules_of(jobs) & (TRAINING | {"update", "prepare_data", "synthetic_nli"})


def test_training_hyperparameter_reruns_only_that_task(finished):
    jobs = _rerun_plan(finished, {"tasks": {"nli_a": {"train": {"learning_rate": 5.0e-4}}}})
    assert {"finetune", "importance_post", "update", "heads"} <= rules_of(jobs)
    theta0 = {"init_checkpoint", "probe_checkpoint", "theta0_sweep", "importance_pre_shared"}
    assert not rules_of(jobs) & (theta0 | {"gradfisher_pre"} | DATA)
    touched = {w.get("task") for rule, w in jobs if "task" in w}
    assert touched == {"nli_a"}
    assert {rule for rule, w in jobs if not w} <= {"compare_tasks", "compare_starts", "all"}


def _job_key(job: tuple[str, dict[str, str]]) -> tuple[str, tuple]:
    return job[0], tuple(sorted(job[1].items()))


def test_probe_hyperparameter_reruns_exactly_the_probe_start(finished):
    """Changing a `probe:` value reruns every job of the probe start (probing, fine-tuning, every
    measure, statistic and summary) and the comparisons across starts: nothing of the random
    start, no data job and not the shared theta0 sweep."""
    everything = planned_jobs(finished, "--forceall")
    expected = [
        job
        for job in everything
        if job[1].get("start") == "probe"  # probe_checkpoint's path spells `probe` itself
        or job[0] in {"probe_checkpoint", "compare_tasks", "compare_starts", "all"}
    ]
    for change in ({"learning_rate": 5.0e-3}, {"epochs": 2}, {"batch_size": 8}):
        jobs = _rerun_plan(finished, {"probe": change})
        assert sorted(map(_job_key, jobs)) == sorted(map(_job_key, expected)), change
    assert {"probe_checkpoint", "finetune", "importance_pre_shared", "update"} <= rules_of(jobs)
    assert not [job for job in jobs if job[1].get("start") == "random"]
    assert not rules_of(jobs) & ({"init_checkpoint", "theta0_sweep"} | DATA)


def test_report_has_every_figure(finished):
    run_snakemake(finished, "--report", "report.html")
    html = (finished / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in ("fig_I_vs_U", "fig_stats", "fig_heatmaps_mean", "fig_rank_stability"):
        assert name in html, name


def _pip_pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def test_conda_envs_pin_what_pip_pins():
    pip_pins = _pip_pins((REPO / "requirements.txt").read_text().splitlines())
    assert pip_pins["torch"] == "2.13.0"
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip_section = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        assert _pip_pins(pip_section) == pip_pins, env.name
    used = set(
        re.findall(
            r'"\.\./envs/([\w.-]+)"', "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
        )
    )
    assert used == {e.name for e in envs}


def test_every_rule_names_a_conda_env_and_a_log():
    text = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    blocks = re.split(r"^(?:rule|use rule) ", text, flags=re.M)[1:]
    for block in blocks:
        name = block.split()[0].rstrip(":")
        if block.startswith(f"{name} as "):
            continue  # `use rule ... with:` inherits both
        assert "conda:" in block and "log:" in block, name
