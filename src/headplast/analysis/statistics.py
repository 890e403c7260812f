"""Rank statistics on the per-head table ``heads.csv``: Spearman with permutation p-values, a
layer-controlled Spearman, bootstrap confidence intervals, top-K overlap against chance, and the
counter-example sets (important-but-static, plastic-but-unimportant).

Conventions used throughout:

- "Top" means the largest values: the most important heads (largest ``I``), the largest gradients
  (``G``), the heads that moved most (``Urel``).
- Every random statistic takes an integer ``seed`` and is reproducible for it.
- Permutation p-values are two-sided and include the observed statistic in the null
  (``(1 + #|null| >= |obs|) / (1 + n_permutations)``), so they are never 0.
- Undefined numbers (a constant column has no rank correlation) are ``None`` in ``stats.json``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from headplast.analysis.correlation import has_constant_side, spearman
from headplast.analysis.reliability import pair_ceiling
from headplast.io import ArtifactError, finite_or_none, read_csv_table
from headplast.measure.heads import HEADS_COLUMNS

#: The (x, y) pairs that answer the question (docs/methods.md, "Statistics of one seed").
PAIRS: tuple[tuple[str, str], ...] = (
    ("I_pre", "Urel"),
    ("I_pre", "U"),
    ("I_pre", "G"),
    ("I_pre", "Ppred"),
    ("G", "Urel"),
    ("Ppred", "Urel"),
    ("I_pre", "I_post"),
    ("I_post", "Urel"),
    ("I_pre", "A_js"),
    ("I_post", "A_js"),
    ("Urel", "A_js"),
    ("G", "A_js"),
)

#: Pairs with the label-free importance I_kl: the same questions asked of "does the
#: output change" instead of "does the loss get worse", and how the two importances agree.
LABEL_FREE_PAIRS: tuple[tuple[str, str], ...] = (
    ("I_kl_pre", "Urel"),
    ("I_kl_pre", "G"),
    ("I_kl_pre", "I_kl_post"),
    ("I_kl_post", "Urel"),
    ("I_pre", "I_kl_pre"),
    ("I_post", "I_kl_post"),
)

#: Columns heads.csv must have (docs/outputs.md): the measures the statistics and
#: figures read.
REQUIRED_COLUMNS: tuple[str, ...] = HEADS_COLUMNS


def pair_name(x: str, y: str) -> str:
    """The key of a pair in ``stats.json``: ``"I_pre~Urel"``."""
    return f"{x}~{y}"


# --------------------------------------------------------------------------- reading


def validate_heads(
    df: pd.DataFrame, source: str | os.PathLike = "heads table", required=REQUIRED_COLUMNS
) -> pd.DataFrame:
    """Check a per-head frame: required columns present, numeric and finite, (layer, head) unique.

    Returns a copy sorted by (layer, head) with integer ``layer``/``head``. Raises
    :class:`ArtifactError` naming ``source`` otherwise.
    """
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ArtifactError(f"{source}: missing column(s) {missing}; present: {list(df.columns)}")
    if len(df) == 0:
        raise ArtifactError(f"{source}: no rows")
    out = df.copy()
    for c in required:
        try:
            out[c] = pd.to_numeric(out[c])
        except (ValueError, TypeError) as err:
            raise ArtifactError(f"{source}: column {c!r} is not numeric ({err})") from err
    values = out[list(required)].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        bad = [c for c in required if not np.isfinite(out[c].to_numpy(dtype=float)).all()]
        raise ArtifactError(f"{source}: missing or non-finite values in column(s) {bad}")
    if (out["layer"] % 1 != 0).any() or (out["head"] % 1 != 0).any():
        raise ArtifactError(f"{source}: layer and head must be integers")
    out["layer"] = out["layer"].astype(int)
    out["head"] = out["head"].astype(int)
    dup = out.duplicated(["layer", "head"])
    if dup.any():
        first = tuple(int(v) for v in out.loc[dup, ["layer", "head"]].iloc[0])
        raise ArtifactError(f"{source}: (layer, head) {first} appears more than once")
    return out.sort_values(["layer", "head"]).reset_index(drop=True)


def read_heads(path: str | os.PathLike, required: Sequence[str] = REQUIRED_COLUMNS) -> pd.DataFrame:
    """Read and validate ``heads.csv`` (see :func:`validate_heads`); errors name the file."""
    return validate_heads(read_csv_table(path), path, tuple(required))


# --------------------------------------------------------------------------- helpers


def _as_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    if x.size < 3:
        raise ValueError(f"need at least 3 heads, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def _pearson_last_axis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (broadcasting); NaN where a side is constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    num = (a * b).sum(axis=-1)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    return np.where(den > 0, r, np.nan)


def _spearman_vectorized(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman rho along ``axis`` (average ranks for ties): Pearson of the ranks."""
    x = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
    y = np.moveaxis(np.asarray(y, dtype=float), axis, -1)
    return _pearson_last_axis(sps.rankdata(x, axis=-1), sps.rankdata(y, axis=-1))


# --------------------------------------------------------------------------- Spearman


def spearman_permutation(x, y, n_permutations: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Spearman rho (``scipy.stats.spearmanr``) and its two-sided permutation p-value.

    The null permutes the pairing of ``x`` and ``y``: ``n_permutations`` random permutations of
    ``y``'s ranks, drawn one after another as ``numpy.random.default_rng(seed).permutation``
    would draw them; p = ``(1 + #{|null rho| >= |rho|}) / (1 + n_permutations)`` (the observed
    pairing counts as one of the null, so p is never 0; always a Monte-Carlo test, never the
    exact enumeration, so the number is the one documented even for very few heads).
    Returns ``(nan, nan)`` when a side is constant.
    """
    x, y = _as_pair(x, y)
    rho = spearman(x, y).rho
    if math.isnan(rho):  # a constant side
        return math.nan, math.nan
    one = np.zeros(x.size, dtype=int)
    rx, ry = _within_layer_centred_ranks(x, one), _within_layer_centred_ranks(y, one)
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    null = _stratified_null(rx, ry, [np.arange(x.size)], den, int(n_permutations), seed)
    return rho, _permutation_p(null, rho)


def _stratified_null(
    rx: np.ndarray, ry: np.ndarray, groups: Sequence[np.ndarray], den: float, n_perm: int, seed: int
) -> np.ndarray:
    """[n_perm] null statistics ``sum(rx * ry_permuted) / den``, ``ry`` permuted within each group.

    Draws from ``numpy.random.default_rng(seed)`` in chunks of 2000 permutations; within a chunk
    group by group, each row as ``rng.permutation`` would draw it. Groups of one element are
    fixed points and draw nothing.
    """
    rng = np.random.default_rng(seed)
    null = np.zeros(n_perm)
    for start in range(0, n_perm, _CHUNK):
        b = min(_CHUNK, n_perm - start)
        acc = np.zeros(b)
        for idx in groups:
            if idx.size < 2:
                continue
            perm = rng.permuted(np.broadcast_to(ry[idx], (b, idx.size)), axis=1)
            acc += perm @ rx[idx]
        null[start : start + b] = acc / den
    return null


def _permutation_p(null: np.ndarray, observed: float) -> float:
    """Two-sided ``(1 + #{|null| >= |observed|}) / (1 + len(null))``; a relative tolerance of
    1e-12 makes permutations equal to the observed statistic count as extreme despite rounding."""
    extreme = np.abs(null) >= abs(observed) * (1 - 1e-12) - 1e-15
    return float((1.0 + extreme.sum()) / (1.0 + null.size))


_CHUNK = 2000


def _within_layer_centred_ranks(v: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Rank ``v`` within each layer (average ties) and subtract the layer's mean rank."""
    out = np.empty_like(v, dtype=float)
    for lay in np.unique(layer):
        m = layer == lay
        r = sps.rankdata(v[m])
        out[m] = r - r.mean()
    return out


def layer_controlled_spearman(
    x, y, layer, n_permutations: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Spearman rho with depth controlled, and its permutation p-value (permuting within layers).

    Method (stratified Spearman on within-layer ranks): ``x`` and ``y`` are ranked separately
    inside each layer (average ranks for ties), each layer's mean rank is subtracted, and rho is
    the Pearson correlation of these centred within-layer ranks pooled over all heads. Any
    difference between layers (e.g. late layers move more) is thereby removed; only the ordering
    of heads within a layer counts. With equal layer sizes and no ties this equals the mean of the
    per-layer Spearman rhos.

    The null permutes ``y`` among the heads of the same layer (``numpy.random.default_rng(seed)``,
    ``n_permutations`` draws); p is two-sided, ``(1 + #|null| >= |rho|) / (1 + n_permutations)``.
    Layers with a single head contribute nothing. Returns ``(nan, nan)`` when undefined.
    """
    x, y = _as_pair(x, y)
    layer = np.asarray(layer).ravel()
    if layer.shape != x.shape:
        raise ValueError(f"layer has {layer.size} entries, x has {x.size}")
    rx = _within_layer_centred_ranks(x, layer)
    ry = _within_layer_centred_ranks(y, layer)
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    if den == 0:
        return math.nan, math.nan
    rho = float((rx * ry).sum() / den)

    groups = [np.flatnonzero(layer == lay) for lay in np.unique(layer)]
    null = _stratified_null(rx, ry, groups, den, int(n_permutations), seed)
    return rho, _permutation_p(null, rho)


def cluster_resamples(layer, n_bootstrap: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Two-stage cluster bootstrap indices: per resample, layers drawn with replacement (as many
    as there are), then within each drawn layer as many heads as it has, drawn with replacement
    from it. Returns [n_bootstrap, n_heads] when every layer has the same size (one vectorised
    draw), else a list of index arrays (sizes may then differ between resamples)."""
    layer = np.asarray(layer).ravel()
    groups = [np.flatnonzero(layer == lay) for lay in np.unique(layer)]
    sizes = {g.size for g in groups}
    g_count, b = len(groups), int(n_bootstrap)
    if len(sizes) == 1:
        m = sizes.pop()
        table = np.stack(groups)  # [G, m]
        chosen = rng.integers(g_count, size=(b, g_count))
        within = rng.integers(m, size=(b, g_count, m))
        return table[chosen[..., None], within].reshape(b, g_count * m)
    out = []
    for _ in range(b):
        chosen = rng.integers(g_count, size=g_count)
        out.append(np.concatenate([rng.choice(groups[c], groups[c].size) for c in chosen]))
    return out


def _cluster_bootstrap_ci(
    x: np.ndarray, y: np.ndarray, layer, n_bootstrap: int, seed: int, level: float
) -> tuple[float, float]:
    """Percentile interval of Spearman rho over :func:`cluster_resamples` (degenerate resamples,
    a side constant, dropped)."""
    idx = cluster_resamples(layer, n_bootstrap, np.random.default_rng(seed))
    if isinstance(idx, np.ndarray):
        dist = _spearman_vectorized(x[idx], y[idx])
    else:
        dist = np.array([_spearman_vectorized(x[i], y[i]) for i in idx], dtype=float)
    dist = dist[np.isfinite(dist)]
    if dist.size == 0:
        return math.nan, math.nan
    alpha = (1 - level) / 2
    return float(np.percentile(dist, 100 * alpha)), float(np.percentile(dist, 100 * (1 - alpha)))


def bootstrap_ci(
    x, y, n_bootstrap: int = 2000, seed: int = 0, level: float = 0.95, layer=None
) -> tuple[float, float]:
    """Bootstrap confidence interval of Spearman rho over heads.

    With ``layer`` (what :func:`pair_statistics` passes): a two-stage cluster bootstrap
    (:func:`cluster_resamples`: layers, then heads within them), because heads of one layer share
    its input and its depth and are not independent; resampling heads one by one would treat
    144 heads as 144 independent draws and give too narrow an interval. Percentile interval at
    ``level``, resamples with a constant side dropped.

    Without ``layer``: the paired bootstrap of heads (``scipy.stats.bootstrap``).

    Heads are resampled with replacement as (x, y) pairs, ``n_bootstrap`` times, from
    ``numpy.random.default_rng(seed)``; the interval is the percentile interval at ``level``
    (percentile rather than BCa: robust to the occasional resample with tied ranks). Resamples
    in which a side is constant are dropped. Returns ``(nan, nan)`` if rho is undefined.
    """
    x, y = _as_pair(x, y)
    if has_constant_side(x, y):
        return math.nan, math.nan
    if layer is not None:
        layer = np.asarray(layer).ravel()
        if layer.shape != x.shape:
            raise ValueError(f"layer has {layer.size} entries, x has {x.size}")
        return _cluster_bootstrap_ci(x, y, layer, int(n_bootstrap), seed, level)

    def statistic(a, b, axis=-1):
        return _spearman_vectorized(a, b, axis=axis)

    res = sps.bootstrap(
        (x, y),
        statistic,
        n_resamples=int(n_bootstrap),
        paired=True,
        vectorized=True,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    if np.isnan(dist).any():  # drop degenerate resamples and take the percentiles ourselves
        dist = dist[np.isfinite(dist)]
        if dist.size == 0:
            return math.nan, math.nan
        alpha = (1 - level) / 2
        return float(np.percentile(dist, 100 * alpha)), float(
            np.percentile(dist, 100 * (1 - alpha))
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --------------------------------------------------------------------------- top-K overlap


def top_k_indices(v, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values; ties broken by position (stable, deterministic)."""
    v = np.asarray(v, dtype=float).ravel()
    return np.argsort(-v, kind="stable")[:k]


def topk_overlap(x, y, k: int = 20) -> dict[str, Any]:
    """Overlap of the top-``k`` heads by ``x`` and by ``y``, against chance.

    Under independence the overlap is hypergeometric (population ``n``, ``k`` marked heads, ``k``
    drawn): ``expected = k*k/n`` (top-20 of 144: 2.78) and ``p = P(X >= overlap)``
    (``scipy.stats.hypergeom.sf(overlap - 1, n, k, k)``). Ties at the k-th place are broken by
    position, so each set has exactly ``k`` heads.
    """
    x, y = _as_pair(x, y)
    n = x.size
    k = int(k)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    overlap = len(set(top_k_indices(x, k)) & set(top_k_indices(y, k)))
    return {
        "overlap": int(overlap),
        "k": k,
        "n": int(n),
        "expected": k * k / n,
        "p": float(sps.hypergeom.sf(overlap - 1, n, k, k)),
    }


# --------------------------------------------------------------------------- counter-examples


def quantile_mask(v, q: float, top: bool) -> np.ndarray:
    """Heads in the top (``top=True``) or bottom fraction ``q`` of ``v``.

    Rule: rank the heads (1 = largest for top, 1 = smallest for bottom; tied heads share the best
    rank of their group, ``rankdata(method="min")``) and keep those with rank <= q * n. So the top
    10% of 144 heads are the 14 heads with rank <= 14.4; a tie straddling the cut keeps all of its
    heads.
    """
    v = np.asarray(v, dtype=float).ravel()
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    ranks = sps.rankdata(-v if top else v, method="min")
    return ranks <= q * v.size + 1e-9


def counter_examples(df: pd.DataFrame, top_q: float = 0.1, bottom_q: float = 0.3) -> dict[str, Any]:
    """The counter-example sets of ``cases.json``.

    - ``important_but_static``: ``I_pre`` in the top ``top_q`` and ``Urel`` in the bottom
      ``bottom_q``;
    - ``plastic_but_unimportant``: ``Urel`` in the top ``top_q`` and ``I_pre`` in the bottom
      ``bottom_q``.

    Quantiles follow :func:`quantile_mask`. Each set lists ``{layer, head, I_pre, Urel}`` sorted by
    (layer, head), its size ``n``, the chance expectation ``expected = N * top_q * bottom_q``
    (independent rankings), the expectation from the actual set sizes
    ``expected_from_sizes = n_top * n_bottom / N`` and the hypergeometric ``p = P(X >= n)``.
    """
    df = validate_heads(df, required=("layer", "head", "I_pre", "Urel"))
    n = len(df)
    imp, urel = df["I_pre"].to_numpy(float), df["Urel"].to_numpy(float)
    definitions = {
        "important_but_static": (imp, urel),
        "plastic_but_unimportant": (urel, imp),
    }
    out: dict[str, Any] = {
        "n_heads": n,
        "parameters": {
            "top_quantile": float(top_q),
            "bottom_quantile": float(bottom_q),
            "rule": "rank (ties share the best rank) <= quantile * n_heads",
        },
    }
    for name, (high, low) in definitions.items():
        top = quantile_mask(high, top_q, top=True)
        bottom = quantile_mask(low, bottom_q, top=False)
        sel = df.loc[top & bottom, ["layer", "head", "I_pre", "Urel"]]
        heads = [
            {
                "layer": int(r.layer),
                "head": int(r.head),
                "I_pre": float(r.I_pre),
                "Urel": float(r.Urel),
            }
            for r in sel.itertuples(index=False)
        ]
        n_top, n_bottom = int(top.sum()), int(bottom.sum())
        out[name] = {
            "heads": heads,
            "n": len(heads),
            "expected": n * top_q * bottom_q,
            "n_top": n_top,
            "n_bottom": n_bottom,
            "expected_from_sizes": n_top * n_bottom / n,
            "p": float(sps.hypergeom.sf(len(heads) - 1, n, n_top, n_bottom)),
        }
    return out


# --------------------------------------------------------------------------- all pairs


def pair_statistics(
    df: pd.DataFrame,
    pairs: Sequence[tuple[str, str]] = PAIRS,
    top_k: int = 20,
    n_permutations: int = 10_000,
    n_bootstrap: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    reliabilities: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """The content of ``stats.json``: for every pair, keyed ``"x~y"``:

    ``x, y, rho, p_perm`` (:func:`spearman_permutation`), ``rho_layer, p_layer``
    (:func:`layer_controlled_spearman`), ``ci = [lo, hi]`` (:func:`bootstrap_ci`, resampling
    layers and then heads within them) and ``topk`` (:func:`topk_overlap`); plus ``n_heads`` and
    the ``parameters``. All numbers are plain floats or ints; undefined ones are ``None``. Every
    pair uses the same ``seed``.

    With ``reliabilities`` (measure -> split-half reliability,
    :mod:`headplast.analysis.reliability`) each pair also gets ``r_xx, r_yy``, ``noise_ceiling =
    sqrt(r_xx r_yy)`` and ``rho_disattenuated = rho / noise_ceiling``, beside (never instead of)
    the raw ``rho``.

    Long because each pair's block lists its ten statistics in one literal.
    """
    cols = sorted({c for p in pairs for c in p})
    df = validate_heads(df, required=("layer", "head", *cols))
    layer = df["layer"].to_numpy()
    k = int(top_k)
    if not 1 <= k <= len(df):
        raise ValueError(
            f"top_k = {k} but the model has {len(df)} heads: the top-K overlap needs "
            f"1 <= K <= {len(df)}; set config key `analysis.top_k` to at most {len(df)}"
        )
    out_pairs: dict[str, Any] = {}
    for x_name, y_name in pairs:
        x, y = df[x_name].to_numpy(float), df[y_name].to_numpy(float)
        rho, p = spearman_permutation(x, y, n_permutations, seed)
        rho_l, p_l = layer_controlled_spearman(x, y, layer, n_permutations, seed)
        lo, hi = bootstrap_ci(x, y, n_bootstrap, seed, level, layer)
        out_pairs[pair_name(x_name, y_name)] = {
            "x": x_name,
            "y": y_name,
            "rho": finite_or_none(rho),
            "p_perm": finite_or_none(p),
            "rho_layer": finite_or_none(rho_l),
            "p_layer": finite_or_none(p_l),
            "ci": [finite_or_none(lo), finite_or_none(hi)],
            "topk": topk_overlap(x, y, k),
        }
        if reliabilities is not None:
            r_xx, r_yy = reliabilities.get(x_name), reliabilities.get(y_name)
            out_pairs[pair_name(x_name, y_name)].update(
                {"r_xx": r_xx, "r_yy": r_yy, **pair_ceiling(finite_or_none(rho), r_xx, r_yy)}
            )
    return {
        "n_heads": len(df),
        "n_layers": int(np.unique(layer).size),
        "parameters": {
            "top_k": k,
            "n_permutations": int(n_permutations),
            "n_bootstrap": int(n_bootstrap),
            "seed": int(seed),
            "ci_level": float(level),
            "ci_method": "cluster bootstrap (layers, then heads within them), percentile interval",
            "p_perm": "two-sided permutation test of the pairing, (1 + #extreme) / (1 + n)",
            "rho_layer": "Pearson of within-layer centred ranks; null permutes y within layers",
        },
        "pairs": out_pairs,
    }
