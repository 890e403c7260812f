"""``python -m headplast.plan.footprint --arch Llama-3.2-1B``: one model's cost per example and
its memory per batch, for sizing a config before a run (docs/plan.md, "Real sizes").

For an architecture (a model of the built-in table, a local folder or a hub id in the cache, as
``make plan`` finds it) at ``--length`` tokens per example, prints per stage of one seed's run:

- the floating-point operations per example, counted by the counter of ``make plan`` and
  ``make bench-gpu`` (:class:`headplast.plan.flops.ShapeCounts`): a bf16 fine-tuning step and
  the measuring stage as ``bench-gpu`` times it (the theta0 sweep, gate gradients, the theta1
  sweep, pruning's removal passes in ``--step-fraction`` steps with ``--random-orders`` random
  orders, functional change), and their sum;
- the memory of one batch on a GPU, counted on the meta device
  (:class:`headplast.plan.memory.MemoryCounts`): the fp32 weights the job holds, the peak of
  everything else (activations, gradients, optimizer state, temporaries), what a forward pass
  keeps for its backward pass, and the total against ``--gpu-memory``; fine-tuning batches of
  ``--batch-size`` examples in bf16, measuring batches of ``--tokens-per-batch`` tokens in fp32
  with stacked passes of ``--sweep-tokens`` (the config keys ``per_device_train_batch_size``,
  ``measure.tokens_per_batch`` and ``measure.sweep_tokens``);
- the size of the per-example gate gradients (layers x heads floats an example), and the largest
  fine-tuning batch and measuring batch that fit ``--gpu-memory`` with ``--headroom`` to spare;
- GPU time at ``--utilisation`` of ``--gpu``'s dense peak (:mod:`headplast.plan.gpus`, as
  ``make plan``): per measuring job of ``--n-eval`` examples in fp32 and in tf32, per
  fine-tuning step in bf16.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headplast.plan.flops import ShapeCounts, examples_per_batch, pruning_evaluations
from headplast.plan.gpus import DEFAULT_UTILISATION, check_utilisation, gpu_hours, gpu_peaks
from headplast.plan.memory import Footprint, MemoryCounts
from headplast.plan.sizes import Architecture, PlanInputError, architecture

GIB = 2**30


def _gflop(flops: float) -> str:
    """GFLOP with one decimal, or four significant digits below 100 (tiny test models)."""
    g = flops / 1e9
    return f"{g:,.1f}" if g >= 100 else f"{g:.4g}"


#: Share of the GPU's memory left for the CUDA context, the allocator's cached and fragmented
#: blocks and cuBLAS workspaces, which the meta device does not count.
DEFAULT_HEADROOM = 0.15


@dataclass(frozen=True)
class StageCost:
    """One stage: FLOPs per example and the memory of one batch."""

    name: str
    flops: float
    memory: Footprint | None
    note: str = ""


def stage_costs(
    args: argparse.Namespace, arch: Architecture, memory: MemoryCounts
) -> list[StageCost]:
    """Every stage of one seed, counted (FLOPs per example; memory per batch)."""
    t = args.length
    flops = ShapeCounts(arch, args.num_labels)
    batch = examples_per_batch(args.tokens_per_batch, t)
    sweep_flops = flops.sweep(t, batch, args.sweep_tokens)
    sweep_memory = memory.sweep(t, batch, args.sweep_tokens)
    evaluations = pruning_evaluations(
        arch.n_layers, arch.n_heads, args.n_eval, args.random_orders, args.step_fraction, 0
    )
    n_sets = max(1, round(evaluations / args.n_eval))
    half = max(1, batch // 2)  # pruning splits each batch between the two cross-fitted halves
    passes = f"{arch.n_layers * arch.n_heads + 1} passes"
    return [
        StageCost(
            "finetune step",
            flops.train_step(t, args.batch_size),
            memory.train_step(t, args.batch_size),
            f"batch {args.batch_size}, bf16",
        ),
        StageCost("theta0_sweep", sweep_flops, sweep_memory, passes),
        StageCost(
            "gradfisher",
            flops.gate_gradients(t, batch),
            memory.gate_gradients(t, batch),
            "forward + backward",
        ),
        StageCost("theta1_sweep", sweep_flops, sweep_memory, passes),
        StageCost(
            "pruning",
            n_sets * flops.removal(t, half, args.sweep_tokens, n_sets),
            memory.removal(t, half, args.sweep_tokens),
            f"{n_sets} sets",
        ),
        StageCost(
            "function_change",
            flops.function_change(t, batch),
            memory.function_change(t, batch),
            "theta0, theta1",
        ),
    ]


def largest_batch(args: argparse.Namespace, big: Footprint, small: Footprint, n: int) -> int:
    """The largest batch whose total fits ``--gpu-memory`` less ``--headroom``, from the peaks
    at ``n`` and ``n // 2`` examples: the peak is a part that does not grow with the batch (the
    bf16 weight copies; in training AdamW's moments and the gradients) plus one that grows in
    proportion (activations)."""
    per = (big.peak - small.peak) / (n - n // 2)
    fixed = big.peak - per * n
    budget = args.gpu_memory * 1e9 * (1 - args.headroom) - big.weights
    return max(0, int((budget - fixed) / per)) if per > 0 else 0


def report(args: argparse.Namespace, arch: Architecture) -> list[str]:
    memory = MemoryCounts(arch, args.num_labels)
    stages = stage_costs(args, arch, memory)
    batch = examples_per_batch(args.tokens_per_batch, args.length)
    params = sum(p.numel() for p in memory.model.parameters())
    train_max = largest_batch(
        args,
        stages[0].memory,
        memory.train_step(args.length, args.batch_size // 2),
        args.batch_size,
    )
    grad_max = largest_batch(
        args, stages[2].memory, memory.gate_gradients(args.length, batch // 2), batch
    )
    gates = arch.n_layers * arch.n_heads
    budget = args.gpu_memory * 1e9
    peaks = gpu_peaks(args.gpu)

    def hours(flops: float, arithmetic: str) -> float:
        return gpu_hours(flops, peaks[arithmetic], args.utilisation)

    lines = [
        f"{args.arch}: {arch.describe()}; {params / 1e6:,.1f}M parameters",
        f"{args.length} tokens per example; fine-tuning batches of {args.batch_size} in bf16 "
        f"(fp32 weights, AdamW); measuring batches of {args.tokens_per_batch:,} tokens "
        f"({batch} examples) in fp32, stacked passes of {args.sweep_tokens:,} tokens; "
        f"{args.gpu_memory:g} GB GPU",
        f"per-example gate gradients: {arch.n_layers} x {arch.n_heads} = {gates} floats, "
        f"{gates * 4 / 1024:.1f} KiB an example, {gates * 4 * args.n_eval / 2**20:.1f} MiB for "
        f"{args.n_eval:,} examples",
        "",
        f"{'stage':<16} {'GFLOP/example':>14} {'weights GiB':>12} {'peak GiB':>9} "
        f"{'kept GiB':>9} {'total GiB':>10} {'of GPU':>7} {'h fp32':>7} {'h tf32':>7}  note",
    ]
    for i, s in enumerate(stages):
        m = s.memory
        kept = "" if m is None or m.saved is None else f"{m.saved / GIB:.2f}"
        job = s.flops * args.n_eval
        time = "" if i == 0 else f"{hours(job, 'fp32'):>7.3g} {hours(job, 'tf32'):>7.3g}"
        lines.append(
            f"{s.name:<16} {_gflop(s.flops):>14} {m.weights / GIB:>12.2f} "
            f"{m.peak / GIB:>9.2f} {kept:>9} {m.total / GIB:>10.2f} "
            f"{m.total / budget:>7.0%} {time:>15}  {s.note}"
        )
    measuring = sum(s.flops for s in stages[1:])
    step = stages[0].flops * args.batch_size
    lines += [
        f"{'measuring stage':<16} {_gflop(measuring):>14} {'':>51} "
        f"{hours(measuring * args.n_eval, 'fp32'):>7.3g} "
        f"{hours(measuring * args.n_eval, 'tf32'):>7.3g}  one seed: the five stages above",
        "",
        f"GPU time: {args.gpu.upper()} at {args.utilisation:.0%} of its dense peak (fp32 "
        f"{peaks['fp32']:g}, tf32 {peaks['tf32']:g}, bf16 {peaks['bf16']:g} TFLOP/s), "
        f"{args.n_eval:,} eval examples per measuring job; a fine-tuning step of "
        f"{args.batch_size} in bf16: {hours(step, 'bf16') * 3600:.3g} s",
        f"largest batch within {args.gpu_memory:g} GB less {args.headroom:.0%}: fine-tuning "
        f"{train_max} examples of {args.length} tokens (per_device_train_batch_size); gate "
        f"gradients {grad_max * args.length:,} tokens (measure.tokens_per_batch)",
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m headplast.plan.footprint", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--arch", required=True, help="a model of the built-in table, folder or hub id")
    p.add_argument("--length", type=int, default=256, help="tokens per example (256)")
    p.add_argument("--batch-size", type=int, default=32, help="per_device_train_batch_size (32)")
    p.add_argument("--tokens-per-batch", type=int, default=16384, help="measure.tokens_per_batch")
    p.add_argument("--sweep-tokens", type=int, default=65536, help="measure.sweep_tokens")
    p.add_argument("--n-eval", type=int, default=1024, help="eval subset (pruning's sets)")
    p.add_argument("--random-orders", type=int, default=10, help="pruning.n_random_orders")
    p.add_argument("--step-fraction", type=float, default=0.1, help="pruning.step_fraction")
    p.add_argument("--num-labels", type=int, default=3)
    p.add_argument("--gpu-memory", type=float, default=80.0, help="GB (1e9 bytes; default 80)")
    p.add_argument("--gpu", default="h100", help="the GPU whose dense peak to use (h100)")
    p.add_argument("--utilisation", type=float, default=DEFAULT_UTILISATION)
    p.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM)
    p.add_argument("--directory", type=Path, default=Path("."), help="for a local model folder")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        gpu_peaks(args.gpu)
        check_utilisation(args.utilisation)
        arch = architecture(args.arch, args.directory)
    except PlanInputError as err:
        print(f"headplast.plan.footprint: {err}", file=sys.stderr)
        return 2
    for line in report(args, arch):
        print(line, flush=True)
    return 0


def _main() -> Any:  # pragma: no cover - the module's entry point
    sys.exit(main())


if __name__ == "__main__":
    _main()
