"""Reading ``pruning.jsonl`` and the areas under its accuracy curves, per seed and across seeds.

The curves themselves are measured by :mod:`headplast.measure.pruning` (heads removed cumulatively
in the order of a score; see that module for the orders and steps). This module only reads them: it
imports no torch, so the CPU rules that summarise the curves (``stats``, ``fig_pruning``,
``summary_pruning``) start in a fraction of a second rather than ~5 s.

The area under the accuracy curve is the trapezoid area over the removed fraction n_j / N in
[0, 1]: a score that predicts what can be removed keeps the accuracy high for longer and has the
larger area.

Each line carries a ``fit``: ``crossfit`` (the example-based orders fitted on one half of the eval
subset and scored on the other, every order's curve the mean of its two half curves) or
``in_sample`` (orders fitted and scored on the whole subset; docs/methods.md, "Pruning curves").
Every summary here (areas, seed means, the random band) uses the cross-fitted curves; the
in-sample areas ride along for comparison. Rows without ``fit`` (hand-made, or a file from before
cross-fitting) are taken as the only curves there are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from headplast.io import ArtifactError, iter_jsonl

#: The fields every line of ``pruning.jsonl`` has.
ROW_FIELDS = ("order", "kind", "step", "n_removed", "fraction", "removed", "loss", "acc")
#: The ``fit`` of a line: orders cross-fitted over the two halves, or fitted on the whole subset.
CROSSFIT = "crossfit"
IN_SAMPLE = "in_sample"
FITS = (CROSSFIT, IN_SAMPLE)


def read_pruning(path) -> list[dict]:
    """The rows of a ``pruning.jsonl``; an error naming the file and line if one lacks a field
    or names an unknown ``fit``."""
    rows = []
    for lineno, row in iter_jsonl(path):
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            raise ArtifactError(
                f"{path}:{lineno}: no {missing}; delete the file and rerun the pruning rule"
            )
        if "fit" in row and row["fit"] not in FITS:
            raise ArtifactError(
                f"{path}:{lineno}: fit {row['fit']!r} is none of {list(FITS)}; delete the file "
                "and rerun the pruning rule"
            )
        rows.append(row)
    if not rows:
        raise ArtifactError(f"{path}: empty; delete it and rerun the pruning rule")
    return rows


def curves_of_fit(rows: pd.DataFrame | Sequence[Mapping], fit: str = CROSSFIT) -> pd.DataFrame:
    """The rows of one ``fit`` (without the column). Rows without a ``fit`` column are the only
    curves there are: all of them for ``crossfit``, none for ``in_sample``."""
    if fit not in FITS:
        raise ValueError(f"fit {fit!r} is none of {list(FITS)}")
    df = pd.DataFrame(rows)
    if "fit" not in df:
        return df if fit == CROSSFIT else df.iloc[0:0]
    if df["fit"].isna().any():
        raise ValueError("some pruning rows have a `fit` and some do not; rerun the pruning rule")
    return df[df["fit"] == fit].drop(columns="fit").reset_index(drop=True)


def accuracy_auc(rows: pd.DataFrame | Sequence[Mapping], fit: str = CROSSFIT) -> pd.DataFrame:
    """Per order of the curves of ``fit`` (:func:`curves_of_fit`): ``order, kind, auc`` =
    trapezoid area under accuracy vs removed fraction in [0, 1] (1 would be a model at accuracy 1
    until every head is gone), in first-seen order."""
    df = curves_of_fit(rows, fit)
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
    """What ``stats.json`` holds under ``pruning``, from the cross-fitted curves: the AUC of each
    score order and of the reverse order, and the random orders' mean, sd (ddof=1), min, max and
    count; with in-sample rows also ``in_sample_auc``, each order's in-sample AUC (the random
    orders' mean as ``random``)."""
    aucs = accuracy_auc(rows)
    rand = aucs.loc[aucs["kind"] == "random", "auc"].to_numpy(float)
    named = aucs[aucs["kind"] != "random"]
    out = {
        "auc": {r.order: r.auc for r in named.itertuples()},
        "random": {
            "n": int(rand.size),
            "mean": float(rand.mean()) if rand.size else None,
            "sd": float(rand.std(ddof=1)) if rand.size > 1 else None,
            "min": float(rand.min()) if rand.size else None,
            "max": float(rand.max()) if rand.size else None,
        },
    }
    inside = _named_and_random_auc(rows, IN_SAMPLE)
    if inside:
        out["in_sample_auc"] = inside
    return out


def _named_and_random_auc(rows: pd.DataFrame | Sequence[Mapping], fit: str) -> dict[str, float]:
    """{order: AUC} of the curves of ``fit``, the random orders as one ``random`` entry (their
    mean AUC); empty without such curves."""
    aucs = accuracy_auc(rows, fit)
    out = {r.order: float(r.auc) for r in aucs[aucs["kind"] != "random"].itertuples()}
    rand = aucs.loc[aucs["kind"] == "random", "auc"]
    if len(rand):
        out["random"] = float(rand.mean())
    return out


# --------------------------------------------------------------------------- across seeds


def _seed_curves(rows: pd.DataFrame | Sequence[Mapping]) -> pd.DataFrame:
    """``order, kind, fraction, acc, loss`` of one seed's cross-fitted curves with its random
    orders averaged into one curve named ``random`` (the seed's random baseline)."""
    df = curves_of_fit(rows)[["order", "kind", "fraction", "acc", "loss"]]
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
    """Per order of the cross-fitted curves (random orders: each seed's mean random AUC):
    ``mean, sd`` (ddof=1; None for one seed) and ``per_seed`` {seed: auc} of the area under the
    accuracy curve; where the seeds have in-sample curves too, ``in_sample_mean``,
    ``in_sample_sd`` and ``in_sample_per_seed``, the same for those (for comparison)."""
    out = {}
    for fit, prefix in ((CROSSFIT, ""), (IN_SAMPLE, "in_sample_")):
        per_order: dict[str, dict[int, float]] = {}
        for seed, rows in curves_by_seed.items():
            for order, auc in _named_and_random_auc(rows, fit).items():
                per_order.setdefault(order, {})[int(seed)] = auc
        for order, by_seed in per_order.items():
            if fit == IN_SAMPLE and order not in out:  # only in-sample: nothing to compare
                continue
            v = np.array(list(by_seed.values()))
            out.setdefault(order, {}).update(
                {
                    f"{prefix}mean": float(v.mean()),
                    f"{prefix}sd": float(v.std(ddof=1)) if v.size > 1 else None,
                    f"{prefix}per_seed": {str(s): a for s, a in by_seed.items()},
                }
            )
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
