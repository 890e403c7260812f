"""The freeze interventions across seeds (docs/methods.md, "Freeze interventions"): what freezing
each set of heads costs in fine-tuned accuracy, against the random draws' band. No torch.

Per order and seed the effect is the frozen run's validation accuracy at its kept checkpoint minus
the unconstrained run's (``run_config.json`` of each); across the seeds used, its mean, sd and the
95 % t-interval of the mean. The random draws form the band: the smallest to the largest of their
mean effects. An order's verdict compares its mean with that band: ``below`` (freezing these heads
costs more than freezing as many random heads: their movement was needed), ``within``, or
``above``. Also per order: the largest Urel of a frozen head in the frozen run, over the slices
the freeze holds (exactly 0 when freezing held; with grouped-query attention a frozen head whose
key/value group is not frozen whole keeps training through the group's key and value rows, which
are then left out: :func:`held_urel`), and how far the other heads moved, as the ratio of their
mean U to the same heads' mean U in the unconstrained run (above 1: they compensate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from headplast.analysis.summary import mean_t_interval

COLUMNS = [
    "order",
    "kind",
    "n_seeds",
    "delta_acc_mean",
    "delta_acc_sd",
    "ci_low",
    "ci_high",
    "random_band_low",
    "random_band_high",
    "verdict",
    "frozen_Urel_max",
    "other_U_ratio_mean",
    "per_seed",
]


def order_kind(order: str) -> str:
    """``random`` for a random draw (``random_<i>``), else ``score``."""
    return "random" if order.startswith("random_") else "score"


def held_urel(update: pd.DataFrame, frozen: set[tuple[int, int]]) -> np.ndarray:
    """Per row of an ``update.jsonl`` frame, Urel over the slices that freezing the heads
    ``frozen`` holds (docs/methods.md, "Grouped-query attention"): the row's Urel, except for a
    frozen head whose key/value group (``kv_group``; each head its own without the column) is not
    frozen whole, whose key and value rows keep training: Urel * sqrt(Uq^2 + Uo^2) / U for it
    (query rows and output columns only, over the same theta0 norms; 0 where U is 0)."""
    urel = update["Urel"].to_numpy(float).copy()
    if "kv_group" not in update:
        return urel
    layer, head = update["layer"].to_numpy(int), update["head"].to_numpy(int)
    group = update["kv_group"].to_numpy(int)
    members: dict[tuple[int, int], list[int]] = {}
    for la, h, g in zip(layer, head, group, strict=True):
        members.setdefault((int(la), int(g)), []).append(int(h))
    partly = np.array(
        [
            (int(la), int(h)) in frozen
            and any((int(la), m) not in frozen for m in members[(int(la), int(g))])
            for la, h, g in zip(layer, head, group, strict=True)
        ]
    )
    if partly.any():
        u = update["U"].to_numpy(float)[partly]
        own = np.hypot(update["Uq"].to_numpy(float), update["Uo"].to_numpy(float))[partly]
        urel[partly] = np.where(u > 0, urel[partly] * own / np.where(u > 0, u, 1.0), 0.0)
    return urel


def seed_effect(
    base: Mapping[str, Any],
    frozen: Mapping[str, Any],
    frozen_update: pd.DataFrame,
    base_update: pd.DataFrame,
) -> dict[str, float]:
    """One seed's effect of one order: ``delta_acc`` (frozen minus unconstrained theta1 validation
    accuracy), ``frozen_Urel_max`` (the frozen heads' largest Urel in the frozen run, over the
    slices the freeze holds: :func:`held_urel`) and
    ``other_U_ratio`` (the other heads' mean U in the frozen run over their mean U in the
    unconstrained one). ``frozen_update``/``base_update`` are ``update.jsonl`` frames."""
    heads = {(int(la), int(h)) for la, h in frozen["frozen_heads"]}
    key = list(zip(frozen_update["layer"], frozen_update["head"], strict=True))
    is_frozen = np.array([k in heads for k in key])
    if is_frozen.sum() != len(heads):
        raise ValueError(f"frozen heads {sorted(heads)} not all in the update table")
    base_indexed = base_update.set_index(["layer", "head"])
    absent = sorted((int(la), int(h)) for la, h in set(key) - set(base_indexed.index))
    if absent:
        raise ValueError(
            f"the unconstrained run's update table lacks the heads {absent} of the frozen run: "
            "the two runs are of different models"
        )
    base_u = base_indexed.loc[key, "U"].to_numpy(float)
    other = ~is_frozen
    return {
        "delta_acc": float(frozen["validation"]["theta1"]["accuracy"])
        - float(base["validation"]["theta1"]["accuracy"]),
        "frozen_Urel_max": float(held_urel(frozen_update, heads)[is_frozen].max()),
        "other_U_ratio": float(
            frozen_update["U"].to_numpy(float)[other].mean() / base_u[other].mean()
        ),
    }


def freeze_table(effects: Mapping[str, Mapping[int, Mapping[str, float]]]) -> pd.DataFrame:
    """One row per order from ``effects[order][seed]`` (:func:`seed_effect`), score orders first,
    then the random draws, with the band and each score order's verdict."""
    rows = []
    for order, by_seed in effects.items():
        deltas = [e["delta_acc"] for e in by_seed.values()]
        spread = mean_t_interval(deltas)
        mean, sd, ci = spread["mean"], spread["sd"], spread["ci"]
        rows.append(
            {
                "order": order,
                "kind": order_kind(order),
                "n_seeds": len(deltas),
                "delta_acc_mean": mean,
                "delta_acc_sd": sd,
                "ci_low": ci[0],
                "ci_high": ci[1],
                "frozen_Urel_max": max(e["frozen_Urel_max"] for e in by_seed.values()),
                "other_U_ratio_mean": float(
                    np.mean([e["other_U_ratio"] for e in by_seed.values()])
                ),
                "per_seed": ";".join(f"{s}:{e['delta_acc']:.6f}" for s, e in by_seed.items()),
            }
        )
    table = pd.DataFrame(rows)
    band = table.loc[table["kind"] == "random", "delta_acc_mean"]
    low, high = (float(band.min()), float(band.max())) if len(band) else (None, None)
    table["random_band_low"], table["random_band_high"] = low, high

    def verdict(row) -> str | None:
        if row["kind"] == "random" or low is None:
            return None
        m = row["delta_acc_mean"]
        return "below" if m < low else "above" if m > high else "within"

    table["verdict"] = table.apply(verdict, axis=1)
    table["_k"] = (table["kind"] == "random").astype(int)
    table = table.sort_values("_k", kind="stable").drop(columns="_k")
    return table[COLUMNS].reset_index(drop=True)
