"""Checks that a measure's numbers are finite, with errors that name where they are not."""

from __future__ import annotations

import torch


class NonFiniteError(FloatingPointError):
    """A loss or gradient was NaN or infinite."""


def check_finite(bad: torch.Tensor, what: str) -> None:
    """Raise naming the first (batch, layer, head) whose ``what`` was not finite; ``bad`` is
    [n_batches, L, H] (or [n_batches] for the base pass, reported as head -)."""
    if bool(bad.any()):
        idx = [int(i) for i in bad.nonzero()[0].tolist()]
        where = f"batch {idx[0]}" + (f", layer {idx[1]}, head {idx[2]}" if len(idx) == 3 else "")
        raise NonFiniteError(
            f"non-finite {what} at {where} ({int(bad.sum())} cases); nothing was written. "
            "Check the checkpoint (diverged training?) or run with precision fp32."
        )
