"""Reading ``pruning.jsonl`` and the areas under its accuracy curves, per seed and across seeds.

The curves themselves are measured by :mod:`headplast.measure.pruning` (heads removed cumulatively
in the order of a score; see that module for the orders and steps). This module only reads them: it
imports no torch, so the CPU rules that summarise the curves (``stats``, ``fig_pruning``,
``summary_pruning``) start in a fraction of a second rather than ~5 s.

The area under the accuracy curve is the trapezoid area over the removed fraction n_j / N in
[0, 1]: a score that predicts what can be removed keeps the accuracy high for longer and has the
larger area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from headplast.io import ArtifactError, iter_jsonl

#: The fields every line of ``pruning.jsonl`` has.
ROW_FIELDS = ("order", "kind", "step", "n_removed", "fraction", "removed", "loss", "acc")


def read_pruning(path) -> list[dict]:
    """The rows of a ``pruning.jsonl``; an error naming the file and line if one lacks a field."""
    rows = []
    for lineno, row in iter_jsonl(path):
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            raise ArtifactError(
                f"{path}:{lineno}: no {missing}; delete the file and rerun the pruning rule"
            )
        rows.append(row)
    if not rows:
        raise ArtifactError(f"{path}: empty; delete it and rerun the pruning rule")
    return rows


def accuracy_auc(rows: pd.DataFrame | Sequence[Mapping]) -> pd.DataFrame:
    """Per order: ``order, kind, auc`` = trapezoid area under accuracy vs removed fraction in
    [0, 1] (1 would be a model at accuracy 1 until every head is gone), in first-seen order."""
    df = pd.DataFrame(rows)
    out = []
    for name, g in df.groupby("order", sort=False):
        g = g.sort_values("fraction")
        fr = g["fraction"].to_numpy(float)
        if fr[0] != 0 or fr[-1] != 1:
            raise ValueError(f"order {name}: the curve does not span removed fractions 0 to 1")
        auc = float(np.trapezoid(g["acc"].to_numpy(float), fr))
        out.append({"order": name, "kind": g["kind"].iloc[0], "auc": auc})
    return pd.DataFrame(out, columns=["order", "kind", "auc"])


def auc_summary(rows: pd.DataFrame | Sequence[Mapping]) -> dict:
    """What ``stats.json`` holds under ``pruning``: the AUC of each score order and of the
    reverse order, and the random orders' mean, sd (ddof=1), min, max and count."""
    aucs = accuracy_auc(rows)
    rand = aucs.loc[aucs["kind"] == "random", "auc"].to_numpy(float)
    named = aucs[aucs["kind"] != "random"]
    return {
        "auc": {r.order: r.auc for r in named.itertuples()},
        "random": {
            "n": int(rand.size),
            "mean": float(rand.mean()) if rand.size else None,
            "sd": float(rand.std(ddof=1)) if rand.size > 1 else None,
            "min": float(rand.min()) if rand.size else None,
            "max": float(rand.max()) if rand.size else None,
        },
    }


# --------------------------------------------------------------------------- across seeds


def _seed_curves(rows: pd.DataFrame | Sequence[Mapping]) -> pd.DataFrame:
    """``order, kind, fraction, acc, loss`` of one seed with its random orders averaged into one
    curve named ``random`` (the seed's random baseline)."""
    df = pd.DataFrame(rows)[["order", "kind", "fraction", "acc", "loss"]]
    named = df[df["kind"] != "random"]
    rand = df[df["kind"] == "random"]
    if rand.empty:
        return named
    rand = rand.groupby("fraction", as_index=False)[["acc", "loss"]].mean()
    rand.insert(0, "kind", "random")
    rand.insert(0, "order", "random")
    return pd.concat([named, rand], ignore_index=True)


#: The columns of :func:`curves_seed_mean` (``pruning_curves_mean.csv``).
SEED_MEAN_COLUMNS = (
    "order",
    "kind",
    "fraction",
    "n_seeds",
    "acc_mean",
    "acc_sd",
    "loss_mean",
    "loss_sd",
)


def curves_seed_mean(
    curves_by_seed: Mapping[int, pd.DataFrame | Sequence[Mapping]],
) -> pd.DataFrame:
    """Per order and removed fraction: ``n_seeds, acc_mean, acc_sd, loss_mean, loss_sd`` over
    seeds (sd with ddof=1, NaN for one seed). Each seed's random orders count as one curve, their
    mean (``order = random``); the other orders keep their names, in first-seen order."""
    if not curves_by_seed:
        raise ValueError("no seeds given")
    long = pd.concat(
        [_seed_curves(rows).assign(seed=s) for s, rows in curves_by_seed.items()],
        ignore_index=True,
    )
    order_rank = {o: i for i, o in enumerate(dict.fromkeys(long["order"]))}
    g = long.groupby(["order", "kind", "fraction"], sort=False)
    out = g.agg(
        n_seeds=("seed", "nunique"),
        acc_mean=("acc", "mean"),
        acc_sd=("acc", "std"),
        loss_mean=("loss", "mean"),
        loss_sd=("loss", "std"),
    ).reset_index()
    out["_o"] = out["order"].map(order_rank)
    return out.sort_values(["_o", "fraction"]).drop(columns="_o").reset_index(drop=True)


def auc_across_seeds(curves_by_seed: Mapping[int, pd.DataFrame | Sequence[Mapping]]) -> dict:
    """Per order (random orders: each seed's mean random AUC): ``mean, sd`` (ddof=1; None for
    one seed) and ``per_seed`` {seed: auc} of the area under the accuracy curve."""
    per_order: dict[str, dict[int, float]] = {}
    for seed, rows in curves_by_seed.items():
        aucs = accuracy_auc(rows)
        for r in aucs[aucs["kind"] != "random"].itertuples():
            per_order.setdefault(r.order, {})[int(seed)] = float(r.auc)
        rand = aucs.loc[aucs["kind"] == "random", "auc"]
        if len(rand):
            per_order.setdefault("random", {})[int(seed)] = float(rand.mean())
    out = {}
    for order, by_seed in per_order.items():
        v = np.array(list(by_seed.values()))
        out[order] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if v.size > 1 else None,
            "per_seed": {str(s): a for s, a in by_seed.items()},
        }
    return out


def random_order_areas(curves_by_seed: Mapping[int, pd.DataFrame | Sequence[Mapping]]) -> dict:
    """Each random order's area per seed, ``{order: {"mean", "per_seed": {seed: auc}}}``: the
    random orders are the same draws in every seed, so each is one member of the random
    distribution that the findings compare a score's seed-mean area with (docs/methods.md,
    "Findings"). Empty without random orders."""
    per_order: dict[str, dict[int, float]] = {}
    for seed, rows in curves_by_seed.items():
        aucs = accuracy_auc(rows)
        for r in aucs[aucs["kind"] == "random"].itertuples():
            per_order.setdefault(r.order, {})[int(seed)] = float(r.auc)
    return {
        order: {
            "mean": float(np.mean(list(by_seed.values()))),
            "per_seed": {str(s): a for s, a in by_seed.items()},
        }
        for order, by_seed in per_order.items()
    }
