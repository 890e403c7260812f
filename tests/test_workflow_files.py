"""Checks of the workflow's files that run no job: Snakemake's lint and snakefmt, ruff, the
reference config's plan (a dry run), pip and conda pins, a conda env and a log for every rule.
Apart from tests/test_workflow.py, whose file pytest-xdist keeps in the process that holds the
finished tiny DAG (tests/conftest.py): these need no DAG, so they run in the other process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.workflow_utils import REPO

BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess:
    """A tool of the venv (``args[0]``) run in the repository, its output captured as text."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=REPO, capture_output=True, text=True)


@pytest.mark.snakemake
def test_lint_and_format_clean():
    lint = _run("snakemake", "--lint", "--configfile", "config/demo.yaml")
    assert lint.returncode == 0 and "Lints for" not in lint.stdout + lint.stderr, lint.stdout
    fmt = _run("snakefmt", "--check", "Snakefile", "rules")
    assert fmt.returncode == 0, fmt.stderr


def test_python_lint_and_format_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        proc = _run("ruff", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.snakemake
def test_reference_config_plans_the_full_experiment():
    """config/config.yaml: DeBERTa-v3-base on MNLI and RTE, 5 seeds -> one job per artifact."""
    proc = _run("snakemake", "--dry-run", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    assert counts["finetune"] == "20" and counts["importance_pre_shared"] == "20"
    assert counts["probe_checkpoint"] == "10" and counts["theta0_sweep"] == "2"
    assert counts["probe_features"] == "2"  # once per model and task, not per seed
    assert counts["eval_subset"] == "2" and counts["compare_tasks"] == "1"


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
