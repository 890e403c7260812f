"""Device and numeric precision: one place that decides bf16 / fp16 / fp32 and TF32.

The config key ``precision`` takes ``auto``, ``bf16``, ``fp16`` or ``fp32``. ``auto`` picks bf16
on a GPU that supports it, fp16 on an older GPU and fp32 on the CPU; an explicit half precision
without a GPU is a configuration error rather than a silent fallback.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

ALLOWED_PRECISIONS = ("auto", "bf16", "fp16", "fp32")
#: What :func:`resolve_precision` returns, and the only values :func:`autocast_context` takes.
RESOLVED_PRECISIONS = ("bf16", "fp16", "fp32")


def pick_device() -> torch.device:
    """The device computations run on: the (first) CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(requested: str) -> str:
    """Turn the configured ``precision`` into the one used: ``bf16``, ``fp16`` or ``fp32``."""
    req = str(requested).strip().lower()
    if req not in ALLOWED_PRECISIONS:
        raise ValueError(
            f"config key `precision` is {requested!r}; "
            f"allowed values: {', '.join(ALLOWED_PRECISIONS)}"
        )
    cuda = torch.cuda.is_available()
    if req == "auto":
        if not cuda:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if req in ("bf16", "fp16") and not cuda:
        raise ValueError(
            f"config key `precision` is {req!r}, which needs a CUDA GPU, and none is visible; "
            f"use 'auto' or 'fp32' on the CPU (allowed values: {', '.join(ALLOWED_PRECISIONS)})"
        )
    if req == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            "config key `precision` is 'bf16', which this GPU does not support; use 'fp16', "
            f"'auto' or 'fp32' (allowed values: {', '.join(ALLOWED_PRECISIONS)})"
        )
    return req


def autocast_context(device: torch.device | str, precision: str) -> Any:
    """``torch.autocast`` for bf16/fp16 on CUDA; a no-op context on the CPU or in fp32.

    ``precision`` is a resolved one (:func:`resolve_precision`, :func:`resolve_measure_precision`):
    anything else is refused rather than run silently in fp32."""
    if precision not in RESOLVED_PRECISIONS:
        raise ValueError(
            f"autocast needs a resolved precision ({', '.join(RESOLVED_PRECISIONS)}), got "
            f"{precision!r}; resolve the config value with resolve_precision first"
        )
    dev = torch.device(device)
    if dev.type == "cuda" and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


#: Values of the measuring rules' own key ``measure.precision``: ``fp32`` (TF32 off: exact fp32
#: matmuls, the default), ``tf32`` (fp32 with TF32 matmuls on a GPU), and the training values.
MEASURE_PRECISIONS = ("fp32", "tf32", "auto", "bf16", "fp16")


def resolve_measure_precision(requested: str) -> tuple[str, bool]:
    """(autocast precision ``fp32``/``bf16``/``fp16``, TF32 on?) for ``measure.precision``.

    ``fp32`` -> (fp32, TF32 off); ``tf32`` -> (fp32, TF32 on); ``auto``/``bf16``/``fp16`` as
    :func:`resolve_precision`, with TF32 on (what training uses). TF32 only matters on CUDA."""
    req = str(requested).strip().lower()
    if req not in MEASURE_PRECISIONS:
        raise ValueError(
            f"config key `measure.precision` is {requested!r}; "
            f"allowed values: {', '.join(MEASURE_PRECISIONS)}"
        )
    if req == "fp32":
        return "fp32", False
    if req == "tf32":
        return "fp32", True
    return resolve_precision(req), True


def set_tf32(on: bool) -> bool:
    """Switch TF32 matmuls and convolutions on CUDA on or off (off: exact fp32). Returns whether
    a GPU was there to set."""
    if not torch.cuda.is_available():
        return False
    value = "tf32" if on else "ieee"
    matmul = torch.backends.cuda.matmul
    cudnn = torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(cudnn, "fp32_precision"):
        matmul.fp32_precision = value
        cudnn.fp32_precision = value
    else:  # pragma: no cover - older torch
        matmul.allow_tf32 = on
        cudnn.allow_tf32 = on
    return True


def enable_tf32() -> bool:
    """Allow TF32 matmuls and convolutions on CUDA (Ampere and later). Returns whether it was set.

    Uses the ``fp32_precision`` API where torch has it (mixing it with the legacy ``allow_tf32``
    flags is an error in recent torch), else the legacy flags.
    """
    if not torch.cuda.is_available():
        return False
    matmul = torch.backends.cuda.matmul
    cudnn = torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(cudnn, "fp32_precision"):
        matmul.fp32_precision = "tf32"
        cudnn.fp32_precision = "tf32"
    else:  # pragma: no cover - older torch
        matmul.allow_tf32 = True
        cudnn.allow_tf32 = True
    return True
