"""``python -m headplast.plan --configfile config/config.yaml``: what a config's run will cost.

Prints, per rule and task, the jobs Snakemake's dry run lists and each job's examples, tokens,
counted TFLOP and GPU-hours at ``--utilisation`` of ``--gpu``'s dense peak (and, with
``--benchmarks``, at a previous run's measured rate), then the totals per stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from headplast.plan.gpus import DEFAULT_UTILISATION, GPUS, check_utilisation, gpu_peaks
from headplast.plan.jobs import DryRunError
from headplast.plan.sizes import PlanInputError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m headplast.plan", description=__doc__.split("\n")[0])
    p.add_argument(
        "--configfile",
        required=True,
        type=Path,
        nargs="+",
        help="the config to plan (several: each merged over the one before, as Snakemake does)",
    )
    p.add_argument(
        "--gpu", default="h100", help=f"the GPU whose peak to use: {', '.join(sorted(GPUS))}"
    )
    p.add_argument(
        "--utilisation",
        type=float,
        default=DEFAULT_UTILISATION,
        help="share of the GPU's dense peak a job sustains (default %(default)s)",
    )
    p.add_argument(
        "--benchmarks", type=Path, default=None, help="a previous run's benchmarks/ folder"
    )
    p.add_argument(
        "--benchmarks-config",
        type=Path,
        default=None,
        help="the config that run used (default: --configfile)",
    )
    p.add_argument(
        "--length",
        default="max",
        help="tokens per example: max (max_length, an upper bound; default), data (mean of the "
        "task's rows on disk with the model's tokenizer) or a number",
    )
    p.add_argument(
        "--remaining",
        action="store_true",
        help="only the jobs still to run (default: the full plan, as from an empty results folder)",
    )
    p.add_argument(
        "--all-rules", action="store_true", help="a row for every rule, CPU-only ones included"
    )
    p.add_argument("--snakefile", type=Path, default=None, help="default: the workflow's")
    p.add_argument("--directory", type=Path, default=Path("."), help="the working directory")
    p.add_argument("--json", type=Path, default=None, help="also write the plan as JSON here")
    return p.parse_args(argv)


def _header(args: argparse.Namespace, plan, peaks: dict[str, float]) -> list[str]:
    from headplast.plan.jobs import TARGET_RULES

    n = sum(1 for j in plan.jobs if j.rule not in TARGET_RULES)
    which = "jobs still to run" if args.remaining else "the full plan, as from an empty results/"
    lines = [
        f"Cost plan of {' '.join(map(str, args.configfile))}: {n} jobs "
        f"(snakemake --dry-run: {which})",
        f"GPU {args.gpu.upper()} at {args.utilisation:.0%} of its dense peak ("
        + ", ".join(f"{k} {v:g}" for k, v in peaks.items())
        + " TFLOP/s; headplast.bench.gpu.PEAK_TFLOPS)",
    ]
    sizes = plan.sizes
    for model, arch in sizes.archs.items():
        lines.append(f"model {model}: {arch.name_or_path}, {arch.describe()}")
    for task, s in sorted(sizes.tasks.items()):
        tokens = {t for (_, tk), t in sizes.tokens.items() if tk == task}
        tok = "; ".join(f"{t:,} tokens/example ({why})" for t, why in sorted(tokens))
        sel = (
            f"{s.n_selection:,} selection rows taken out"
            if s.selection_split == "train"
            else "selection on the validation split"
        )
        lines.append(
            f"task {task}: train split {s.n_train_split:,} ({s.source}), {sel} -> fine-tunes "
            f"train on {s.n_train:,}, the probe on {s.n_probe_train:,}; validation "
            f"{s.n_validation:,}, eval subset {s.n_eval:,}; {tok}"
        )
    return lines


FOOTER = [
    "GPU-h: counted FLOPs / (peak of the job's arithmetic x utilisation); arithmetic only, so "
    "model loading, tokenising, I/O, the CPU rules and queueing come on top (measured h, from a "
    "previous run's benchmarks, include them).",
    "Examples are example passes: training examples = epochs x train rows, plus the Trainer's "
    "evaluations; a sweep reads each eval example L x H + 1 times (prefix-cached: most passes "
    "recompute only the layers above the ablated head, which the FLOPs count); pruning counts "
    "every distinct removed set of its cross-fitted orders on its half of the subset (orders in "
    "general position: an upper bound); the probe runs all its epochs (early stopping may stop "
    "it sooner).",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        peaks = gpu_peaks(args.gpu)
        utilisation = check_utilisation(args.utilisation)
        if args.benchmarks is not None and not args.benchmarks.is_dir():
            raise PlanInputError(
                f"--benchmarks {args.benchmarks}: no such folder; give the benchmarks/ folder of "
                "a previous run"
            )
        if args.benchmarks_config is not None and args.benchmarks is None:
            raise PlanInputError("--benchmarks-config needs --benchmarks")
        from headplast.plan.build import build_plan, default_snakefile
        from headplast.plan.report import as_json, format_plan

        plan = build_plan(
            args.configfile,
            snakefile=args.snakefile or default_snakefile(),
            workdir=args.directory,
            peaks=peaks,
            utilisation=utilisation,
            length=args.length,
            remaining=args.remaining,
            benchmarks=args.benchmarks,
            benchmarks_config=args.benchmarks_config,
        )
    except (PlanInputError, DryRunError) as err:
        print(f"headplast.plan: {err}", file=sys.stderr)
        return 2
    header = _header(args, plan, peaks)
    footer = list(FOOTER)
    if args.benchmarks is not None:
        footer.append(_measured_line(args, plan))
    measured = args.benchmarks is not None
    print(format_plan(plan.rows, plan.totals, header, footer, measured, args.all_rules))
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(plan.rows, plan.totals, header), indent=1))
    return 0


def _measured_line(args: argparse.Namespace, plan) -> str:
    """Which rules have a measured rate, and what it is."""
    parts = []
    for rule, r in sorted(plan.rates.items()):
        speed = (
            f"{r.examples_per_s:,.1f} examples/s"
            if r.examples_per_s
            else f"{r.seconds_per_job:.1f} s/job"
        )
        tflops = f", {r.tflops_per_s * 1e3:.1f} GFLOP/s" if r.tflops_per_s else ""
        parts.append(f"{rule} {speed}{tflops} ({r.jobs} job{'s' if r.jobs > 1 else ''})")
    source = args.benchmarks_config or " ".join(map(str, args.configfile))
    used = sum(r.jobs for r in plan.rates.values())
    return (
        f"measured h: at the rates of {args.benchmarks} (a run of {source}; {used} of its "
        f"{plan.benchmark_files} files are jobs of that config) on the machine that ran it: "
        + "; ".join(parts)
    )


if __name__ == "__main__":
    sys.exit(main())
