"""The starts side by side: does a probed classifier at theta0 change what the measures say?

:func:`compare_starts` puts, per model and task, each start's across-seed summaries next to each
other: the seed-to-seed stability of every head ranking (``stability.json`` of
:func:`headplast.analysis.summary.rank_stability`) and every pair statistic (``pair_stats.json`` of
:func:`headplast.analysis.summary.pair_stats_across_seeds`).
:func:`headplast.analysis.figures.fig_starts` draws the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

COLUMNS = [
    "model",
    "task",
    "start",
    "section",  # stability (item = measure) or pair (item = "x~y")
    "item",
    "rho",  # stability: mean Spearman over seed pairs; pair: mean over seeds of the pair's rho
    "rho_low",
    "rho_high",
    "interval",  # what rho_low..rho_high is
    "overlap",  # pair: mean top-K overlap over seeds
    "overlap_chance",  # pair: K*K/n, the overlap of two random top-K sets
    "n",  # stability: seed pairs; pair: seeds
    "note",  # section "not_compared": why the start has nothing to compare
]

#: The section of a start's one row when it has no usable seed (every seed degenerate).
NOT_COMPARED = "not_compared"


def compare_starts(
    runs: Mapping[tuple[str, str, str], tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> pd.DataFrame:
    """One row per (model, task, start, section, item), from ``runs[(model, task, start)] =
    (stability, pair_stats)``; rows of one model and task, item and section differ only in the
    start, so the starts read side by side. Missing values (one seed) are NaN. A start with no
    usable seed (``pair_stats`` says ``no_usable_seed``) has one row of section
    :data:`NOT_COMPARED` whose ``note`` says why."""
    rows = []
    for (model, task, start), (stability, pair_stats) in runs.items():
        if reason := pair_stats.get("no_usable_seed"):
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "start": start,
                    "section": NOT_COMPARED,
                    "item": "",
                    "note": f"not compared: {reason}",
                }
            )
            continue
        for measure, st in stability.items():
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "start": start,
                    "section": "stability",
                    "item": measure,
                    "rho": st.get("mean"),
                    "rho_low": st.get("min"),
                    "rho_high": st.get("max"),
                    "interval": "min..max over seed pairs",
                    "n": st.get("n_pairs"),
                }
            )
        for name, p in pair_stats.get("pairs", {}).items():
            rho, ov = p["rho"], p["overlap"]
            low, high = rho.get("ci") or [None, None]
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "start": start,
                    "section": "pair",
                    "item": name,
                    "rho": rho.get("mean"),
                    "rho_low": low,
                    "rho_high": high,
                    "interval": _pooled_interval(rho, pair_stats.get("ci_level", 0.95)),
                    "overlap": ov.get("mean"),
                    "overlap_chance": ov.get("expected"),
                    "n": rho.get("n"),
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    num = ["rho", "rho_low", "rho_high", "overlap", "overlap_chance", "n"]
    table[num] = table[num].apply(pd.to_numeric)
    # (a sort on several columns is a lexsort, stable whatever ``kind`` says; the rows are unique)
    return table.sort_values(["model", "task", "section", "item", "start"])


def _pooled_interval(rho: Mapping[str, Any], level: float) -> str:
    """What a pair's rho_low..rho_high is, in words (the pooling of
    :func:`headplast.analysis.summary.fisher_z_pool`; a t-interval of raw rho from older
    summaries)."""
    if rho.get("method") != "fisher_z":
        return f"{level:.0%} t-interval over seeds"
    words = f"{level:.0%} interval over seeds on Fisher's z"
    return words if rho.get("informative") else f"{words} (not informative: {rho.get('n')} seeds)"
