"""From FLOPs to hours: a GPU's dense peak at a stated utilisation, or a previous run's rates.

``gpu_hours = FLOPs / (peak TFLOP/s x 1e12 x utilisation) / 3600``, the peak of the job's
arithmetic (bf16, fp16, tf32 or fp32) on the chosen GPU from
:data:`headplast.bench.gpu.PEAK_TFLOPS` (the table ``make bench-gpu`` divides by; sources
there). Utilisation is the share of that peak the job sustains: the plan's default 0.4 is an
assumption (transformer training with mixed precision commonly reaches 30-50 % of the bf16 peak);
``make bench-gpu`` measures it on the GPU at hand.

Or, with ``--benchmarks``: the examples per second each rule's jobs achieved in a previous run,
from the ``s`` column of Snakemake's benchmark files (``benchmarks/<rule>/...tsv``, one per job),
divided into the examples the plan gives those same jobs (:func:`measured_rates`). Those hours
include everything the job did (loading, tokenising, writing), on whatever machine ran it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from headplast.bench.gpu import PEAK_TFLOPS
from headplast.plan.sizes import PlanInputError

#: ``--gpu`` values -> the row of :data:`PEAK_TFLOPS`.
GPUS: dict[str, str] = {name.lower(): name for name in PEAK_TFLOPS}
DEFAULT_UTILISATION = 0.4


def gpu_peaks(name: str) -> dict[str, float]:
    """Dense peak TFLOP/s by arithmetic (bf16, fp16, tf32, fp32) of ``--gpu name``."""
    key = str(name).strip().lower()
    if key not in GPUS:
        raise PlanInputError(
            f"--gpu {name!r}: unknown GPU; choose one of {', '.join(sorted(GPUS))} (peaks in "
            "headplast.bench.gpu.PEAK_TFLOPS)"
        )
    return dict(PEAK_TFLOPS[GPUS[key]])


def check_utilisation(utilisation: float) -> float:
    """``--utilisation``: a share of the peak, in (0, 1]."""
    if not 0 < float(utilisation) <= 1:
        raise PlanInputError(
            f"--utilisation {utilisation}: the share of the GPU's peak a job sustains, in (0, 1] "
            "(e.g. 0.4)"
        )
    return float(utilisation)


def gpu_hours(flops: float, peak_tflops: float, utilisation: float) -> float:
    """Hours of one GPU for ``flops`` at ``utilisation`` x ``peak_tflops`` (TFLOP/s)."""
    return flops / (peak_tflops * 1e12 * utilisation) / 3600


def read_benchmarks(folder: str | Path) -> dict[str, float]:
    """Seconds of every benchmark file under ``folder`` (Snakemake's ``benchmarks/``), by path
    relative to it (``finetune/minilm/nli_demo/random/seed1.tsv``): the mean of its ``s`` column
    (one row per repeat)."""
    root = Path(folder)
    if not root.is_dir():
        raise PlanInputError(
            f"--benchmarks {folder}: no such folder; give the benchmarks/ folder of a previous "
            "run (one .tsv per job, written by the rules' benchmark: files)"
        )
    seconds: dict[str, float] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        with tsv.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh, delimiter="\t") if r.get("s")]
        if rows:
            seconds[tsv.relative_to(root).as_posix()] = sum(float(r["s"]) for r in rows) / len(rows)
    if not seconds:
        raise PlanInputError(f"--benchmarks {folder}: no benchmark .tsv files with an `s` column")
    return seconds


@dataclass(frozen=True)
class Rate:
    """A rule's measured speed: ``jobs`` benchmark files matched, their ``seconds``, and the
    ``examples`` and ``flops`` the plan gives those jobs; ``examples_per_s`` (None for a rule
    without examples, whose ``seconds_per_job`` is used instead) and the TFLOP/s achieved."""

    rule: str
    jobs: int
    seconds: float
    examples: int
    flops: float = 0.0

    @property
    def examples_per_s(self) -> float | None:
        return self.examples / self.seconds if self.examples and self.seconds else None

    @property
    def tflops_per_s(self) -> float | None:
        return self.flops / self.seconds / 1e12 if self.flops and self.seconds else None

    @property
    def seconds_per_job(self) -> float:
        return self.seconds / self.jobs

    def hours(self, examples: int) -> float:
        """Hours of a job of this rule with ``examples`` at the measured rate."""
        rate = self.examples_per_s
        seconds = examples / rate if rate else self.seconds_per_job
        return seconds / 3600


def measured_rates(
    benchmarked: list[tuple[str, str | None, int, float]], seconds: dict[str, float]
) -> dict[str, Rate]:
    """Per rule, the measured rate of the jobs ``benchmarked`` (rule, benchmark file as the dry
    run names it, examples and FLOPs the plan gives the job) whose file is among ``seconds``
    (:func:`read_benchmarks`; the file's path relative to the benchmarks folder is the dry run's
    path less its first component)."""
    acc: dict[str, tuple[int, float, int, float]] = {}
    for rule, path, examples, flops in benchmarked:
        if path is None:
            continue
        rel = path.split("/", 1)[1] if "/" in path else path
        if rel in seconds:
            jobs, s, n, f = acc.get(rule, (0, 0.0, 0, 0.0))
            acc[rule] = (jobs + 1, s + seconds[rel], n + examples, f + flops)
    return {rule: Rate(rule, j, s, n, f) for rule, (j, s, n, f) in acc.items()}
