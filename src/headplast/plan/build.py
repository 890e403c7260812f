"""A config's plan end to end: its jobs, each job's work, the rows and totals, the header.

:func:`load_config` reads a config as the workflow does (command-line typing, the defaults of
:mod:`headplast.train.defaults` and of the schema filled in, validated by Snakemake's own
validator); :func:`job_works` gives every job of a dry run its work; :func:`build_plan` does it
all for one config and returns a :class:`Plan`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from headplast.plan.flops import ShapeCounts
from headplast.plan.gpus import Rate, measured_rates, read_benchmarks
from headplast.plan.jobs import Job, dry_run_jobs, rule_stages
from headplast.plan.report import Row, Total, plan_rows, stage_totals
from headplast.plan.sizes import (
    Architecture,
    PlanInputError,
    TaskSizes,
    architecture,
    resolve_model_path,
    task_sizes,
    tokens_per_example,
)
from headplast.plan.work import NO_WORK, WORK, Context, JobWork

#: The workflow folder this package belongs to (its Snakefile, rules/ and schema), when the
#: package runs from a clone.
WORKFLOW_DIR = Path(__file__).resolve().parents[3]


def default_snakefile() -> Path:
    """The Snakefile of the clone this package is in, else ``./Snakefile``."""
    beside = WORKFLOW_DIR / "Snakefile"
    return beside if beside.is_file() else Path("Snakefile")


def load_config(configfiles: Path | Sequence[Path], schema_path: Path) -> dict[str, Any]:
    """``configfiles`` as the workflow sees them (``--configfile a b``: each merged over the one
    before, dictionaries key by key, as Snakemake does): typed, defaults filled, validated."""
    from snakemake.utils import update_config, validate

    from headplast.pipeline.config import (
        ConfigError,
        coerce_config,
        explain_config_errors,
        fill_defaults,
        load_schema,
    )

    files = as_configfiles(configfiles)
    raw: dict[str, Any] = {}
    for configfile in files:
        if not Path(configfile).is_file():
            raise PlanInputError(f"--configfile {configfile}: no such file")
        update_config(raw, yaml.safe_load(Path(configfile).read_text()) or {})
    schema = load_schema(schema_path)
    config = fill_defaults(coerce_config(raw, schema), schema)
    named = " ".join(os.fspath(f) for f in files)
    try:
        explain_config_errors(config, schema, os.fspath(schema_path))
    except ConfigError as err:
        raise PlanInputError(f"--configfile {named}: {err}") from None
    validate(config, os.fspath(schema_path))
    return config


def as_configfiles(configfiles: Path | Sequence[Path]) -> list[Path]:
    """One config file or several, as a list."""
    if isinstance(configfiles, (str, os.PathLike)):
        return [Path(configfiles)]
    return [Path(f) for f in configfiles]


@dataclass
class Sizes:
    """The sizes of one config's models and tasks, each worked out once: architectures by model,
    rows by task, tokens per example by (model, task) and FLOP counts by (model, labels)."""

    config: dict[str, Any]
    workdir: Path
    length: str
    archs: dict[str, Architecture] = field(default_factory=dict)
    tasks: dict[str, TaskSizes] = field(default_factory=dict)
    tokens: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    counts: dict[tuple[str, int], ShapeCounts] = field(default_factory=dict)

    def arch(self, model: str) -> Architecture:
        if model not in self.archs:
            name = self.config["models"][model]["name_or_path"]
            self.archs[model] = architecture(name, self.workdir)
        return self.archs[model]

    def task(self, task: str) -> TaskSizes:
        if task not in self.tasks:
            self.tasks[task] = task_sizes(self.config, task, self.workdir)
        return self.tasks[task]

    def tokens_of(self, model: str, task: str) -> tuple[int, str]:
        if (model, task) not in self.tokens:
            path = resolve_model_path(self.config["models"][model]["name_or_path"], self.workdir)
            self.tokens[(model, task)] = tokens_per_example(
                self.length,
                int(self.config["max_length"]),
                task,
                self.config["tasks"][task]["data"],
                path,
                self.workdir,
            )
        return self.tokens[(model, task)]

    def context(self, model: str, task: str) -> Context:
        sizes = self.task(task)
        key = (model, sizes.num_labels)
        if key not in self.counts:
            self.counts[key] = ShapeCounts(self.arch(model), sizes.num_labels)
        return Context(self.config, sizes, self.tokens_of(model, task)[0], self.counts[key])


def job_works(jobs: list[Job], sizes: Sizes) -> list[JobWork]:
    """Each job's work: its rule's (:data:`headplast.plan.work.WORK`) for its model and task,
    else none."""
    works = []
    for job in jobs:
        fn = WORK.get(job.rule)
        w = job.wildcards
        if fn is None or "model" not in w or "task" not in w:
            works.append(NO_WORK)
            continue
        works.append(fn(w, sizes.context(w["model"], w["task"])))
    return works


@dataclass(frozen=True)
class Plan:
    """A config's plan: its jobs and their work, rows, totals, the sizes it counted with, the
    measured rates (empty without benchmarks) and how many benchmark files were read."""

    jobs: list[Job]
    works: list[JobWork]
    rows: list[Row]
    totals: list[Total]
    sizes: Sizes
    rates: dict[str, Rate]
    benchmark_files: int = 0


def build_plan(
    configfile: Path | Sequence[Path],
    *,
    snakefile: Path,
    workdir: Path,
    peaks: dict[str, float],
    utilisation: float,
    length: str = "max",
    remaining: bool = False,
    benchmarks: Path | None = None,
    benchmarks_config: Path | None = None,
) -> Plan:
    """The plan of ``configfile``: Snakemake's dry run of it from ``snakefile`` in ``workdir``
    (the full DAG, or with ``remaining`` what is still to run), each job's work, its GPU-hours at
    ``utilisation`` x ``peaks``, and with ``benchmarks`` (a ``benchmarks/`` folder of a run of
    ``benchmarks_config``, by default the same config) each rule's measured rate."""
    workflow = Path(snakefile).resolve().parent
    schema = workflow / "workflow" / "schemas" / "config.schema.yaml"
    config = load_config(configfile, schema)
    seconds = read_benchmarks(benchmarks) if benchmarks is not None else None
    jobs = dry_run_jobs(snakefile, configfile, workdir, remaining)
    sizes = Sizes(config, workdir, length)
    works = job_works(jobs, sizes)
    rates: dict[str, Rate] = {}
    if seconds is not None:
        bench_jobs, bench_works = jobs, works
        if benchmarks_config is not None or remaining:
            bench_cfg = benchmarks_config or configfile
            bench_sizes = Sizes(load_config(bench_cfg, schema), workdir, length)
            bench_jobs = dry_run_jobs(snakefile, bench_cfg, workdir)
            bench_works = job_works(bench_jobs, bench_sizes)
        rates = measured_rates(
            [
                (j.rule, j.benchmark, w.examples, w.flops)
                for j, w in zip(bench_jobs, bench_works, strict=True)
            ],
            seconds,
        )
    stages = rule_stages(workflow / "rules")
    rows = plan_rows(jobs, works, stages, peaks, utilisation, rates)
    return Plan(jobs, works, rows, stage_totals(rows), sizes, rates, len(seconds or {}))
