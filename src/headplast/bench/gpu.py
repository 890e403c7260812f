"""GPU check at real sizes: ``make bench-gpu`` = ``python -m headplast.bench.gpu``.

A model of a known architecture's exact shape (``--arch``, a model of
:data:`headplast.model.architectures.KNOWN_ARCHITECTURES`: DeBERTa-v3-base by default, or
ModernBERT-base, Qwen2.5-0.5B, Llama-3.2-1B, ...; random weights built from its config on the
device, so no hub is needed) on ``--examples`` (1,024) synthetic pairs of ``--length`` (128)
tokens. It times, each stage synchronised on the device:

* ``finetune``: ``--steps`` (200) AdamW steps on batches of ``--batch-size`` (32) in
  ``--train-precision`` (bf16 autocast), from theta0 to a theta1 that really moved;
* the measuring stage as the workflow runs it per seed: ``theta0_sweep`` (the shared sweep's
  hidden states and this seed's head applied to them), ``gradfisher`` (per-example gate
  gradients at theta0), ``theta1_sweep`` (the prefix-cached ablation sweep at theta1),
  ``pruning`` (the reference orders: six scores, the reverse order and ten random orders, in
  10 % steps) and ``function_change`` (theta0 against theta1), in ``--precision``.

For each stage it prints the seconds, examples per second, the floating-point operations it does
(counted by :class:`torch.utils.flop_counter.FlopCounterMode` on a ``--flop-examples`` slice and
scaled to the whole subset: every stage is linear in the examples; fine-tuning: one step counted,
times the steps), the TFLOP/s that gives and its share of the GPU's dense peak at that precision
(:data:`PEAK_TFLOPS` by device name, or ``--peak-tflops``). The last line is
``measure_examples_per_s=<x> finetune_steps_per_s=<y> measure_peak_share=<s>``. On a GPU each
stage also records the most memory it allocated (``peak_mem_mb``), to set beside the counted
estimate of :mod:`headplast.plan.memory`. ``--tiny`` shrinks everything, the architecture
included (:func:`headplast.model.architectures.tiny_fields`: the family's features kept), to a
CPU smoke test (the test suite runs it); timings are never asserted.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from headplast.bench.ratios import ModelSpec, synthetic_pairs
from headplast.data.batching import make_batches
from headplast.io import write_json
from headplast.measure.function_change import function_change
from headplast.measure.gradients import gate_gradients
from headplast.measure.importance import ablation_sweep
from headplast.measure.pruning import SCORES, pruning_curves, removal_orders
from headplast.measure.shared_sweep import importance_from_theta0_sweep, theta0_hidden_sweep
from headplast.model.adapters import resolve_layout
from headplast.model.architectures import (
    ARCHITECTURE_ALIASES,
    KNOWN_ARCHITECTURES,
    build_model,
    known_architecture,
    tiny_fields,
)
from headplast.model.precision import autocast_context, enable_tf32, resolve_precision

#: Dense (no sparsity: half the data sheets' "with sparsity" figures) peak TFLOP/s by precision
#: of the GPUs this workflow is run on; fp32 without TF32 (CUDA cores), tf32 on tensor cores.
#: A GPU not named here: ``--peak-tflops``. Sources, NVIDIA's data sheets (SXM parts):
#: H100 and H200 https://www.nvidia.com/en-us/data-center/h100/ and /h200/ (the same
#: compute: H200 adds memory), A100 80GB https://www.nvidia.com/en-us/data-center/a100/,
#: L40S https://www.nvidia.com/en-us/data-center/l40s/. The cost plan
#: (:mod:`headplast.plan.gpus`) reads the same table.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.1, "fp16": 362.1, "tf32": 183.0, "fp32": 91.6},
}
MEASURE_STAGES = ("theta0_sweep", "gradfisher", "theta1_sweep", "pruning", "function_change")
#: The architecture ``make bench-gpu`` builds without ``--arch`` (the reference experiment's).
DEFAULT_ARCH = "microsoft/deberta-v3-base"


def peak_tflops(device: torch.device, precision: str, override: float | None) -> float | None:
    """The dense peak of ``device`` at ``precision`` (TFLOP/s); None on a CPU or an unknown GPU."""
    if override is not None:
        return float(override)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks.get(precision)
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """(seconds, result) of ``fn()``, the device synchronised before and after (on a GPU, its
    peak-memory counter reset before: :func:`peak_mem_mb` reads this call's peak)."""
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def peak_mem_mb(device: torch.device) -> float | None:
    """The most memory allocated on ``device`` since the last :func:`timed` began (MiB), the
    weights already there included; None on a CPU."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def bench_spec(
    arch: str, fields: dict[str, Any], tiny: bool, seed: int, device: torch.device
) -> ModelSpec:
    """The model ``bench-gpu`` times: ``fields`` (an architecture's config fields) built with
    random weights on ``device`` (initialised there: no host copy of a 1B model), and the token
    ids its synthetic pairs use: ordinary tokens of its vocabulary, its own CLS/BOS and SEP ids
    where the config has them (else 1 and 2: timing does not depend on the ids), segment ids
    where it has segment embeddings."""
    first = fields.get("cls_token_id", fields.get("bos_token_id"))
    special = (1 if first is None else int(first), int(fields.get("sep_token_id", 2)))
    return ModelSpec(
        arch,
        lambda: build_model(fields, 3, device=device, seed=seed),
        f"{arch} architecture (random weights)" + (" [tiny]" if tiny else ""),
        int(fields["vocab_size"]),
        int(fields.get("type_vocab_size") or 0) > 1,
        special,
    )


def arch_name(value: str) -> str:
    """``--arch``: a key of :data:`KNOWN_ARCHITECTURES` or one of its aliases."""
    if value in KNOWN_ARCHITECTURES or value in ARCHITECTURE_ALIASES:
        return value
    known = ", ".join([*KNOWN_ARCHITECTURES, *ARCHITECTURE_ALIASES])
    raise argparse.ArgumentTypeError(f"{value!r} is not a known architecture; known: {known}")


def counted_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of ``fn()`` (matrix products and attention, as PyTorch's
    FlopCounterMode counts them: a multiply-add is 2)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def train_steps(
    model: nn.Module, batches: Sequence[dict[str, torch.Tensor]], steps: int, precision: str
) -> nn.Module:
    """``steps`` AdamW steps (lr 2e-5, weight decay 0.01) over ``batches`` in turn, in
    ``precision`` autocast; the model is left in eval mode."""
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    model.train()
    for step in range(steps):
        batch = {k: v.to(device) for k, v in batches[step % len(batches)].items()}
        with autocast_context(device, precision):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model.eval()


def measure_stages(
    theta0: nn.Module,
    theta1: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    precision: str,
    sweep_tokens: int,
    seed: int,
) -> dict[str, Callable[[], Any]]:
    """The measuring stage of one seed as callables, in the workflow's order."""
    layout = resolve_layout(theta0)
    heads = [(la, h) for la in range(layout.n_layers) for h in range(layout.n_heads)]
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame(heads, columns=["layer", "head"]).assign(
        **{name: rng.random(len(heads)) for name in SCORES}
    )
    orders = removal_orders(scores, n_random=10, seed=seed)

    def theta0_sweep() -> Any:
        sweep = theta0_hidden_sweep(theta0, batches, precision, sweep_tokens=sweep_tokens)
        return importance_from_theta0_sweep(theta0, sweep)

    return {
        "theta0_sweep": theta0_sweep,
        "gradfisher": lambda: gate_gradients(theta0, batches, precision=precision),
        "theta1_sweep": lambda: ablation_sweep(
            theta1, batches, precision=precision, sweep_tokens=sweep_tokens
        ),
        "pruning": lambda: pruning_curves(
            theta1, batches, orders, 0.1, precision=precision, sweep_tokens=sweep_tokens
        ),
        "function_change": lambda: function_change(theta0, theta1, batches, precision=precision),
    }


def _row(
    seconds: float, examples: int, flops: int, peak: float | None, mem_mb: float | None = None
) -> dict[str, Any]:
    tflops = flops / seconds / 1e12
    return {
        "seconds": round(seconds, 4),
        "examples_per_s": round(examples / seconds, 2),
        "flops": flops,
        "tflops_per_s": round(tflops, 3),
        "peak_share": None if peak is None else round(tflops / peak, 4),
        "peak_mem_mb": mem_mb,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every stage timed and counted; returns (and writes ``<out>/bench_gpu.json``) the table.

    Long because it runs, counts and records the stages in the order they print.
    """
    device = torch.device(args.device)
    precision = resolve_precision(args.precision) if device.type == "cuda" else "fp32"
    train_precision = resolve_precision(args.train_precision) if device.type == "cuda" else "fp32"
    if device.type == "cuda" and "fp32" not in (precision, train_precision):
        enable_tf32()
    fields = known_architecture(args.arch)
    if args.tiny:
        fields = tiny_fields(fields)
    spec = bench_spec(args.arch, fields, args.tiny, args.seed, device)
    theta0 = spec.build()
    pad = int(theta0.config.pad_token_id or 0)  # uniform lengths: no padding; kept consistent
    enc = dataclasses.replace(
        synthetic_pairs(spec, [args.length] * args.examples, args.seed), pad_id=pad
    )
    batches = make_batches(enc, args.tokens_per_batch)
    train = make_batches(enc, args.batch_size * args.length)
    flop_enc = synthetic_pairs(spec, [args.length] * args.flop_examples, args.seed + 1)
    flop_batches = make_batches(dataclasses.replace(flop_enc, pad_id=pad), args.tokens_per_batch)
    peak_train = peak_tflops(device, train_precision, args.peak_tflops)
    peak = peak_tflops(device, precision, args.peak_tflops)
    rows: dict[str, dict[str, Any]] = {}

    theta1 = copy.deepcopy(theta0)
    train_steps(theta1, train, 1, train_precision)  # warm-up: kernels and optimizer state
    step_flops = counted_flops(lambda: train_steps(copy.deepcopy(theta0), train, 1, "fp32"))
    theta1 = copy.deepcopy(theta0)
    seconds, _ = timed(lambda: train_steps(theta1, train, args.steps, train_precision), device)
    rows["finetune"] = _row(
        seconds,
        args.steps * args.batch_size,
        step_flops * args.steps,
        peak_train,
        peak_mem_mb(device),
    )
    rows["finetune"]["steps_per_s"] = round(args.steps / seconds, 3)

    stages = measure_stages(theta0, theta1, batches, precision, args.sweep_tokens, args.seed)
    flop_stages = measure_stages(theta0, theta1, flop_batches, "fp32", args.sweep_tokens, args.seed)
    for name in MEASURE_STAGES:
        flops = counted_flops(flop_stages[name]) * args.examples // args.flop_examples
        seconds, _ = timed(stages[name], device)
        rows[name] = _row(seconds, args.examples, flops, peak, peak_mem_mb(device))
    total_s = sum(rows[n]["seconds"] for n in MEASURE_STAGES)
    total_flops = sum(rows[n]["flops"] for n in MEASURE_STAGES)
    mems = [rows[n]["peak_mem_mb"] for n in MEASURE_STAGES if rows[n]["peak_mem_mb"] is not None]
    rows["measure_total"] = _row(
        total_s, args.examples, total_flops, peak, max(mems) if mems else None
    )
    layout = resolve_layout(theta0)
    out = {
        "model": spec.description,
        "arch": args.arch,
        "shape": {
            "layers": layout.n_layers,
            "heads": layout.n_heads,
            "kv_heads": layout.n_kv_heads,
            "parameters": sum(p.numel() for p in theta0.parameters()),
        },
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "train_precision": train_precision,
        "n_examples": args.examples,
        "length": args.length,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "tokens_per_batch": args.tokens_per_batch,
        "sweep_tokens": args.sweep_tokens,
        "peak_tflops": {"measure": peak, "finetune": peak_train},
        "stages": rows,
        "theta1_moved": any(
            not torch.equal(a, b)
            for a, b in zip(theta0.parameters(), theta1.parameters(), strict=True)
        ),
    }
    if device.type == "cuda":
        out["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    total = rows["measure_total"]
    share = "n/a" if total["peak_share"] is None else f"{total['peak_share']:.4f}"
    out["line"] = (
        f"measure_examples_per_s={total['examples_per_s']:.2f} "
        f"finetune_steps_per_s={rows['finetune']['steps_per_s']:.3f} measure_peak_share={share}"
    )
    write_json(Path(args.out) / "bench_gpu.json", out)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m headplast.bench.gpu", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", default="results/bench", help="folder for bench_gpu.json")
    p.add_argument(
        "--arch",
        type=arch_name,
        default=DEFAULT_ARCH,
        help="the architecture to build (headplast.model.architectures.KNOWN_ARCHITECTURES: "
        "a hub id or its short name, e.g. ModernBERT-base, Qwen2.5-0.5B, Llama-3.2-1B); "
        f"default {DEFAULT_ARCH}",
    )
    p.add_argument("--device", default=None, help="default: cuda if visible, else cpu")
    p.add_argument("--examples", type=int, default=None, help="default 1024 (tiny 8)")
    p.add_argument("--length", type=int, default=None, help="tokens per example, default 128")
    p.add_argument("--steps", type=int, default=None, help="fine-tuning steps, default 200")
    p.add_argument("--batch-size", type=int, default=32, help="fine-tuning batch")
    p.add_argument("--tokens-per-batch", type=int, default=16384, help="measuring batches")
    p.add_argument("--sweep-tokens", type=int, default=1 << 17, help="stacked ablation passes")
    p.add_argument("--flop-examples", type=int, default=None, help="default 32 (tiny 4)")
    p.add_argument("--precision", default="fp32", help="measuring (the reference config's fp32)")
    p.add_argument("--train-precision", default="bf16", help="fine-tuning")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's peak, if unlisted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="tiny model and sizes (CPU smoke test)")
    args = p.parse_args(argv)
    tiny = args.tiny
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is visible")
    args.examples = args.examples or (8 if tiny else 1024)
    args.length = args.length or (24 if tiny else 128)
    args.steps = args.steps or (3 if tiny else 200)
    args.flop_examples = min(args.flop_examples or (4 if tiny else 32), args.examples)
    if tiny:
        args.batch_size = min(args.batch_size, 4)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = run(args)
    print(
        f"== {out['model']} on {out['device']}: {out['n_examples']} examples x {out['length']} "
        f"tokens, measuring in {out['precision']}, fine-tuning in {out['train_precision']}"
    )
    print(
        f"{'stage':<16} {'s':>9} {'examples/s':>11} {'TFLOP':>9} {'TFLOP/s':>8} {'of peak':>8} "
        f"{'peak MiB':>9}"
    )
    for name, r in out["stages"].items():
        share = "" if r["peak_share"] is None else f"{r['peak_share']:.1%}"
        mem = "" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}"
        print(
            f"{name:<16} {r['seconds']:>9.3f} {r['examples_per_s']:>11.1f} "
            f"{r['flops'] / 1e12:>9.3f} {r['tflops_per_s']:>8.2f} {share:>8} {mem:>9}"
        )
    if "peak_gpu_mem_mb" in out:
        print(f"peak GPU memory {out['peak_gpu_mem_mb']:.0f} MB")
    print(out["line"], flush=True)
    sys.stdout.flush()
    return out


if __name__ == "__main__":
    main()
