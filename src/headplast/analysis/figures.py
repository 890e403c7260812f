"""Figures (matplotlib, Agg backend), each written atomically to a PNG; every ``fig_*`` function
also returns its (closed) :class:`~matplotlib.figure.Figure`, so its axes can be inspected.

- :func:`fig_scatter`: one measure against another per head, coloured by layer, counter-example
  heads marked with their own markers (I_pre vs Urel, I_pre vs G).
- :func:`fig_stats`: Spearman rho per pair with bootstrap CI and the layer-controlled rho beside;
  top-K overlap against chance.
- :func:`fig_heatmaps`: layer x head heatmaps of several measures (per seed or seed means).
- :func:`fig_rank_stability`: seed-to-seed Spearman of each head ranking.
- :func:`fig_seed_mean_scatter`: seed means with sd error bars.
- :func:`fig_pruning`: accuracy and loss against the fraction of heads removed, per order, the
  random orders as a band; :func:`fig_pruning_mean` the same as seed means with sd bands.
- :func:`fig_starts`: the starts side by side (ranking stability and pair rho with intervals).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from headplast.analysis.correlation import has_constant_side, spearman  # noqa: E402
from headplast.analysis.pruning_auc import curves_of_fit  # noqa: E402
from headplast.analysis.starts import NOT_COMPARED  # noqa: E402
from headplast.io import atomic_path  # noqa: E402

DPI = 130

#: Marker style per counter-example set.
CASE_STYLE: dict[str, dict[str, Any]] = {
    "important_but_static": {
        "marker": "^",
        "color": "crimson",
        "label": "important but static",
    },
    "plastic_but_unimportant": {
        "marker": "s",
        "color": "darkorange",
        "label": "plastic but unimportant",
    },
}

LABELS = {
    "I_pre": "importance before fine-tuning $I_{pre}$ (Δ loss)",
    "I_post": "importance after fine-tuning $I_{post}$ (Δ loss)",
    "G": "gate gradient $G$ = mean |dL/dξ|",
    "F": "gate Fisher $F$ = mean (dL/dξ)²",
    "Ppred": "$P_{pred} = G^2/F$",
    "U": "update norm $U$",
    "Urel": "relative update $U_{rel}$",
    "A_js": "attention change $A_{JS}$ (bits)",
    "C_rel": "relative context change $C_{rel}$",
}


def _label(col: str) -> str:
    base = col[: -len("_mean")] if col.endswith("_mean") else col
    text = LABELS.get(base, base)
    return f"{text}, seed mean" if col.endswith("_mean") else text


def _save(fig: Figure, path: str | os.PathLike) -> Figure:
    """Write ``fig`` as PNG (atomically), close it and return it (closed figures keep their axes,
    so callers and tests can inspect scales, images and marked points)."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return fig


def _set_scale(ax, axis: str, values: np.ndarray) -> None:
    """Log scale where all values are positive; symmetric log where some are <= 0."""
    v = values[np.isfinite(values)]
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if v.size == 0:
        return
    if (v > 0).all():
        setter("log")
    else:
        nz = np.abs(v[v != 0])
        # a power of ten, so that the ticks at +-linthresh sit one decade from 0 and the next
        linthresh = 10.0 ** math.floor(math.log10(float(np.quantile(nz, 0.1)))) if nz.size else 1.0
        setter("symlog", linthresh=linthresh, linscale=1.0)


def _log_axes(log: bool | str, x: np.ndarray, y: np.ndarray) -> str:
    """Resolve ``log`` to the axes to draw logarithmically ("", "x", "y" or "xy")."""
    if log is True:
        return "xy"
    if log is False or log is None or log == "none":
        return ""
    if log == "auto":  # log where the values span more than two decades
        out = ""
        for name, v in (("x", x), ("y", y)):
            a = np.abs(v[np.isfinite(v) & (v != 0)])
            if a.size and a.max() / a.min() > 100:
                out += name
        return out
    if log in ("x", "y", "xy"):
        return log
    raise ValueError(f"log must be True, False, 'auto', 'x', 'y' or 'xy', got {log!r}")


def _rho_text(x: np.ndarray, y: np.ndarray) -> str:
    if has_constant_side(x, y):
        return "Spearman ρ undefined"
    return f"Spearman ρ = {spearman(x, y).rho:.2f}"


def _annotate_rho(ax, xv: np.ndarray, yv: np.ndarray) -> None:
    """Spearman rho and the number of heads in the top-left corner of a scatter."""
    ax.text(
        0.02,
        0.98,
        f"{_rho_text(xv, yv)}, {len(xv)} heads",
        transform=ax.transAxes,
        va="top",
        fontsize=9,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )


def _se_column(col: str) -> str:
    """heads.csv name of a measure's standard error: I_pre -> I_pre_se, G -> G_se."""
    return f"{col}_se"


def _half_interval(df: pd.DataFrame, col: str) -> np.ndarray | None:
    """1.96 * SE over eval examples of ``col`` where heads.csv has it, else None."""
    se = _se_column(col)
    if se not in df.columns:
        return None
    v = df[se].to_numpy(float)
    return None if not np.isfinite(v).any() else 1.96 * np.nan_to_num(v)


def fig_scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    cases: Mapping[str, Any] | None,
    path: str | os.PathLike,
    log: bool | str = "auto",
    title: str | None = None,
) -> Figure:
    """Scatter of ``y`` against ``x``, one point per head, coloured by layer.

    Heads in the counter-example sets of ``cases`` (``cases.json`` content; ``None`` for none)
    are drawn again with their own marker and labelled ``L<layer>H<head>``. ``log``: ``"auto"``
    (log axis where values span > 2 decades), ``True``/``"xy"``, ``"x"``, ``"y"``, ``False``;
    axes with non-positive values get a symmetric-log scale instead. Where heads.csv has a
    measure's standard error over eval examples (``<measure>_se``), gray bars show its 95%
    interval (±1.96 SE).

    Long because it draws one figure top to bottom (points, counter-example markers, labels,
    legend); splitting it would scatter one layout over helpers.
    """
    xv, yv = df[x].to_numpy(float), df[y].to_numpy(float)
    layer = df["layer"].to_numpy()
    fig, ax = plt.subplots(figsize=(7.2, 5.6))
    n_layers = int(layer.max()) + 1 if layer.size else 1
    cmap = plt.get_cmap("viridis", max(n_layers, 2))
    sc = ax.scatter(
        xv,
        yv,
        c=layer,
        cmap=cmap,
        vmin=-0.5,
        vmax=n_layers - 0.5,
        s=22,
        alpha=0.8,
        edgecolors="none",
    )
    cb = fig.colorbar(sc, ax=ax, pad=0.02)
    cb.set_label("layer")
    if n_layers <= 24:
        cb.set_ticks(range(0, n_layers, 1 if n_layers <= 12 else 2))
    xerr, yerr = _half_interval(df, x), _half_interval(df, y)
    if xerr is not None or yerr is not None:
        ax.errorbar(
            xv,
            yv,
            xerr=xerr,
            yerr=yerr,
            fmt="none",
            ecolor="gray",
            elinewidth=0.6,
            alpha=0.5,
            zorder=1,
            label="95% interval over eval examples (±1.96 SE)",
        )

    key = df.set_index(["layer", "head"])
    for set_name, style in CASE_STYLE.items():
        heads = (cases or {}).get(set_name, {}).get("heads", [])
        pts = [(h["layer"], h["head"]) for h in heads if (h["layer"], h["head"]) in key.index]
        label = f"{style['label']} (n={len(pts)})"
        if cases is not None and set_name in cases and "expected" in cases[set_name]:
            label += f", chance {cases[set_name]['expected']:.1f}"
        px = np.array([key.loc[p, x] for p in pts], dtype=float)
        py = np.array([key.loc[p, y] for p in pts], dtype=float)
        ax.scatter(
            px,
            py,
            marker=style["marker"],
            s=90,
            facecolors="none",
            edgecolors=style["color"],
            linewidths=1.8,
            label=label,
            zorder=3,
        )
        for (lay, hd), a, b in zip(pts, px, py, strict=True):
            ax.annotate(
                f"L{lay}H{hd}",
                (a, b),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                color=style["color"],
            )

    axes = _log_axes(log, xv, yv)
    if "x" in axes:
        _set_scale(ax, "x", xv)
    if "y" in axes:
        _set_scale(ax, "y", yv)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_title(title or f"{_label(y).split(' $')[0]} vs {_label(x).split(' $')[0]}", fontsize=11)
    _annotate_rho(ax, xv, yv)
    if cases is not None or xerr is not None or yerr is not None:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _draw_ceilings(ax, pairs: Mapping[str, Any], names: Sequence[str], pos, w: float) -> None:
    """Beside the raw rho (never instead): the noise ceiling sqrt(r_xx r_yy) of each pair as a
    black bracket at +-ceiling, and the disattenuated rho / ceiling as a hollow diamond (clipped
    to the axis at +-1.05, where it can land when a reliability is small)."""
    ceil = np.array([_nan(pairs[p].get("noise_ceiling")) for p in names])
    dis = np.array([_nan(pairs[p].get("rho_disattenuated")) for p in names])
    if not np.isfinite(ceil).any():
        return
    y = pos - w / 2
    ax.scatter(
        ceil, y, marker="|", s=160, color="black", zorder=4, label="noise ceiling ±√(rxx·ryy)"
    )
    ax.scatter(-ceil, y, marker="|", s=160, color="black", zorder=4)
    ax.scatter(
        np.clip(dis, -1.05, 1.05),
        y,
        marker="D",
        s=30,
        facecolors="none",
        edgecolors="tab:red",
        zorder=5,
        label="disattenuated ρ / ceiling (not a measurement)",
    )


def _p_stars(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def fig_stats(
    stats: Mapping[str, Any], path: str | os.PathLike, title: str | None = None
) -> Figure:
    """Bar chart of ``stats.json``: left, Spearman rho per pair (bootstrap CI as error bars) with
    the layer-controlled rho beside it, stars for permutation p < .05/.01/.001, and, where the
    stats carry them, the noise ceiling and the disattenuated rho, labelled as such; right, top-K
    overlap per pair against the chance level ``k*k/n``, with the hypergeometric p.

    Long because it draws one two-panel figure top to bottom.
    """
    pairs = stats["pairs"]
    names = list(pairs)
    n = len(names)
    pos = np.arange(n)
    rho = np.array([_nan(pairs[p]["rho"]) for p in names])
    rho_l = np.array([_nan(pairs[p]["rho_layer"]) for p in names])
    lo = np.array([_nan(pairs[p]["ci"][0]) for p in names])
    hi = np.array([_nan(pairs[p]["ci"][1]) for p in names])
    err = np.vstack([np.clip(rho - lo, 0, None), np.clip(hi - rho, 0, None)])
    err = np.nan_to_num(err)
    labels = [n.replace("~", " ~ ") for n in names]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.55 * n + 2.2), sharey=True)
    w = 0.38
    ax1.barh(
        pos - w / 2, rho, w, xerr=err, color="tab:blue", capsize=3, label="Spearman ρ (95% CI)"
    )
    ax1.barh(pos + w / 2, rho_l, w, color="tab:gray", label="ρ within layers")
    _draw_ceilings(ax1, pairs, names, pos, w)
    for i, p in enumerate(names):
        for val, pv, off in (
            (rho[i], pairs[p]["p_perm"], -w / 2),
            (rho_l[i], pairs[p]["p_layer"], w / 2),
        ):
            stars = _p_stars(pv)
            if stars and math.isfinite(val):
                x_text = max(val, hi[i] if off < 0 and math.isfinite(hi[i]) else val)
                if val < 0:
                    x_text = min(val, lo[i] if off < 0 and math.isfinite(lo[i]) else val)
                ax1.text(
                    x_text + (0.03 if val >= 0 else -0.03),
                    i + off,
                    stars,
                    va="center",
                    ha="left" if val >= 0 else "right",
                    fontsize=8,
                )
    ax1.axvline(0, color="black", lw=0.8)
    ax1.set_xlim(-1.05, 1.05)
    ax1.set_yticks(pos, labels)
    ax1.invert_yaxis()
    ax1.set_xlabel("Spearman ρ (* p<.05, ** p<.01, *** p<.001, permutation)")
    ax1.legend(loc="lower left", fontsize=8)
    ax1.grid(axis="x", alpha=0.3)

    ov = np.array([pairs[p]["topk"]["overlap"] for p in names], dtype=float)
    exp = np.array([pairs[p]["topk"]["expected"] for p in names], dtype=float)
    k = pairs[names[0]]["topk"]["k"] if names else 0
    ax2.barh(pos, ov, 0.6, color="tab:green", label=f"top-{k} overlap")
    ax2.scatter(exp, pos, marker="|", s=300, color="black", zorder=3, label="chance k²/n")
    for i, p in enumerate(names):
        ax2.text(
            max(ov[i], exp[i]) + 0.3, i, f"p={pairs[p]['topk']['p']:.2g}", va="center", fontsize=8
        )
    ax2.set_xlim(0, max(k, 1) * 1.15)
    ax2.set_xlabel(f"heads in both top-{k} sets")
    ax2.legend(loc="lower right", fontsize=8)
    ax2.grid(axis="x", alpha=0.3)
    n_heads = stats.get("n_heads")
    fig.suptitle(title or f"Rank statistics over {n_heads} heads", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def _grid(df: pd.DataFrame, col: str) -> np.ndarray:
    """[L, H] array of ``col``; NaN where a head is missing."""
    n_l = int(df["layer"].max()) + 1
    n_h = int(df["head"].max()) + 1
    grid = np.full((n_l, n_h), np.nan)
    grid[df["layer"].to_numpy(int), df["head"].to_numpy(int)] = df[col].to_numpy(float)
    return grid


def fig_heatmaps(
    df: pd.DataFrame,
    measures: Sequence[str] = ("I_pre", "I_post", "G", "Urel"),
    path: str | os.PathLike = "heatmaps.png",
    title: str | None = None,
) -> Figure:
    """Layer x head heatmaps of ``measures`` (column names; ``*_mean`` for seed means), one
    subplot each, layer 0 at the top. Measures with both signs use a diverging map centred at 0."""
    n = len(measures)
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    n_l = int(df["layer"].max()) + 1
    n_h = int(df["head"].max()) + 1
    cell = 0.42
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(ncols * (n_h * cell + 1.8), nrows * (n_l * cell + 1.1)),
        squeeze=False,
    )
    for ax, m in zip(axes.ravel(), measures, strict=False):
        g = _grid(df, m)
        finite = g[np.isfinite(g)]
        if finite.size and finite.min() < 0 < finite.max():
            lim = float(np.abs(finite).max())
            norm = mcolors.TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
            cmap = "RdBu_r"
        else:
            norm, cmap = None, "viridis"
        im = ax.imshow(g, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        ax.set_title(_label(m), fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(n_h))
        ax.set_yticks(range(n_l))
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def fig_rank_stability(
    stability: Mapping[str, Any], path: str | os.PathLike, title: str | None = None
) -> Figure:
    """Mean seed-to-seed Spearman rho of each head ranking (bar), its min-max range (error bar)
    and the individual seed pairs (dots)."""
    measures = list(stability)
    pos = np.arange(len(measures))
    mean = np.array([_nan(stability[m]["mean"]) for m in measures])
    lo = np.array([_nan(stability[m]["min"]) for m in measures])
    hi = np.array([_nan(stability[m]["max"]) for m in measures])
    err = np.nan_to_num(np.vstack([mean - lo, hi - mean]))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(measures) + 2), 4.2))
    ax.bar(pos, np.nan_to_num(mean), 0.6, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    rng = np.random.default_rng(0)
    for i, m in enumerate(measures):
        vals = [p["rho"] for p in stability[m]["pairs"] if p["rho"] is not None]
        if vals:
            ax.scatter(
                i + rng.uniform(-0.12, 0.12, len(vals)),
                vals,
                color="black",
                s=12,
                zorder=3,
                label="seed pair" if i == 0 else None,
            )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(pos, [f"{m}\n{stability[m]['n_pairs']} pairs" for m in measures])
    all_vals = [p["rho"] for m in measures for p in stability[m]["pairs"] if p["rho"] is not None]
    ax.set_ylim(min(-0.2, min(all_vals, default=0.0) - 0.1), 1.05)
    ax.set_ylabel("Spearman ρ between seeds")
    ax.set_title(title or "Seed-to-seed stability of head rankings", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    if any(stability[m]["pairs"] for m in measures):
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def fig_seed_mean_scatter(
    mean_df: pd.DataFrame,
    x: str,
    y: str,
    path: str | os.PathLike,
    log: bool | str = "auto",
    title: str | None = None,
) -> Figure:
    """Seed-mean ``y`` against seed-mean ``x`` (base names, e.g. ``"I_pre"``; the frame holds
    ``<m>_mean`` and ``<m>_sd``), sd over seeds as error bars, coloured by layer."""
    xv, yv = mean_df[f"{x}_mean"].to_numpy(float), mean_df[f"{y}_mean"].to_numpy(float)
    xs = np.nan_to_num(mean_df.get(f"{x}_sd", pd.Series(0.0, index=mean_df.index)).to_numpy(float))
    ys = np.nan_to_num(mean_df.get(f"{y}_sd", pd.Series(0.0, index=mean_df.index)).to_numpy(float))
    layer = mean_df["layer"].to_numpy()
    n_layers = int(layer.max()) + 1
    fig, ax = plt.subplots(figsize=(7.2, 5.6))
    ax.errorbar(xv, yv, xerr=xs, yerr=ys, fmt="none", ecolor="0.6", elinewidth=0.7, alpha=0.6)
    sc = ax.scatter(
        xv,
        yv,
        c=layer,
        cmap=plt.get_cmap("viridis", max(n_layers, 2)),
        vmin=-0.5,
        vmax=n_layers - 0.5,
        s=22,
        zorder=3,
    )
    cb = fig.colorbar(sc, ax=ax, pad=0.02)
    cb.set_label("layer")
    axes = _log_axes(log, xv, yv)
    if "x" in axes:
        _set_scale(ax, "x", xv)
    if "y" in axes:
        _set_scale(ax, "y", yv)
    n_seeds = int(mean_df["n_seeds"].max()) if "n_seeds" in mean_df else None
    ax.set_xlabel(_label(f"{x}_mean"))
    ax.set_ylabel(_label(f"{y}_mean"))
    ax.set_title(title or f"Seed means ({n_seeds} seeds), error bars: sd over seeds", fontsize=11)
    _annotate_rho(ax, xv, yv)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def order_label(order: str, kind: str) -> str:
    """A removal order in words: which heads go first (docs/methods.md, "Pruning curves")."""
    if kind == "reverse":
        return f"{order.removesuffix('_reverse')}, largest removed first"
    if kind == "random":
        return "random orders, mean"
    return f"{order}, smallest removed first"


def _order_style(order: str, kind: str, i: int) -> dict[str, Any]:
    if kind == "reverse":
        return {"color": "black", "linestyle": "--", "marker": "v"}
    return {"color": plt.get_cmap("tab10")(i % 10), "linestyle": "-", "marker": "o"}


def _pruning_axes(axes, acc_label: str, loss_label: str) -> None:
    """The shared frame of both pruning figures: accuracy left, loss right, against the fraction
    of heads removed, legend on the accuracy panel."""
    axes[0].set_ylabel(acc_label)
    axes[1].set_ylabel(loss_label)
    for ax in axes:
        ax.set_xlabel("fraction of heads removed")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")


def fig_pruning(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    auc: Mapping[str, float],
    path: str | os.PathLike,
    title: str | None = None,
) -> Figure:
    """Pruning curves of one seed (the cross-fitted rows of ``pruning.jsonl``,
    :func:`headplast.analysis.pruning_auc.curves_of_fit`): accuracy (left) and loss (right)
    against the fraction of heads removed; one line per score order, the reverse order dashed,
    the random orders as a grey min-max band around their mean. ``auc`` maps each order to the
    area under its accuracy curve (:func:`headplast.analysis.pruning_auc.accuracy_auc`), in the
    legend."""
    df = curves_of_fit(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    rand = df[df["kind"] == "random"]
    if not rand.empty:
        g = rand.groupby("fraction")
        n = rand["order"].nunique()
        mean_auc = float(np.mean([auc[o] for o in rand["order"].unique()]))
        for ax, col in zip(axes, ("acc", "loss"), strict=True):
            lo, hi, mid = g[col].min(), g[col].max(), g[col].mean()
            ax.fill_between(lo.index, lo, hi, color="0.75", alpha=0.6, lw=0)
            label = f"{n} random orders: mean (band: min to max), AUC {mean_auc:.3f}"
            ax.plot(mid.index, mid, color="0.45", lw=1.5, label=label)
    named = df[df["kind"] != "random"]
    for i, (order, g) in enumerate(named.groupby("order", sort=False)):
        g = g.sort_values("fraction")
        style = _order_style(order, g["kind"].iloc[0], i)
        for ax, col in zip(axes, ("acc", "loss"), strict=True):
            ax.plot(
                g["fraction"],
                g[col],
                ms=3.5,
                lw=1.3,
                label=f"{order_label(order, g['kind'].iloc[0])}, AUC {auc[order]:.3f}",
                **style,
            )
    _pruning_axes(
        axes,
        "accuracy, cross-fitted (mean of the eval-subset halves)",
        "mean cross-entropy, cross-fitted",
    )
    fig.suptitle(
        title or "Pruning curves (cross-fitted): heads removed in each score's order", fontsize=12
    )
    fig.tight_layout()
    return _save(fig, path)


def fig_pruning_mean(
    mean_df: pd.DataFrame,
    aucs: Mapping[str, Any],
    path: str | os.PathLike,
    title: str | None = None,
) -> Figure:
    """Seed-mean cross-fitted pruning curves
    (:func:`headplast.analysis.pruning_auc.curves_seed_mean`) with +-1 sd bands over seeds;
    ``aucs`` (:func:`headplast.analysis.pruning_auc.auc_across_seeds`) gives the legend's mean
    and sd of the area under the accuracy curve."""
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    n_seeds = int(mean_df["n_seeds"].max())
    for i, (order, g) in enumerate(mean_df.groupby("order", sort=False)):
        g = g.sort_values("fraction")
        kind = g["kind"].iloc[0]
        style = (
            {"color": "0.45", "linestyle": "-", "marker": None}
            if kind == "random"
            else _order_style(order, kind, i)
        )
        a = aucs.get(order, {})
        sd = f" ± {a['sd']:.3f}" if a.get("sd") is not None else ""
        label = f"{order_label(order, kind)}, AUC {a.get('mean', float('nan')):.3f}{sd}"
        for ax, col in zip(axes, ("acc", "loss"), strict=True):
            m = g[f"{col}_mean"].to_numpy(float)
            s = np.nan_to_num(g[f"{col}_sd"].to_numpy(float))
            ax.fill_between(g["fraction"], m - s, m + s, color=style["color"], alpha=0.15, lw=0)
            ax.plot(g["fraction"], m, ms=3.5, lw=1.3, label=label, **style)
    _pruning_axes(
        axes, "accuracy, cross-fitted, seed mean", "cross-entropy, cross-fitted, seed mean"
    )
    fig.suptitle(title or f"Pruning curves, mean of {n_seeds} seeds (bands: ± 1 sd)", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def fig_message(path: str | os.PathLike, title: str, message: str) -> Figure:
    """A figure that says why there is nothing to draw (a run whose every seed is degenerate), so
    the report shows the reason where the figure would be."""
    import textwrap

    text = "\n".join(textwrap.fill(part, 90) for part in message.split("\n"))
    fig, ax = plt.subplots(figsize=(8.0, max(2.4, 1.2 + 0.22 * (text.count("\n") + 1))))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def fig_freeze(table: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> Figure:
    """The freeze interventions (``freeze.csv``): per score order the mean change of fine-tuned
    accuracy over seeds against the unconstrained run, with its 95 % t-interval; the random draws
    as points and their band (smallest to largest mean) in grey; the verdict under each order."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    rand = table[table["kind"] == "random"]
    named = table[table["kind"] != "random"].reset_index(drop=True)
    if len(rand):
        low, high = float(rand["delta_acc_mean"].min()), float(rand["delta_acc_mean"].max())
        ax.axhspan(low, high, color="0.8", alpha=0.7, lw=0, label=f"random draws ({len(rand)})")
        ax.scatter(np.full(len(rand), len(named)), rand["delta_acc_mean"], color="0.4", zorder=3)
    x = np.arange(len(named))
    y = named["delta_acc_mean"].to_numpy(float)
    lo = named["ci_low"].to_numpy(float)
    hi = named["ci_high"].to_numpy(float)
    ax.bar(x, y, color="tab:blue", width=0.6, label="largest score frozen")
    err = np.vstack([y - np.where(np.isnan(lo), y, lo), np.where(np.isnan(hi), y, hi) - y])
    ax.errorbar(x, y, yerr=err, fmt="none", ecolor="black", capsize=3, lw=0.9)
    labels = [f"{o}\n({v})" for o, v in zip(named["order"], named["verdict"], strict=True)]
    ax.set_xticks([*x, len(named)], [*labels, "random"])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("fine-tuned accuracy, frozen - unconstrained")
    ax.legend(fontsize=8, loc="best")
    n = int(table["n_seeds"].max()) if len(table) else 0
    fig.suptitle(title or f"Freezing heads during fine-tuning ({n} seeds)", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def fig_training(
    run_configs: Mapping[int, Mapping[str, Any]], path: str | os.PathLike, title: str = ""
) -> Figure:
    """Did each fine-tune converge? From each seed's ``run_config.json`` ``training_curve``: the
    training loss (left) and the accuracy on the rows that choose theta1 (right: the selection
    rows, or the validation split for records without ``selection`` or that select on it; theta0
    at step 0, then every evaluation) against the optimizer step, one colour per seed, with
    theta1's validation accuracy as a star at the step it was chosen when the two differ; a
    degenerate seed dashed and named so, the validation split's majority-class rate dotted. Runs
    without a curve (an imported theta1, or a record made before curves were kept) get
    :func:`fig_message`. With many logged points the loss is drawn thin and its running mean over
    a fifteenth of them thick."""
    curves = {s: rc.get("training_curve") for s, rc in run_configs.items()}
    if not any(curves.values()):
        return fig_message(
            path,
            title or "fine-tuning",
            "No training log in these runs' run_config.json: theta1 was imported (a "
            "`checkpoints:` task), or the runs were fine-tuned before the workflow kept the "
            "Trainer's log history (rerun them with `snakemake -R finetune` to draw it).",
        )
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11.0, 4.0))
    majority = []
    splits = {(rc.get("selection") or {}).get("split", "validation") for rc in run_configs.values()}
    on_train = splits == {"train"}
    for i, (seed, rc) in enumerate(sorted(run_configs.items())):
        curve = curves[seed]
        if not curve:
            continue
        bad = bool(rc.get("degenerate"))
        style = {"color": f"C{i % 10}", "ls": "--" if bad else "-"}
        label = f"seed {seed}" + (" (degenerate)" if bad else "")
        if curve["train"]:
            steps = [p["step"] for p in curve["train"]]
            loss = pd.Series([p["loss"] for p in curve["train"]], dtype=float)
            window = max(1, len(loss) // 15)
            if window > 1:  # the logged steps thin, their running mean thick
                ax_loss.plot(steps, loss, lw=0.7, alpha=0.35, **style)
            ax_loss.plot(
                steps, loss.rolling(window, min_periods=1).mean(), lw=1.6, label=label, **style
            )
        if curve["eval"]:
            ax_acc.plot(
                [p["step"] for p in curve["eval"]],
                [p["accuracy"] for p in curve["eval"]],
                marker="o",
                label=label,
                **style,
            )
        best = rc.get("best_checkpoint_step")
        if on_train and best is not None and rc.get("validation"):
            ax_acc.plot(
                [best], [rc["validation"]["theta1"]["accuracy"]], marker="*", ms=11, ls="none",
                color=style["color"], markeredgecolor="black",
            )  # fmt: skip
        if rc.get("majority_class_rate") is not None:
            majority.append(float(rc["majority_class_rate"]))
    if majority:
        ax_acc.axhline(
            max(majority), color="0.3", ls=":", lw=1, label="majority class (validation)"
        )
    if on_train:
        ax_acc.plot([], [], marker="*", ms=11, ls="none", color="0.5", markeredgecolor="black",
                    label="theta1 on the validation split")  # fmt: skip
    ax_loss.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
    ax_acc.set(
        xlabel="optimizer step",
        ylabel="accuracy on the selection rows" if on_train else "validation accuracy",
        title=(
            "accuracy on the selection rows (train split; chooses theta1)"
            if on_train
            else "validation accuracy (step 0: theta0)"
        ),
    )
    for ax in (ax_loss, ax_acc):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "fine-tuning", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def fig_starts(table: pd.DataFrame, path: str | os.PathLike, title: str = "") -> Figure:
    """Per model and task a row of two panels: seed-to-seed stability of each measure's head
    ranking, and each pair's rho, one bar per start, with their intervals as error bars (the
    table of :func:`headplast.analysis.starts.compare_starts`). Starts with nothing to compare
    (section ``not_compared``) are named under the title; when no start of any run has anything,
    the figure says so in words (:func:`fig_message`)."""
    skipped = table[table["section"] == NOT_COMPARED]
    table = table[table["section"] != NOT_COMPARED]
    why = [f"{r.model} / {r.task} / {r.start} start: {r.note}" for r in skipped.itertuples()]
    if table.empty:
        message = "\n".join(why) or "No run to compare."
        return fig_message(path, title or "Starts compared", f"Nothing to compare.\n{message}")
    runs = list(dict.fromkeys(zip(table["model"], table["task"], strict=True)))
    starts = list(dict.fromkeys(table["start"]))
    fig, axes = plt.subplots(
        len(runs), 2, figsize=(13, 3.6 * len(runs)), squeeze=False, width_ratios=[1, 2]
    )
    width = 0.8 / max(1, len(starts))
    for r, (model, task) in enumerate(runs):
        for c, section in enumerate(("stability", "pair")):
            ax = axes[r, c]
            sub = table[(table["model"] == model) & (table["task"] == task)]
            sub = sub[sub["section"] == section]
            items = list(dict.fromkeys(sub["item"]))
            x = np.arange(len(items))
            for i, start in enumerate(starts):
                s = sub[sub["start"] == start].set_index("item").reindex(items)
                y = s["rho"].to_numpy(float)
                err = np.vstack(
                    [y - s["rho_low"].to_numpy(float), s["rho_high"].to_numpy(float) - y]
                )
                ax.bar(x + (i - (len(starts) - 1) / 2) * width, y, width, label=start)
                ax.errorbar(
                    x + (i - (len(starts) - 1) / 2) * width, y, yerr=np.abs(err), fmt="none",
                    ecolor="black", capsize=2, lw=0.8,
                )  # fmt: skip
            ax.axhline(0, color="grey", lw=0.6)
            ax.set_xticks(x, items, rotation=90)
            ax.set_ylim(-1.05, 1.05)
            ax.set_ylabel("seed-to-seed Spearman" if section == "stability" else "Spearman rho")
            what = "stability of head rankings" if section == "stability" else "pair statistics"
            ax.set_title(f"{model} / {task}: {what}", fontsize=10)
            if r == 0 and c == 0:
                ax.legend(title="start", fontsize=8)
    if why:
        title = "\n".join([title, *why]) if title else "\n".join(why)
    if title:
        fig.suptitle(title, fontsize=10 if why else None)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return fig
