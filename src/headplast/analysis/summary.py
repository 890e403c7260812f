"""Summaries across seeds (per task) and across tasks.

- :func:`seed_mean`: per-head mean and sd of every measure over seeds (``heads_mean.csv``).
- :func:`rank_stability`: how reproducible each head ranking is from seed to seed.
- :func:`pair_stats_across_seeds`: each pair's statistics pooled over seeds with their interval
  (correlations on Fisher's z, :func:`fisher_z_pool`).
- :func:`case_counts`: in how many seeds each head is a counter-example.
- :func:`compare_tasks`: do two tasks rank the heads alike (e.g. MNLI vs RTE importance)?
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from headplast.analysis.correlation import spearman
from headplast.analysis.head_permutation import fisher_z, pooled_permutation_test
from headplast.analysis.reliability import pair_ceiling, spearman_brown
from headplast.analysis.seeds import no_usable_seed, seeds_to_summarise
from headplast.analysis.statistics import read_heads, topk_overlap, validate_heads
from headplast.io import ArtifactError, finite_or_none, read_csv_table, read_json
from headplast.measure.heads import KV_GROUP

KEY = ["layer", "head"]

#: Measures whose head rankings are summarised by default.
DEFAULT_MEASURES: tuple[str, ...] = (
    "I_pre",
    "I_post",
    "G",
    "F",
    "Ppred",
    "U",
    "Urel",
    "A_js",
    "C_rel",
)

#: The label-free importances, summarised too where heads.csv has them.
LABEL_FREE_MEASURES: tuple[str, ...] = ("I_kl_pre", "I_kl_post")

#: The counter-example sets of ``cases.json``.
CASE_SETS: tuple[str, ...] = ("important_but_static", "plastic_but_unimportant")


def _measure_columns(df: pd.DataFrame) -> list[str]:
    """Numeric columns other than (layer, head) and the key/value group (an identifier), in
    file order."""
    return [
        c for c in df.columns if c not in (*KEY, KV_GROUP) and pd.api.types.is_numeric_dtype(df[c])
    ]


def _check_same_heads(heads_by_seed: Mapping[int, pd.DataFrame]) -> None:
    if not heads_by_seed:
        raise ValueError("no seeds given")
    ref_seed, ref = next(iter(heads_by_seed.items()))
    ref_keys = set(map(tuple, ref[KEY].to_numpy().tolist()))
    for seed, df in heads_by_seed.items():
        keys = set(map(tuple, df[KEY].to_numpy().tolist()))
        if keys != ref_keys or len(df) != len(ref):
            raise ArtifactError(
                f"seed {seed}: its heads differ from those of seed {ref_seed} "
                f"({len(df)} vs {len(ref)} rows); all seeds must come from the same model"
            )


# --------------------------------------------------------------------------- across seeds


def seed_mean(heads_by_seed: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Per-head mean and sample sd (ddof=1) over seeds of every numeric measure.

    Columns: ``layer, head, n_seeds``, then ``<m>_mean, <m>_sd`` for each measure ``m`` (the
    numeric columns the seeds share, in the order of the first seed). With one seed the sd is NaN
    (empty in the CSV). Rows sorted by (layer, head).
    """
    frames = {s: validate_heads(df, f"seed {s}", required=KEY) for s, df in heads_by_seed.items()}
    _check_same_heads(frames)
    first = next(iter(frames.values()))
    measures = [c for c in _measure_columns(first) if all(c in f.columns for f in frames.values())]
    long = pd.concat([f[KEY + measures] for f in frames.values()], ignore_index=True)
    grouped = long.groupby(KEY, sort=True)[measures]
    mean, sd = grouped.mean(), grouped.std(ddof=1)
    out = pd.DataFrame(index=mean.index)
    out["n_seeds"] = long.groupby(KEY, sort=True).size()
    for m in measures:
        out[f"{m}_mean"] = mean[m]
        out[f"{m}_sd"] = sd[m]
    return out.reset_index()


def rank_stability(
    heads_by_seed: Mapping[int, pd.DataFrame], measures: Sequence[str] = DEFAULT_MEASURES
) -> dict[str, Any]:
    """Seed-to-seed stability of each head ranking.

    For every measure and every pair of seeds (a < b in the given order), Spearman rho between the
    two seeds' values over the same heads (aligned on (layer, head)). Per measure: ``mean, min, max,
    n_pairs`` and ``pairs = [{seed_a, seed_b, rho}, ...]``; ``mean`` is the seed-to-seed reliability
    of one seed's ranking (docs/methods.md, "Reliability and noise ceilings") and
    ``reliability_of_seed_mean`` its Spearman-Brown step-up to the mean over all seeds. With one
    seed there are no pairs and the summaries are ``None``. Undefined rhos (a constant column) are
    ``None`` and left out of the summaries.
    """
    frames = {
        s: validate_heads(df, f"seed {s}", required=(*KEY, *measures))
        for s, df in heads_by_seed.items()
    }
    _check_same_heads(frames)
    indexed = {s: f.set_index(KEY).sort_index() for s, f in frames.items()}
    out: dict[str, Any] = {}
    for m in measures:
        pairs, values = [], []
        for a, b in itertools.combinations(indexed, 2):
            xa = indexed[a][m]
            xb = indexed[b][m].reindex(xa.index)
            rho = spearman(xa.to_numpy(), xb.to_numpy()).rho
            pairs.append({"seed_a": int(a), "seed_b": int(b), "rho": finite_or_none(rho)})
            if math.isfinite(rho):
                values.append(rho)
        mean = float(np.mean(values)) if values else None
        out[m] = {
            "mean": mean,
            "min": float(np.min(values)) if values else None,
            "max": float(np.max(values)) if values else None,
            "n_pairs": len(pairs),
            "pairs": pairs,
            # seed-to-seed reliability of one seed's ranking is `mean`; of the seed mean:
            "reliability_of_seed_mean": (
                spearman_brown(mean, len(indexed)) if mean is not None else None
            ),
        }
    return out


def mean_t_interval(values: Sequence[float | None], level: float = 0.95) -> dict[str, Any]:
    """mean, sd (ddof=1), and the t-interval for the mean over seeds of the non-null values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    n = v.size
    mean = float(v.mean()) if n else None
    sd = float(v.std(ddof=1)) if n > 1 else None
    ci: list[float | None] = [None, None]
    if n > 1:
        half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
        ci = [mean - half, mean + half]
    return {"mean": mean, "sd": sd, "ci": ci, "n": int(n)}


#: Fewer seeds than this give a pooled correlation whose interval says little (with 2 seeds the
#: t quantile of one degree of freedom is 12.7): reported, and marked not informative.
MIN_INFORMATIVE_SEEDS = 3
#: Correlations pooled on Fisher's z; the other statistics of a pair by the plain t-interval.
FISHER_Z_STATS: tuple[str, ...] = ("rho", "rho_layer", "noise_ceiling")


def fisher_z_pool(
    values: Sequence[float | None], level: float = 0.95, n_heads: int | None = None
) -> dict[str, Any]:
    """Correlations of several seeds pooled on Fisher's z (docs/methods.md, "Across seeds").

    z_s = arctanh(rho_s), rho_s clipped to +-(1 - 1/n_heads)
    (:func:`headplast.analysis.head_permutation.fisher_clip`: a seed at |rho| = 1 counts as a
    correlation as strong as n_heads heads can show, not as z = 17.6); the pooled rho is
    tanh(mean z), the interval tanh(mean z +- t_(n-1) * sd_z / sqrt(n)) at ``level``: the point
    and both bounds lie in [-1, 1], the point inside its interval. ``sd`` is the spread of the
    raw rho over seeds (ddof=1). Null or non-finite values are left out; ``n`` counts the rest.
    ``informative`` is False below :data:`MIN_INFORMATIVE_SEEDS` seeds (the interval is still
    given). With one seed the interval is [None, None].
    """
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    n = v.size
    out: dict[str, Any] = {
        "mean": None,
        "sd": float(v.std(ddof=1)) if n > 1 else None,
        "ci": [None, None],
        "n": int(n),
        "informative": bool(n >= MIN_INFORMATIVE_SEEDS),
        "method": "fisher_z",
    }
    if n == 0:
        return out
    z = fisher_z(v, n_heads)
    out["mean"] = float(np.tanh(z.mean()))
    if n > 1:
        half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * float(z.std(ddof=1)) / math.sqrt(n)
        out["ci"] = [float(np.tanh(z.mean() - half)), float(np.tanh(z.mean() + half))]
    return out


def pair_stats_across_seeds(
    stats_by_seed: Mapping[int, Mapping[str, Any]],
    level: float = 0.95,
    stability: Mapping[str, Any] | None = None,
    heads_by_seed: Mapping[int, pd.DataFrame] | None = None,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Each pair's statistics over seeds, from the per-seed ``stats.json`` contents.

    Per pair (keyed ``"x~y"`` as in ``stats.json``): ``rho`` and ``rho_layer`` each as
    ``{mean, sd, ci, n, informative, method, values}``, pooled on Fisher's z
    (:func:`fisher_z_pool`: ``mean`` and ``ci`` in [-1, 1]; ``informative`` False below three
    seeds), ``values`` mapping seed -> per-seed value; ``overlap`` as ``{mean, sd, ci, n, values,
    k, expected}`` with the ``level`` t-interval of the mean, ``mean +- t_{n-1} * sd / sqrt(n)``
    (``expected`` the chance overlap ``k*k/n``); and ``n_seeds``. Pairs are those of the first
    seed; a seed lacking a pair raises :class:`ArtifactError`.

    Noise ceilings, labelled as such and beside the raw rho: where the per-seed stats carry them,
    ``noise_ceiling`` and ``rho_disattenuated`` (split-half, per seed) as spreads like ``rho``;
    with ``stability`` (:func:`rank_stability`), ``seed_to_seed = {r_xx, r_yy, noise_ceiling,
    rho_mean_disattenuated}``: the ceiling from the seed-to-seed reliabilities and the mean rho
    over seeds divided by it.

    With ``heads_by_seed`` (the seeds' heads.csv tables), ``rho`` and ``rho_layer`` each carry
    ``head_test`` (:func:`head_level_tests`): the head-level permutation test of the pooled rho
    (head labels shuffled the same way in every seed; for ``rho_layer`` within layers), ``{rho,
    p, n_permutations, n_seeds, method}``. The pooled correlations clip Fisher's z at
    1 - 1/n_heads (``n_heads`` from the per-seed stats).

    Long mostly for this docstring, which defines every field it writes.
    """
    if not stats_by_seed:
        raise ValueError("no seeds given")
    first = next(iter(stats_by_seed.values()))
    out: dict[str, Any] = {"n_seeds": len(stats_by_seed), "ci_level": level, "pairs": {}}
    out["ci_method"] = (
        f"{', '.join(FISHER_Z_STATS)}: pooled on Fisher's z, tanh(mean z +- t_(n-1) * sd_z / "
        "sqrt(n)), not informative below "
        f"{MIN_INFORMATIVE_SEEDS} seeds; rho_disattenuated and overlap: t-interval of the mean "
        "over seeds, mean +- t_(n-1) * sd / sqrt(n)"
    )
    n_heads = first.get("n_heads")
    tests = (
        head_level_tests(heads_by_seed, list(first["pairs"]), n_permutations, seed)
        if heads_by_seed is not None
        else {}
    )
    for name, ref in first["pairs"].items():
        per_seed = {}
        for seed, st in stats_by_seed.items():
            if name not in st.get("pairs", {}):
                raise ArtifactError(f"stats of seed {seed} lack the pair {name}")
            if "topk" not in st["pairs"][name]:
                raise ArtifactError(
                    f"stats of seed {seed}: the pair {name} has no top-K overlap ('topk'); the "
                    "file was cut short or written by another tool: rerun its stats rule"
                )
            per_seed[seed] = st["pairs"][name]
        block: dict[str, Any] = {"x": ref.get("x"), "y": ref.get("y"), "n_seeds": len(per_seed)}
        for stat in ("rho", "rho_layer", "noise_ceiling", "rho_disattenuated"):
            if stat not in ref:
                continue
            vals = {s: finite_or_none(p.get(stat)) for s, p in per_seed.items()}
            pool = fisher_z_pool if stat in FISHER_Z_STATS else mean_t_interval
            kw = {"n_heads": n_heads} if stat in FISHER_Z_STATS else {}
            block[stat] = {**pool(list(vals.values()), level, **kw), "values": _str_keys(vals)}
            if (name, stat) in tests:
                block[stat]["head_test"] = tests[(name, stat)]
        if stability is not None:
            r_xx = (stability.get(block["x"]) or {}).get("mean")
            r_yy = (stability.get(block["y"]) or {}).get("mean")
            ceiling = pair_ceiling(block["rho"]["mean"], r_xx, r_yy)
            block["seed_to_seed"] = {
                "r_xx": r_xx,
                "r_yy": r_yy,
                "noise_ceiling": ceiling["noise_ceiling"],
                "rho_mean_disattenuated": ceiling["rho_disattenuated"],
            }
        ov = {s: p["topk"]["overlap"] for s, p in per_seed.items()}
        block["overlap"] = {
            **mean_t_interval(list(ov.values()), level),
            "values": _str_keys(ov),
            "k": ref["topk"]["k"],
            "expected": ref["topk"]["expected"],
        }
        out["pairs"][name] = block
    return out


def head_level_tests(
    heads_by_seed: Mapping[int, pd.DataFrame],
    pairs: Sequence[str],
    n_permutations: int = 10_000,
    seed: int = 0,
) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(pair, "rho"): test, (pair, "rho_layer"): test}`` for every ``"x~y"`` in ``pairs``
    whose columns every seed has: :func:`headplast.analysis.head_permutation.
    pooled_permutation_test` on the seeds' head tables aligned on (layer, head), unstratified for
    ``rho`` and within layers for ``rho_layer``. One shuffle matrix (``seed``) serves every pair
    and every seed."""
    frames = {s: validate_heads(df, f"seed {s}", required=KEY) for s, df in heads_by_seed.items()}
    _check_same_heads(frames)
    layer = next(iter(frames.values()))["layer"].to_numpy()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name in pairs:
        x, y = name.split("~")
        if not all(x in f.columns and y in f.columns for f in frames.values()):
            continue
        xs = np.stack([f[x].to_numpy(float) for f in frames.values()])
        ys = np.stack([f[y].to_numpy(float) for f in frames.values()])
        for stat, stratified in (("rho", False), ("rho_layer", True)):
            out[(name, stat)] = pooled_permutation_test(
                xs, ys, layer, stratified, n_permutations, seed
            )
    return out


def _str_keys(d: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in d.items()}


def case_counts(cases_by_seed: Mapping[int, Mapping[str, Any]]) -> pd.DataFrame:
    """In how many seeds each head is in each counter-example set.

    Returns ``DataFrame(layer, head, set, n_seeds, seeds)`` (``seeds`` the seeds, ``;``-joined),
    one row per (head, set) seen at least once, sorted by set, then n_seeds descending, then
    (layer, head). Empty (same columns) if no seed has a counter-example.
    """
    counts: dict[tuple[int, int, str], list[int]] = {}
    for seed, cases in cases_by_seed.items():
        for set_name in CASE_SETS:
            if set_name not in cases:
                raise ArtifactError(f"cases of seed {seed} lack the set {set_name}")
            for h in cases[set_name]["heads"]:
                counts.setdefault((int(h["layer"]), int(h["head"]), set_name), []).append(seed)
    rows = [
        {
            "layer": lay,
            "head": hd,
            "set": s,
            "n_seeds": len(seeds),
            "seeds": ";".join(str(x) for x in seeds),
        }
        for (lay, hd, s), seeds in counts.items()
    ]
    df = pd.DataFrame(rows, columns=["layer", "head", "set", "n_seeds", "seeds"])
    if df.empty:
        return df.astype({"layer": int, "head": int, "n_seeds": int})
    df = df.sort_values(["set", "n_seeds", "layer", "head"], ascending=[True, False, True, True])
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- across tasks

COMPARE_COLUMNS = [
    "task_a",
    "task_b",
    "measure",
    "n_heads",
    "rho",
    "p",
    "overlap",
    "k",
    "expected",
    "p_overlap",
]


def read_heads_mean(
    path: str | os.PathLike, measures: Sequence[str] = (), allow_empty: bool = False
) -> pd.DataFrame:
    """Read a ``heads_mean.csv`` (from :func:`seed_mean`); checks ``<m>_mean`` columns exist.
    ``allow_empty``: a table with its header and no rows (a run with no usable seed) is returned
    as it is instead of refused."""
    df = read_csv_table(path)
    if allow_empty and df.empty and set(KEY) <= set(df.columns):
        return df
    return validate_heads(df, path, required=(*KEY, *(f"{m}_mean" for m in measures)))


def compare_tasks(
    seed_means_by_task: Mapping[str, pd.DataFrame],
    measures: Sequence[str] = ("I_pre", "I_post", "G", "Urel"),
    top_k: int = 20,
) -> pd.DataFrame:
    """Do tasks rank the heads alike? For every pair of tasks and every measure ``m``: Spearman
    rho (and its asymptotic p, ``scipy.stats.spearmanr``) between the tasks' seed-mean values
    ``<m>_mean`` over the heads both share, and the top-``top_k`` overlap with its chance level
    and hypergeometric p (:func:`headplast.analysis.statistics.topk_overlap`).

    Columns: ``task_a, task_b, measure, n_heads, rho, p, overlap, k, expected, p_overlap``. With a
    single task the table is empty (same columns).
    """
    rows = []
    tasks = list(seed_means_by_task)
    for a, b in itertools.combinations(tasks, 2):
        da = seed_means_by_task[a].set_index(KEY)
        db = seed_means_by_task[b].set_index(KEY)
        common = da.index.intersection(db.index).sort_values()
        if len(common) < 3:
            raise ArtifactError(f"tasks {a} and {b} share {len(common)} heads; need at least 3")
        for m in measures:
            col = f"{m}_mean"
            for t, d in ((a, da), (b, db)):
                if col not in d.columns:
                    raise ArtifactError(f"task {t}: no column {col}")
            x = da.loc[common, col].to_numpy(float)
            y = db.loc[common, col].to_numpy(float)
            rho, p = spearman(x, y)
            ov = topk_overlap(x, y, min(int(top_k), len(common)))
            rows.append(
                {
                    "task_a": a,
                    "task_b": b,
                    "measure": m,
                    "n_heads": len(common),
                    "rho": rho,
                    "p": p,
                    "overlap": ov["overlap"],
                    "k": ov["k"],
                    "expected": ov["expected"],
                    "p_overlap": ov["p"],
                }
            )
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def compare_runs(
    seed_means_by_run: Mapping[tuple[str, str, str], pd.DataFrame],
    measures: Sequence[str] = ("I_pre", "I_post", "G", "Urel"),
    top_k: int = 20,
) -> pd.DataFrame:
    """:func:`compare_tasks` within each (model, start): runs are keyed ``(model, task, start)``;
    the tasks of one model and start are compared (different models have different head grids).

    Columns: ``model, start`` then those of :func:`compare_tasks`.
    """
    groups: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for (model, task, start), df in seed_means_by_run.items():
        groups.setdefault((model, start), {})[task] = df
    frames = [
        compare_tasks(by_task, measures, top_k).assign(model=model, start=start)
        for (model, start), by_task in groups.items()
    ]
    cols = ["model", "start", *COMPARE_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


# --------------------------------------------------------------------------- one task's seeds


def _no_usable_seed_summary(degenerate: Sequence[int]) -> dict[str, Any]:
    """The summaries of a run whose every seed is degenerate: empty tables, and
    ``pair_stats.no_usable_seed`` saying so with the seeds named."""
    return {
        "heads_mean": pd.DataFrame(columns=[*KEY, "n_seeds"]),
        "stability": {},
        "pair_stats": {
            "n_seeds": 0,
            "pairs": {},
            "seeds": [],
            "degenerate_seeds": list(degenerate),
            "degenerate_excluded": list(degenerate),
            "no_usable_seed": no_usable_seed(degenerate),
        },
        "case_counts": case_counts({}),
    }


def summarise_seeds(
    seeds: Sequence[int],
    heads_files: Sequence[str | os.PathLike],
    stats_files: Sequence[str | os.PathLike],
    cases_files: Sequence[str | os.PathLike],
    run_config_files: Sequence[str | os.PathLike] = (),
    keep_degenerate: bool = False,
    n_permutations: int = 10_000,
    perm_seed: int = 0,
) -> dict[str, Any]:
    """Everything ``summary/`` holds for one task: ``heads_mean`` (frame), ``stability``,
    ``pair_stats`` (dicts) and ``case_counts`` (frame), over the healthy seeds.

    Seeds whose ``run_config.json`` flags them degenerate (:mod:`headplast.train.degenerate`) are
    left out unless ``keep_degenerate`` (:mod:`headplast.analysis.seeds`); ``pair_stats`` names
    them (``degenerate_seeds``) and the seeds summarised (``seeds``). When every seed is
    degenerate the tables are empty and ``pair_stats["no_usable_seed"]`` says so. Without run
    configs every seed counts. The label-free importances are summarised where every seed has
    them. ``n_permutations`` and ``perm_seed`` (config ``analysis.n_permutations``,
    ``analysis.seed``) drive the head-level tests of the pooled rho (:func:`head_level_tests`).
    """
    seeds = [int(s) for s in seeds]
    for name, files in (("heads", heads_files), ("stats", stats_files), ("cases", cases_files)):
        if len(files) != len(seeds):
            raise ArtifactError(f"{len(files)} {name} files for {len(seeds)} seeds {seeds}")
    if run_config_files and len(run_config_files) != len(seeds):
        raise ArtifactError(f"{len(run_config_files)} run_config files for seeds {seeds}")
    run_configs = {s: read_json(f) for s, f in zip(seeds, run_config_files, strict=False)}
    kept, degenerate = seeds_to_summarise(seeds, run_configs, keep_degenerate)
    if not kept:
        return _no_usable_seed_summary(degenerate)

    def load(files, reader):
        return {s: reader(f) for s, f in zip(seeds, files, strict=True) if s in kept}

    heads_by_seed = load(heads_files, read_heads)
    columns = set.intersection(*(set(df.columns) for df in heads_by_seed.values()))
    measures = [m for m in (*DEFAULT_MEASURES, *LABEL_FREE_MEASURES) if m in columns]
    stability = rank_stability(heads_by_seed, measures)
    pair_stats = pair_stats_across_seeds(
        load(stats_files, read_json),
        stability=stability,
        heads_by_seed=heads_by_seed,
        n_permutations=n_permutations,
        seed=perm_seed,
    )
    pair_stats.update(
        {
            "seeds": kept,
            "degenerate_seeds": degenerate,
            "degenerate_excluded": [s for s in degenerate if s not in kept],
        }
    )
    return {
        "heads_mean": seed_mean(heads_by_seed),
        "stability": stability,
        "pair_stats": pair_stats,
        "case_counts": case_counts(load(cases_files, read_json)),
    }
