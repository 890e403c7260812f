"""The workflow used from outside its clone, as others reuse a published workflow: with
`-s <clone>/Snakefile -d <dir>`, imported as a Snakemake module from another folder's Snakefile
(with and without a rule-name prefix, with a rule overridden), deployed by snakedeploy from a local
clone, and with its package taken from the environment (as where the workflow's files come from a
git host). Dry runs of the tiny DAG (one Snakemake call each, 5-10 s) and one real run of five cheap
jobs through the module; every file the workflow reads is found beside it, and results, logs and
benchmarks go under the working directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.workflow_utils import (
    add_tiny_model,
    copy_clone,
    run_snakemake,
    tiny_config,
    write_config,
)

#: Each test starts Snakemake (dry runs, lint, a module import): the workflow tier.
pytestmark = pytest.mark.snakemake

TINY_TARGETS = (  # the data of one task and one theta0: five cheap jobs
    "results/data/nli_a/eval_subset.json",
    "results/data/nli_a/selection.json",
    "results/tiny_bert/nli_a/random/seed1/ckpt_init/model.safetensors",
)
OVERRIDE = {"mem_mb": "1234", "runtime": "77"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A copy of the workflow as a fresh clone holds it, in a folder of its own."""
    return copy_clone(tmp_path_factory.mktemp("clone"))


@pytest.fixture(scope="module")
def reference_counts(clone, tmp_path_factory) -> dict[str, int]:
    """Jobs per rule of the tiny DAG planned with `-s <clone>/Snakefile -d <dir>` (relative
    paths, Snakemake started in a third folder): the plan every other use must reproduce."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    run = cwd / "run"
    run.mkdir()
    write_config(run, tiny_config())
    snakefile = os.path.relpath(clone / "Snakefile", cwd)
    out = dry_run(cwd, "-s", snakefile, "-d", "run", configfile="run/test_config.yaml")
    assert (run / ".snakemake").is_dir() and not (clone / ".snakemake").exists()
    return job_counts(out)


def dry_run(cwd: Path, *args: str, **kw) -> str:
    return run_snakemake(cwd, "--dry-run", *args, **kw).stdout


def job_counts(out: str) -> dict[str, int]:
    """The dry run's job table: jobs per rule."""
    table = out[out.index("Job stats:") :]
    table = table[: table.index("\ntotal")]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def resources_of(out: str, rule: str) -> list[dict[str, str]]:
    """The `resources:` line of every planned job of ``rule``, as a mapping."""
    found, current = [], None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            current = m.group(1)
        elif current == rule and line.strip().startswith("resources: "):
            items = line.strip()[len("resources: ") :].split(", ")
            found.append(dict(item.split("=", 1) for item in items))
    return found


def module_snakefile(clone: Path, prefix: bool, override: str = "finetune") -> str:
    """A Snakefile of another project that imports this workflow as a module and overrides the
    resources of one rule, as the Snakemake docs show."""
    name = f"headplast_{override}" if prefix else override
    return f'''module headplast:
    snakefile:
        "{clone / "Snakefile"}"
    config:
        config


use rule * from headplast{" as headplast_*" if prefix else ""}


use rule {override} from headplast{f" as {name}" if prefix else ""} with:
    resources:
        gpu=1,
        mem_mb={OVERRIDE["mem_mb"]},
        runtime={OVERRIDE["runtime"]},
'''


def importing_project(tmp_path: Path, clone: Path, prefix: bool) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Snakefile").write_text(module_snakefile(clone, prefix))
    write_config(project, tiny_config())
    return project


@pytest.mark.parametrize("prefix", [False, True], ids=["same_names", "prefixed"])
def test_imported_as_a_module_plans_the_same_jobs(clone, reference_counts, tmp_path, prefix):
    """`use rule * from headplast` (and `as headplast_*`) in another folder plans the tiny DAG
    job for job, and `use rule finetune from headplast with: resources:` takes effect."""
    project = importing_project(tmp_path, clone, prefix)
    out = dry_run(project)
    name = (lambda rule: f"headplast_{rule}") if prefix else (lambda rule: rule)
    assert job_counts(out) == {name(rule): n for rule, n in reference_counts.items()}
    finetunes = resources_of(out, name("finetune"))
    assert len(finetunes) == reference_counts["finetune"]
    assert all({k: r[k] for k in OVERRIDE} == OVERRIDE for r in finetunes), finetunes[0]
    frozen = resources_of(out, name("finetune_frozen"))  # the rule the override left alone
    assert frozen and all(r["mem_mb"] == "2000" for r in frozen), frozen[0]


def test_without_a_config_runs_the_clones_reference_config(clone, tmp_path):
    """`-s <clone>/Snakefile -d <empty dir>` without --configfile: config/config.yaml of the
    clone (the working directory has none), so its tasks are known."""
    config = yaml.safe_load((clone / "config" / "config.yaml").read_text())
    task = sorted(config["tasks"])[0]
    out = dry_run(
        tmp_path,
        "-s",
        str(clone / "Snakefile"),
        "-d",
        "empty",
        f"results/data/{task}/eval_subset.json",
        configfile=None,
    )
    assert job_counts(out)["eval_subset"] == 1
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == [".snakemake"]


def test_snakedeploy_from_a_local_clone(clone, reference_counts, tmp_path):
    """`snakedeploy deploy-workflow <clone> <dir>` writes the config folder, the profiles and a
    Snakefile that imports the workflow as a module; after the one-line fix README's "Usage"
    gives for a local clone (snakedeploy 0.17.1 writes the Snakefile's path relative to the
    clone, Snakemake reads it relative to the deployment's workflow/ folder, where it names the
    deployed Snakefile itself) and with the config edited, it plans the tiny DAG job for job."""
    snakedeploy = Path(sys.executable).parent / "snakedeploy"
    if not snakedeploy.exists():
        pytest.skip("snakedeploy is not installed (requirements-dev.txt pins it)")
    dest = tmp_path / "deployment"
    proc = subprocess.run(
        [str(snakedeploy), "deploy-workflow", str(clone), str(dest), "--branch", "main"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    for f in (clone / "config").iterdir():  # the configs and their README, to edit there
        assert (dest / "config" / f.name).read_text() == f.read_text()
    assert (dest / "profiles" / "slurm" / "config.yaml").exists()
    deployed = (dest / "workflow" / "Snakefile").read_text()
    assert 'configfile: "config/config.yaml"' in deployed
    name = re.search(r"^module (\w+):", deployed, flags=re.M).group(1)
    assert f"use rule * from {name}" in deployed
    assert re.search(r'snakefile:\s*\n\s*"Snakefile"\n', deployed), deployed
    fixed = deployed.replace('"Snakefile"\n', f'"{clone / "Snakefile"}"\n', 1)
    (dest / "workflow" / "Snakefile").write_text(fixed)
    (dest / "config" / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    assert job_counts(dry_run(dest, configfile=None)) == reference_counts
    assert sorted(p.name for p in dest.iterdir()) == [
        ".snakemake",
        "config",
        "profiles",
        "workflow",
    ]


def test_the_package_from_the_environment_and_a_clear_refusal_without_it(clone, tmp_path):
    """A copy of the workflow without src/ (as from a git host, which Snakemake fetches file by
    file) plans with the package of the environment (here on PYTHONPATH, as `pip install`
    puts it) and otherwise stops before any job, saying what to install."""
    bare = tmp_path / "bare"
    shutil.copytree(clone, bare, ignore=shutil.ignore_patterns("src"))
    run = tmp_path / "run"
    run.mkdir()
    write_config(run, tiny_config())
    snakefile = str(bare / "Snakefile")
    out = dry_run(run, "-s", snakefile, TINY_TARGETS[0], env={"PYTHONPATH": str(clone / "src")})
    assert job_counts(out) == {"synthetic_nli": 1, "prepare_data": 1, "eval_subset": 1}
    hidden = tmp_path / "hidden" / "headplast"  # a package that cannot be imported
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('not installed')\n")
    proc = run_snakemake(
        run, "--dry-run", "-s", snakefile, check=False, env={"PYTHONPATH": str(hidden.parent)}
    )
    words = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert f"{bare} holds no src/headplast" in words
    assert "`import headplast` fails in this environment: install the package" in words


@pytest.mark.dag
def test_a_real_run_through_the_module(clone, tmp_path):
    """Five jobs of the tiny DAG (data, selection rows, one theta0) run for real through the
    module, prefixed and with an override: the jobs import the package from the clone's src/,
    read the tiny model from the working directory and write results, logs and benchmarks
    there; nothing is written into the clone, and a second call finds everything up to date."""
    before = sorted(p for p in clone.rglob("*") if "__pycache__" not in p.parts)
    project = importing_project(tmp_path, clone, prefix=True)
    add_tiny_model(project)
    proc = run_snakemake(project, *TINY_TARGETS)
    ran = re.findall(r"^(?:local)?rule (\w+):$", proc.stdout + proc.stderr, flags=re.M)
    assert sorted(ran) == [
        "headplast_eval_subset",
        "headplast_init_checkpoint",
        "headplast_prepare_data",
        "headplast_selection_split",
        "headplast_synthetic_nli",
    ]
    for target in TINY_TARGETS:
        assert (project / target).stat().st_size > 0, target
    assert (project / "logs/init_checkpoint/tiny_bert/nli_a/random/seed1.log").exists()
    assert (project / "benchmarks/init_checkpoint/tiny_bert/nli_a/random/seed1.tsv").exists()
    assert sorted(p for p in clone.rglob("*") if "__pycache__" not in p.parts) == before
    assert "Nothing to be done" in " ".join(
        (lambda p: p.stdout + p.stderr)(run_snakemake(project, "--dry-run", *TINY_TARGETS)).split()
    )
