"""Head-level permutation tests of a rho pooled over seeds (docs/methods.md, "Across seeds").

Every seed shares the encoder and the eval examples, so two measures unrelated across heads but
stable across seeds give nearly the same rho in every seed: the seeds' spread then says how
precisely that rho is estimated, not whether it differs from 0 across heads. The question "is
there an association across heads?" is answered here at the level of heads: the head labels of y
are shuffled *the same way in every seed* (one shared permutation matrix), each seed's rho is
recomputed and pooled over seeds exactly as the observed one is (the mean of Fisher's z, clipped
as in :func:`fisher_z`), and p is the share of shuffles whose pooled statistic is at least as far
from 0 as the observed one.

The layer-stratified version shuffles head labels only within layers, for the layer-controlled
rho (within-layer centred ranks): it asks whether the within-layer order of heads is associated.

Vectorised: the ranks are centred and scaled once per seed, so each seed's rho under a shuffle is
one dot product; 144 heads x 5 seeds x 10,000 shuffles take a fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

#: Shuffles drawn per block (bounds memory: block x heads integers).
_BLOCK = 5000


def fisher_clip(n_heads: int | None) -> float:
    """The largest |rho| Fisher's z is taken at: ``1 - 1/n_heads`` (0.993 for 144 heads), so that
    a seed at |rho| = 1 counts as a very strong correlation of its size, not as z = 17.6 (which
    would let one seed decide the pooled value and blow up the interval). Without a head count,
    ``1 - 1e-6``."""
    if n_heads is None or n_heads < 2:
        return 1 - 1e-6
    return 1.0 - 1.0 / float(n_heads)


def fisher_z(rho: np.ndarray | float, n_heads: int | None) -> np.ndarray:
    """``arctanh`` of ``rho`` clipped to +-:func:`fisher_clip`."""
    c = fisher_clip(n_heads)
    return np.arctanh(np.clip(np.asarray(rho, dtype=float), -c, c))


def centred_ranks(values: np.ndarray, layer: np.ndarray | None = None) -> np.ndarray:
    """[S, N] ranks (average ties) of each row, centred and scaled to unit norm; with ``layer``
    ranked and centred within each layer (the layer-controlled rho). A constant row (or a row
    constant within every layer) stays all 0: its rho is undefined and it is left out."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if layer is None:
        r = sps.rankdata(values, axis=1)
        r = r - r.mean(axis=1, keepdims=True)
    else:
        layer = np.asarray(layer)
        r = np.empty_like(values)
        for lay in np.unique(layer):
            m = layer == lay
            part = sps.rankdata(values[:, m], axis=1)
            r[:, m] = part - part.mean(axis=1, keepdims=True)
    norm = np.sqrt((r * r).sum(axis=1, keepdims=True))
    return np.divide(r, norm, out=np.zeros_like(r), where=norm > 0)


def shuffles(
    n_heads: int, n_permutations: int, seed: int, layer: np.ndarray | None = None
) -> np.ndarray:
    """[n_permutations, n_heads] head indices: row b is a random relabelling of the heads, drawn
    from ``numpy.random.default_rng(seed)``; with ``layer`` every head keeps a head of its own
    layer (shuffled within layers). The same rows serve every seed."""
    rng = np.random.default_rng(seed)
    keys = rng.random((int(n_permutations), int(n_heads)))
    if layer is None:
        return np.argsort(keys, axis=1)
    layer = np.asarray(layer)
    order = np.argsort(layer, kind="stable")  # positions grouped by layer
    code = np.unique(layer[order], return_inverse=True)[1].astype(float)
    within = np.argsort(code[None, :] + keys * 0.5, axis=1)  # sorted slot -> sorted source
    out = np.empty_like(within)
    out[:, order] = order[within]
    return out


def pooled_z(rx: np.ndarray, ry: np.ndarray, n_heads: int) -> float:
    """The pooled statistic: mean over the seeds with a defined rho of clipped Fisher z."""
    ok = (np.abs(rx).sum(axis=1) > 0) & (np.abs(ry).sum(axis=1) > 0)
    if not ok.any():
        return math.nan
    rho = (rx[ok] * ry[ok]).sum(axis=1)
    return float(fisher_z(rho, n_heads).mean())


def pooled_permutation_test(
    x_by_seed: Sequence[np.ndarray] | np.ndarray,
    y_by_seed: Sequence[np.ndarray] | np.ndarray,
    layer: np.ndarray | None = None,
    stratified: bool = False,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Head-level test of a pooled rho: ``{rho, p, n_permutations, n_seeds, method}``.

    ``x_by_seed``, ``y_by_seed``: [S, N] per-seed head values, heads aligned across seeds.
    ``stratified`` False: Spearman rho per seed, head labels shuffled over all heads. True:
    the layer-controlled rho per seed (within-layer centred ranks, ``layer`` required), labels
    shuffled within layers. ``rho`` = tanh(mean over seeds of clipped Fisher z), the pooled rho;
    ``p`` = (1 + #{|null z| >= |observed z|}) / (1 + n_permutations), two-sided, never 0.
    ``rho`` and ``p`` are None where no seed has a defined rho.
    """
    x = np.atleast_2d(np.asarray(x_by_seed, dtype=float))
    y = np.atleast_2d(np.asarray(y_by_seed, dtype=float))
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    if stratified and layer is None:
        raise ValueError("the layer-stratified test needs each head's layer")
    n = x.shape[1]
    strata = np.asarray(layer) if stratified else None
    rx, ry = centred_ranks(x, strata), centred_ranks(y, strata)
    method = (
        "head labels shuffled within layers, the same shuffle in every seed; statistic: mean "
        "Fisher z of the per-seed layer-controlled rho"
        if stratified
        else "head labels shuffled, the same shuffle in every seed; statistic: mean Fisher z of "
        "the per-seed Spearman rho"
    )
    out: dict[str, Any] = {
        "rho": None,
        "p": None,
        "n_permutations": int(n_permutations),
        "n_seeds": int(x.shape[0]),
        "method": method,
    }
    ok = (np.abs(rx).sum(axis=1) > 0) & (np.abs(ry).sum(axis=1) > 0)
    if not ok.any():
        return out
    rx, ry = rx[ok], ry[ok]
    observed = pooled_z(rx, ry, n)
    perms = shuffles(n, n_permutations, seed, strata)
    extreme = 0
    tol = abs(observed) * (1 - 1e-12) - 1e-15
    for start in range(0, perms.shape[0], _BLOCK):
        p = perms[start : start + _BLOCK]
        # rho_s[b] = sum_i rx[s, i] * ry[s, p[b, i]]: one gather and one product per seed
        rho = np.einsum("sbi,si->sb", ry[:, p], rx)
        z = fisher_z(rho, n).mean(axis=0)
        extreme += int((np.abs(z) >= tol).sum())
    out["rho"] = float(np.tanh(observed))
    out["p"] = float((1 + extreme) / (1 + perms.shape[0]))
    out["n_seeds"] = int(ok.sum())
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (same order as given; None stays None and does not
    count in the family): the k-th smallest of m becomes max over j <= k of min(1, (m - j + 1)
    p_(j)). Controls the family-wise error rate at any level under any dependence."""
    idx = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    m = len(idx)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        out[i] = running
    return out
