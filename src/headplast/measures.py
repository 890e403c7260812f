"""The measurement stage end to end: checkpoint + eval subset in, per-head rows out.

Loads a saved checkpoint (safetensors only), tokenises the fixed eval subset, builds
length-sorted token-budget batches and runs the ablation sweep or the gate gradients on the GPU
when there is one (bf16 autocast where supported, TF32 matmuls), else on the CPU in fp32.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .batching import encode_pairs, make_batches
from .data import read_split
from .function_change import function_change
from .gradients import DEFAULT_EPS, gate_gradients
from .heads import join_heads
from .importance import ablation_sweep
from .io import ArtifactError, read_json
from .precision import enable_tf32, pick_device, resolve_precision
from .pruning import pruning_curves, removal_orders

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


def _prepare(ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision):
    device = pick_device()
    used = resolve_precision(precision)
    if device.type == "cuda":
        enable_tf32()
        torch.cuda.reset_peak_memory_stats(device)
    model, tokenizer = load_checkpoint(ckpt_dir, device)
    records = eval_records(validation_path, subset_path)
    batches = make_batches(encode_pairs(tokenizer, records, max_length), tokens_per_batch)
    log.info("%d eval examples in %d batches on %s (%s)", len(records), len(batches), device, used)
    return device, used, model, batches


def _info(device, used, batches, start) -> dict:
    info = {
        "device": str(device),
        "precision": used,
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
    precision: str = "auto",
    sweep_tokens: int | None = None,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Rows ``layer, head, I, loss_base, loss_ablate, acc_base, acc_ablate`` and run info."""
    start = time.perf_counter()
    device, used, model, batches = _prepare(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    result = ablation_sweep(
        model,
        batches,
        precision=used,
        sweep_tokens=sweep_tokens or tokens_per_batch,
        progress=progress,
    )
    return result.rows(), _info(device, used, batches, start)


def measure_gradfisher(
    ckpt_dir,
    validation_path,
    subset_path,
    *,
    max_length: int,
    tokens_per_batch: int,
    precision: str = "auto",
    eps: float = DEFAULT_EPS,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Rows ``layer, head, G, F, Ppred, G_signed`` at the checkpoint, and run info."""
    start = time.perf_counter()
    device, used, model, batches = _prepare(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    result = gate_gradients(model, batches, precision=used, eps=eps, progress=progress)
    return result.rows(), _info(device, used, batches, start)


def measure_pruning(
    ckpt_dir,
    validation_path,
    subset_path,
    head_files: dict,
    *,
    step_fraction: float,
    n_random_orders: int,
    seed: int,
    max_length: int,
    tokens_per_batch: int,
    precision: str = "auto",
    sweep_tokens: int | None = None,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Pruning-curve rows (see :func:`headplast.pruning.pruning_curves`) at the checkpoint, in the
    orders of the scores of ``head_files`` (the four per-head JSONL files that
    :func:`headplast.heads.join_heads` takes, by its argument names), and run info."""
    start = time.perf_counter()
    scores = join_heads(**head_files)
    orders = removal_orders(scores, n_random_orders, seed)
    device, used, model, batches = _prepare(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    rows = pruning_curves(
        model,
        batches,
        orders,
        step_fraction,
        precision=used,
        sweep_tokens=sweep_tokens or tokens_per_batch,
        progress=progress,
    )
    return rows, _info(device, used, batches, start)


def measure_function_change(
    init_dir,
    final_dir,
    validation_path,
    subset_path,
    *,
    max_length: int,
    tokens_per_batch: int,
    precision: str = "auto",
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Rows ``layer, head, A_js, C_rel`` between theta0 (``init_dir``) and theta1
    (``final_dir``) on the eval subset (tokenised with theta0's tokenizer), and run info."""
    start = time.perf_counter()
    device, used, model0, batches = _prepare(
        init_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    model1, _ = load_checkpoint(final_dir, device)
    result = function_change(model0, model1, batches, precision=used, progress=progress)
    return result.rows(), _info(device, used, batches, start)
