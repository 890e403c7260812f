"""The plan as rows (one per rule and task), stage totals and the printed table.

:func:`plan_rows` groups the dry run's jobs by stage, rule, model and task (jobs of one group do
the same work) and puts each group's work per job (:class:`headplast.plan.work.JobWork`) beside
its GPU-hours per job: from the FLOPs at the chosen GPU's peak and utilisation, and, where a
previous run's benchmarks are given, at that run's measured rate. :func:`stage_totals` sums them
per stage (:data:`headplast.plan.jobs.STAGES`); :func:`format_plan` prints both.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from headplast.plan.gpus import Rate, gpu_hours
from headplast.plan.jobs import STAGES, TARGET_RULES, Job
from headplast.plan.work import JobWork


@dataclass(frozen=True)
class Row:
    """One rule for one model and task: ``jobs`` (of which ``gpu_jobs`` ask for a GPU), and per
    job the ``examples``, ``tokens``, ``flops`` and ``precision`` of its work, ``gpu_hours`` at
    the chosen GPU and utilisation (0 without counted FLOPs) and ``measured_hours`` at a
    previous run's rate (None without one); ``note`` says what the examples are."""

    stage: str
    rule: str
    model: str
    task: str
    jobs: int
    gpu_jobs: int
    examples: int
    tokens: int
    flops: float
    precision: str | None
    gpu_hours: float
    measured_hours: float | None
    note: str

    @property
    def total_gpu_hours(self) -> float:
        return self.jobs * self.gpu_hours

    @property
    def total_measured_hours(self) -> float | None:
        return None if self.measured_hours is None else self.jobs * self.measured_hours


def job_key(job: Job, stages: Mapping[str, str]) -> tuple[str, str, str, str]:
    """(stage, rule, model, task) of a job; ``-`` where the job has no such wildcard."""
    w = job.wildcards
    return stages.get(job.rule, "other"), job.rule, w.get("model", "-"), w.get("task", "-")


def plan_rows(
    jobs: Sequence[Job],
    works: Sequence[JobWork],
    stages: Mapping[str, str],
    peaks: Mapping[str, float],
    utilisation: float,
    rates: Mapping[str, Rate] | None = None,
) -> list[Row]:
    """One row per (stage, rule, model, task) of ``jobs`` (target rules left out), with each
    job's ``works`` entry; ordered by stage, then rule (as the dry run first lists it), model
    and task."""
    groups: dict[tuple[str, str, str, str], list[tuple[Job, JobWork]]] = {}
    for job, work in zip(jobs, works, strict=True):
        if job.rule not in TARGET_RULES:
            groups.setdefault(job_key(job, stages), []).append((job, work))
    order = {s: i for i, s in enumerate(STAGES)}
    first: dict[str, int] = {}
    for job in jobs:
        first.setdefault(job.rule, len(first))
    rows = []
    for (stage, rule, model, task), members in groups.items():
        work = _mean_work([w for _, w in members])
        hours = 0.0
        if work.precision is not None:
            hours = gpu_hours(work.flops, peaks[work.precision], utilisation)
        rate = (rates or {}).get(rule)
        rows.append(
            Row(
                stage=stage,
                rule=rule,
                model=model,
                task=task,
                jobs=len(members),
                gpu_jobs=sum(1 for j, _ in members if j.gpus),
                examples=work.examples,
                tokens=work.tokens,
                flops=work.flops,
                precision=work.precision,
                gpu_hours=hours,
                measured_hours=None if rate is None else rate.hours(work.examples),
                note=work.note,
            )
        )
    return sorted(
        rows, key=lambda r: (order.get(r.stage, len(order)), first[r.rule], r.model, r.task)
    )


def _mean_work(works: Sequence[JobWork]) -> JobWork:
    """The work per job of a group of jobs: the first's, or the mean where they differ (no rule
    does so today: its jobs for one model and task do the same work)."""
    first = works[0]
    if all(w == first for w in works):
        return first
    n = len(works)
    return JobWork(
        examples=round(sum(w.examples for w in works) / n),
        tokens=round(sum(w.tokens for w in works) / n),
        flops=sum(w.flops for w in works) / n,
        precision=first.precision,
        note=f"mean of {n} jobs",
    )


@dataclass(frozen=True)
class Total:
    """Sums over the rows of one stage (or all): jobs, GPU jobs, FLOPs, GPU-hours, and the
    measured-rate hours of the rows that have them (``measured_rows`` of them)."""

    stage: str
    jobs: int
    gpu_jobs: int
    flops: float
    gpu_hours: float
    measured_hours: float
    measured_rows: int


def stage_totals(rows: Sequence[Row]) -> list[Total]:
    """One :class:`Total` per stage in :data:`STAGES` order (stages without jobs included), then
    ``total``."""
    stages = list(STAGES) + sorted({r.stage for r in rows} - set(STAGES))

    def total(name: str, members: Sequence[Row]) -> Total:
        measured = [r for r in members if r.measured_hours is not None]
        return Total(
            stage=name,
            jobs=sum(r.jobs for r in members),
            gpu_jobs=sum(r.gpu_jobs for r in members),
            flops=sum(r.jobs * r.flops for r in members),
            gpu_hours=sum(r.total_gpu_hours for r in members),
            measured_hours=sum(r.total_measured_hours or 0.0 for r in measured),
            measured_rows=len(measured),
        )

    out = [total(s, [r for r in rows if r.stage == s]) for s in stages]
    return [*out, total("total", rows)]


def _si(x: float) -> str:
    """A count in 3-4 significant figures with k/M/G/T suffixes; ``-`` for 0."""
    if not x:
        return "-"
    for value, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= value:
            return f"{x / value:.3g}{suffix}"
    return f"{x:.3g}"


def _hours(h: float | None) -> str:
    """Hours: 3 significant figures below 10, one decimal below 1,000 (``-`` for none or 0,
    ``<0.001`` below 3.6 s)."""
    if not h:
        return "-"
    if h < 1e-3:
        return "<0.001"
    if h < 10:
        return f"{h:.3g}"
    return f"{h:.1f}" if h < 1000 else f"{h:,.0f}"


def format_plan(
    rows: Sequence[Row],
    totals: Sequence[Total],
    header: Sequence[str],
    footer: Sequence[str],
    measured: bool,
    all_rules: bool = False,
) -> str:
    """The printed plan: ``header`` lines, the table of ``rows`` (a ``measured h`` column with
    ``measured``), the stage totals, ``footer`` lines. Rules that run on the CPU alone and have
    no measured hours are one line per stage, unless ``all_rules``."""
    cols = ["stage", "rule", "task", "jobs", "examples/job", "tokens/job", "TFLOP/job", "arith"]
    cols += ["GPU-h/job", "GPU-h"] + (["measured h"] if measured else []) + ["examples are"]
    models = {r.model for r in rows if r.model != "-"}
    table = []
    for r in rows if all_rules else _cpu_rules_per_stage(rows):
        task = r.task if len(models) <= 1 or r.model == "-" else f"{r.model}/{r.task}"
        cells = [r.stage, r.rule, task, str(r.jobs), _si(r.examples), _si(r.tokens)]
        arith = r.precision or ("cpu" if not r.gpu_jobs else "-")  # a GPU job with no matmuls
        cells += [_si(r.flops / 1e12) if r.flops else "-", arith]
        cells += [_hours(r.gpu_hours), _hours(r.total_gpu_hours)]
        if measured:
            cells.append(_hours(r.total_measured_hours))
        cells.append(r.note)
        table.append(cells)
    lines = list(header) + [""] + _columns(cols, table)
    tcols = ["stage", "jobs", "GPU jobs", "TFLOP", "GPU-h", "GPU-days"]
    tcols += ["measured h"] if measured else []
    ttable = []
    for t in totals:
        cells = [t.stage, str(t.jobs), str(t.gpu_jobs), _si(t.flops / 1e12)]
        cells += [_hours(t.gpu_hours), f"{t.gpu_hours / 24:.2f}" if t.gpu_hours else "-"]
        if measured:
            cells.append(_hours(t.measured_hours) if t.measured_rows else "-")
        ttable.append(cells)
    lines += [""] + _columns(tcols, ttable) + [""]
    lines += [textwrap.fill(f, width=100, subsequent_indent="  ") for f in footer]
    return "\n".join(lines)


def _cpu_only(r: Row) -> bool:
    return r.precision is None and not r.gpu_jobs and r.measured_hours is None


def _cpu_rules_per_stage(rows: Sequence[Row]) -> list[Row]:
    """``rows`` with the CPU-only rows of each stage (:func:`_cpu_only`) as one row, after the
    stage's other rows."""
    out: list[Row] = []
    for stage in dict.fromkeys(r.stage for r in rows):
        members = [r for r in rows if r.stage == stage]
        out += [r for r in members if not _cpu_only(r)]
        cpu = [r for r in members if _cpu_only(r)]
        if cpu:
            n = len({r.rule for r in cpu})
            note = f"{n} rule{'s' if n > 1 else ''} without GPU work (--all-rules lists them)"
            out.append(
                Row(
                    stage,
                    "(CPU rules)",
                    "-",
                    "-",
                    sum(r.jobs for r in cpu),
                    0,
                    0,
                    0,
                    0.0,
                    None,
                    0.0,
                    None,
                    note,
                )
            )
    return out


def _columns(cols: Sequence[str], table: Sequence[Sequence[str]]) -> list[str]:
    """Aligned text columns: text left, numbers right."""
    widths = [max([len(c), *(len(row[i]) for row in table)]) for i, c in enumerate(cols)]
    left = {"stage", "rule", "task", "arith", "examples are"}

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if name in left else c.rjust(w)
            for c, w, name in zip(cells, widths, cols, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [fmt(cols), fmt(["-" * w for w in widths])] + [fmt(row) for row in table]


def as_json(rows: Sequence[Row], totals: Sequence[Total], header: Sequence[str]) -> dict:
    """The plan as one JSON-ready dict: ``header`` lines, ``rows`` and ``totals``."""
    return {
        "header": list(header),
        "rows": [{**asdict(r), "total_gpu_hours": r.total_gpu_hours} for r in rows],
        "totals": [asdict(t) for t in totals],
    }
