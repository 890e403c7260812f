"""Cross-fitting the example-based pruning orders: fit an order on one half, score it on the other.

The orders by I_pre, I_post, G and Ppred (and the reverse I_post order) are computed from the eval
examples; scored on the same examples their curves get an in-sample advantage (a head that happens
to matter little on exactly these examples is removed early, and these examples then lose little
when it goes) that the update-based scores U, Urel and the random orders do not have. So the eval
subset is split into two fixed halves (:func:`crossfit_halves`), each example-based order is
computed from one half's per-example values (:class:`PerExampleScores`) and its curve is scored
on the other half, both ways (docs/methods.md, "Pruning curves").

The per-example values are the sidecars the measuring rules already write, in eval-subset order:
``d`` [n, L, H] of ``importance_pre.npz`` / ``importance_post.npz`` (loss increase when the head is
ablated, I = mean_i d_i) and ``g`` [n, L, H] of ``gradfisher_pre.npz`` (the gate gradient, G =
mean_i |g_i|, F = mean_i g_i^2, Ppred = G^2 / (F + eps)).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from headplast.io import ArtifactError, read_per_example
from headplast.measure.gradients import DEFAULT_EPS, GradFisher

#: The per-example sidecars the cross-fitted orders read: the rule (and input name) that writes
#: each, and the array it holds.
PER_EXAMPLE_ARRAYS: dict[str, str] = {
    "importance_pre": "d",
    "importance_post": "d",
    "gradfisher_pre": "g",
}
#: The scores computed from the eval examples (cross-fitted); U and Urel come from the weights.
EXAMPLE_SCORES: tuple[str, ...] = ("I_pre", "I_post", "G", "Ppred")


def crossfit_halves(labels: Sequence[int] | np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the eval subset, as sorted positions in eval-subset order.

    Stratified by label: the positions of each label (in ascending label order) are permuted by
    ``numpy.random.default_rng(seed)`` and split in two, so per label the halves differ by at
    most one example; a label with an odd count gives its extra example to the half that is
    smaller so far (half a on a tie), so the halves' sizes differ by at most one overall too.
    The halves depend only on the labels and the seed (the same for every training seed).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size < 2:
        raise ValueError(
            f"cross-fitting needs at least 2 eval examples (got labels of shape {labels.shape}); "
            "raise `eval_subset.size`"
        )
    rng = np.random.default_rng(seed)
    a: list[int] = []
    b: list[int] = []
    for label in np.unique(labels):
        pos = rng.permutation(np.flatnonzero(labels == label))
        first = len(pos) // 2 + (len(pos) % 2 if len(a) <= len(b) else 0)
        a.extend(pos[:first].tolist())
        b.extend(pos[first:].tolist())
    return np.array(sorted(a), dtype=np.int64), np.array(sorted(b), dtype=np.int64)


@dataclass(frozen=True)
class PerExampleScores:
    """The per-example values of the eval subset, [n, L, H] each in eval-subset order: ``d_pre``
    and ``d_post`` (loss increase when the head is ablated at theta0 / theta1) and ``g`` (gate
    gradient at theta0), with the Fisher ``eps`` of the measure."""

    d_pre: np.ndarray
    d_post: np.ndarray
    g: np.ndarray
    eps: float = DEFAULT_EPS

    @property
    def n_examples(self) -> int:
        return int(self.d_pre.shape[0])

    def scores(self, idx: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """I_pre, I_post, G and Ppred [L, H] over the examples at positions ``idx``: I = mean d
        (:attr:`headplast.measure.importance.SweepResult.importance`), G and Ppred as
        :class:`headplast.measure.gradients.GradFisher` computes them."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            raise ValueError("no examples to compute the scores on")
        grad = GradFisher(g_i=self.g[idx], eps=self.eps)
        return {
            "I_pre": self.d_pre[idx].mean(0),
            "I_post": self.d_post[idx].mean(0),
            "G": grad.G,
            "Ppred": grad.Ppred,
        }


def read_per_example_scores(
    files: Mapping[str, str | os.PathLike],
    n_examples: int,
    grid: tuple[int, int],
    eps: float = DEFAULT_EPS,
) -> PerExampleScores:
    """The sidecars of :data:`PER_EXAMPLE_ARRAYS` (``files`` by rule name), each checked to hold
    ``n_examples`` examples (the eval subset's size) of the ``grid`` (L, H) of heads: an
    :class:`~headplast.io.ArtifactError` naming the file and the rule to rerun otherwise."""
    missing = [k for k in PER_EXAMPLE_ARRAYS if k not in files]
    if missing:
        raise ValueError(f"no per-example file given for {missing}")
    arrays = {}
    for rule, key in PER_EXAMPLE_ARRAYS.items():
        path = files[rule]
        x = read_per_example(path, key)
        if x.ndim != 3 or x.shape[0] != n_examples or tuple(x.shape[1:]) != tuple(grid):
            raise ArtifactError(
                f"{path}: array {key!r} has shape {x.shape}, but the eval subset has "
                f"{n_examples} examples of {grid[0]} x {grid[1]} heads (expected "
                f"[{n_examples}, {grid[0]}, {grid[1]}]); it is from another eval subset or model: "
                f"delete it and rerun the rule {rule}"
            )
        arrays[rule] = x
    return PerExampleScores(
        arrays["importance_pre"], arrays["importance_post"], arrays["gradfisher_pre"], eps
    )


def with_scores(heads: pd.DataFrame, scores: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """A copy of the per-head frame ``heads`` (``layer, head`` and score columns) with the
    columns of ``scores`` ([L, H] arrays) replaced by their values at each row's (layer, head)."""
    out = heads.copy()
    layer = out["layer"].to_numpy(int)
    head = out["head"].to_numpy(int)
    for name, values in scores.items():
        out[name] = np.asarray(values, dtype=float)[layer, head]
    return out


def check_against_heads(
    per_example: PerExampleScores,
    heads: pd.DataFrame,
    files: Mapping[str, str | os.PathLike],
    rtol: float = 1e-4,
) -> None:
    """The scores over all examples equal the per-head values of ``heads`` up to the float32
    rounding of the sidecars (tolerance: ``rtol`` of the value plus ``rtol`` times the largest
    per-example magnitude; Ppred, in [0, 1], plus ``rtol``). An :class:`ArtifactError` naming
    the sidecar otherwise: it and the per-head file come from different runs or subsets."""
    full = per_example.scores(np.arange(per_example.n_examples))
    scale = {
        "I_pre": np.abs(per_example.d_pre).max(initial=0.0),
        "I_post": np.abs(per_example.d_post).max(initial=0.0),
        "G": np.abs(per_example.g).max(initial=0.0),
        "Ppred": 1.0,
    }
    source = {"I_pre": "importance_pre", "I_post": "importance_post"}
    layer, head = heads["layer"].to_numpy(int), heads["head"].to_numpy(int)
    for name in EXAMPLE_SCORES:
        want = heads[name].to_numpy(float)
        got = full[name][layer, head]
        bad = ~np.isclose(got, want, rtol=rtol, atol=rtol * scale[name])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            rule = source.get(name, "gradfisher_pre")
            raise ArtifactError(
                f"{files[rule]}: its per-example values give {name} = {got[i]:.6g} at layer "
                f"{layer[i]} head {head[i]} over all examples, the per-head file {want[i]:.6g} "
                f"({int(bad.sum())} heads differ); the two come from different runs: delete both "
                f"and rerun the rule {rule}"
            )
