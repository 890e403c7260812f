"""The measurement stage end to end: checkpoint + eval subset in, per-head rows out.

Loads a saved checkpoint (safetensors only), tokenises the fixed eval subset, builds
length-sorted token-budget batches and runs the ablation sweep or the gate gradients on the GPU
when there is one, else on the CPU, in the precision of ``measure.precision`` (default fp32 with
TF32 off: the differences between heads are small; what bf16 costs: docs/results.md, "Measuring
precision").
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from headplast.data.batching import encode_pairs, length_batches, make_batches
from headplast.data.tasks import read_split
from headplast.io import ArtifactError, read_json, write_per_example
from headplast.measure.crossfit import check_against_heads, read_per_example_scores
from headplast.measure.function_change import function_change
from headplast.measure.gradients import DEFAULT_EPS, gate_gradients
from headplast.measure.heads import join_heads
from headplast.measure.importance import ablation_sweep
from headplast.measure.pruning import crossfit_pruning
from headplast.model.precision import pick_device, resolve_measure_precision, set_tf32

log = logging.getLogger(__name__)


def load_checkpoint(ckpt_dir: str | os.PathLike, device: torch.device):
    """(model in eval mode on ``device``, tokenizer) from a save_pretrained folder."""
    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / "model.safetensors").exists():
        raise ArtifactError(f"{ckpt_dir}: no model.safetensors (checkpoints are safetensors only)")
    model = AutoModelForSequenceClassification.from_pretrained(ckpt_dir, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(ckpt_dir)
    return model.to(device).eval(), tokenizer


def eval_records(validation_path: str | os.PathLike, subset_path: str | os.PathLike) -> list[dict]:
    """The eval-subset examples of the validation split, in subset order."""
    records = read_split(validation_path)
    subset = read_json(subset_path)
    indices = subset.get("indices")
    if not isinstance(indices, list) or not indices:
        raise ArtifactError(f"{subset_path}: no 'indices' list; delete it and rerun eval_subset")
    if max(indices) >= len(records):
        raise ArtifactError(
            f"{subset_path}: index {max(indices)} beyond the {len(records)} examples of "
            f"{validation_path}; the subset was drawn from another split, rerun eval_subset"
        )
    return [records[i] for i in indices]


def prepare_measure(
    ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
):
    """(device, precision used, TF32 on, model, batches, order): ``order[j]`` is the eval-subset
    position of the j-th example the batches hold (they are length-sorted)."""
    device = pick_device()
    used, tf32 = resolve_measure_precision(precision)
    if device.type == "cuda":
        set_tf32(tf32)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        tf32 = False
    model, tokenizer = load_checkpoint(ckpt_dir, device)
    records = eval_records(validation_path, subset_path)
    enc = encode_pairs(tokenizer, records, max_length)
    batches = make_batches(enc, tokens_per_batch)
    lengths = [len(x) for x in enc.input_ids]
    order = np.array([i for b in length_batches(lengths, tokens_per_batch) for i in b])
    log.info("%d eval examples in %d batches on %s (%s)", len(records), len(batches), device, used)
    return device, used, tf32, model, batches, order


def write_ordered_per_example(path, arrays: dict[str, np.ndarray], order: np.ndarray) -> None:
    """The per-example arrays ([n, L, H], in batch order) in eval-subset order, as an .npz."""
    out = {}
    for k, v in arrays.items():
        in_subset_order = np.empty_like(v)
        in_subset_order[order] = v
        out[k] = in_subset_order
    write_per_example(path, out)


def run_info(device, used, tf32, batches, start) -> dict:
    """What a measuring job ran on: device, precision (fp32/bf16/fp16), whether TF32 matmuls were
    on, batches, seconds, and the peak GPU memory on CUDA."""
    info = {
        "device": str(device),
        "precision": used,
        "tf32": bool(tf32),
        "n_batches": len(batches),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if device.type == "cuda":
        info["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    log.info("measure info: %s", info)
    return info


def measure_importance(
    ckpt_dir,
    validation_path,
    subset_path,
    *,
    max_length: int,
    tokens_per_batch: int,
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = True,
    per_example_path: str | os.PathLike | None = None,
) -> tuple[list[dict], dict]:
    """Rows ``layer, head, I, loss_base, loss_ablate, acc_base, acc_ablate, I_se, I_ci_low,
    I_ci_high, acc_delta, acc_delta_se, I_kl, I_kl_se`` and run info. With ``per_example_path``
    also the per-example ``d``, ``kl`` and ``acc_d`` [n, L, H] (eval-subset order) as an .npz,
    which the split-half reliability reads."""
    start = time.perf_counter()
    device, used, tf32, model, batches, order = prepare_measure(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    result = ablation_sweep(
        model,
        batches,
        precision=used,
        sweep_tokens=sweep_tokens or tokens_per_batch,
        progress=progress,
    )
    if per_example_path is not None:
        write_ordered_per_example(per_example_path, result.per_example(), order)
    return result.rows(), run_info(device, used, tf32, batches, start)


def measure_gradfisher(
    ckpt_dir,
    validation_path,
    subset_path,
    *,
    max_length: int,
    tokens_per_batch: int,
    precision: str = "fp32",
    eps: float = DEFAULT_EPS,
    progress: bool = True,
    per_example_path: str | os.PathLike | None = None,
) -> tuple[list[dict], dict]:
    """Rows ``layer, head, G, F, Ppred, G_signed, G_se, F_se`` at the checkpoint, and run info.
    With ``per_example_path`` also the per-example gate gradients ``g`` [n, L, H] (eval-subset
    order) as an .npz."""
    start = time.perf_counter()
    device, used, tf32, model, batches, order = prepare_measure(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    result = gate_gradients(model, batches, precision=used, eps=eps, progress=progress)
    if per_example_path is not None:
        write_ordered_per_example(per_example_path, {"g": result.g_i}, order)
    return result.rows(), run_info(device, used, tf32, batches, start)


def measure_pruning(
    ckpt_dir,
    validation_path,
    subset_path,
    head_files: dict,
    per_example_files: dict,
    *,
    step_fraction: float,
    n_random_orders: int,
    seed: int,
    max_length: int,
    tokens_per_batch: int,
    fisher_eps: float = DEFAULT_EPS,
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Cross-fitted and in-sample pruning-curve rows at the checkpoint
    (:func:`headplast.measure.pruning.crossfit_pruning`), and run info with the halves' sizes and
    the set x example evaluations.

    The in-sample orders are those of the scores of ``head_files`` (the four per-head JSONL files
    that :func:`headplast.measure.heads.join_heads` takes, by its argument names). The eval
    subset is split into two halves (``seed``); the example-based orders of each half come from
    the other half's per-example values in ``per_example_files`` (the ``.npz`` sidecars by rule
    name, :data:`headplast.measure.crossfit.PER_EXAMPLE_ARRAYS`; G and Ppred with
    ``fisher_eps``), checked against ``head_files`` first.
    """
    start = time.perf_counter()
    scores = join_heads(**head_files)
    device, used, tf32, model, batches, positions = prepare_measure(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    grid = (int(scores["layer"].max()) + 1, int(scores["head"].max()) + 1)
    per_example = read_per_example_scores(per_example_files, len(positions), grid, fisher_eps)
    check_against_heads(per_example, scores, per_example_files)
    rows, cost = crossfit_pruning(
        model,
        batches,
        positions,
        scores,
        per_example,
        n_random=n_random_orders,
        seed=seed,
        step_fraction=step_fraction,
        precision=used,
        sweep_tokens=sweep_tokens or tokens_per_batch,
        progress=progress,
    )
    info = {**run_info(device, used, tf32, batches, start), **cost}
    log.info("cross-fitting: %s", info)
    return rows, info


def measure_function_change(
    init_dir,
    final_dir,
    validation_path,
    subset_path,
    *,
    max_length: int,
    tokens_per_batch: int,
    precision: str = "fp32",
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Rows ``layer, head, A_js, C_rel`` between theta0 (``init_dir``) and theta1
    (``final_dir``) on the eval subset (tokenised with theta0's tokenizer), and run info."""
    start = time.perf_counter()
    device, used, tf32, model0, batches, _ = prepare_measure(
        init_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    model1, _ = load_checkpoint(final_dir, device)
    result = function_change(model0, model1, batches, precision=used, progress=progress)
    return result.rows(), run_info(device, used, tf32, batches, start)
