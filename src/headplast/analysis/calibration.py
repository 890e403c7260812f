"""Calibration of the findings' sentence rules against simulated truths (docs/methods.md,
"Calibration").

Each truth simulates what the workflow would hold for one (model, task, start): per-seed head
tables (or per-example values, or freeze and pruning effects) with the head x layer x seed
structure of the data, and a known answer. The project's own code then runs on them as the
workflow runs it: ``pair_statistics`` per seed, ``pair_stats_across_seeds`` with the head-level
tests, ``run_findings`` (pairs), ``split_half`` / ``cross_half`` (reliabilities and ceilings),
``freeze_table`` + ``freeze_rows`` (freeze), ``pruning_rows`` (pruning), ``intervals_disjoint``
on two starts' findings rows (the starts comparison) and ``compare_methods`` on two methods'
head tables and summaries (full fine-tuning against LoRA). Each rule's rate of
firing is counted over ``n_runs`` simulated data sets with its Clopper-Pearson 95 % interval:
under a null it is a false-positive rate (to be at most the rule's level), under an effect its
power.

"Before" is the same simulation judged by the rules of commit a7dfd25 (today's rules when issue
27 was filed), re-implemented here in :func:`legacy_association` etc. from that commit's
``findings.py``, so that the table gives both without checking out old code.

``python -m headplast.analysis.calibration`` (``make calibrate``) prints the table.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from headplast.analysis.correlation import spearman
from headplast.analysis.findings import (
    association_call,
    freeze_rows,
    intervals_disjoint,
    pruning_rows,
    run_findings,
)
from headplast.analysis.freeze_effects import freeze_table
from headplast.analysis.methods_comparison import ACROSS, compare_methods
from headplast.analysis.reliability import cross_half, disattenuated, mean_stat, split_half
from headplast.analysis.statistics import pair_statistics
from headplast.analysis.summary import pair_stats_across_seeds


@dataclass(frozen=True)
class Settings:
    """The size of the simulation. Defaults: the reference model (12 layers x 12 heads), 5 seeds,
    the RTE-sized eval subset of the issue (277 examples), 10 random freeze draws and pruning
    orders (the config defaults), 3 freeze draws for today's rules (the config default then)."""

    n_runs: int = 400
    n_seeds: int = 5
    n_layers: int = 12
    n_heads: int = 12
    n_examples: int = 277
    n_permutations: int = 999
    n_draws: int = 10
    n_draws_before: int = 3
    split_half_repeats: int = 20
    n_null: int = 200
    level: float = 0.05
    seed: int = 0

    @property
    def layer(self) -> np.ndarray:
        """Each head's layer, heads sorted by (layer, head)."""
        return np.repeat(np.arange(self.n_layers), self.n_heads)


@dataclass
class Rate:
    """How often a rule fired: ``k`` of ``n`` runs, with the Clopper-Pearson 95 % interval."""

    k: int = 0
    n: int = 0

    def add(self, fired: bool) -> None:
        self.k += bool(fired)
        self.n += 1

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        if not self.n:
            return (math.nan, math.nan)
        ci = sps.binomtest(self.k, self.n).proportion_ci(0.95)
        return (float(ci.low), float(ci.high))


# --------------------------------------------------------------------------- simulated heads


def _heads_table(s: Settings, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": s.layer,
            "head": np.tile(np.arange(s.n_heads), s.n_layers),
            "I_pre": x,
            "Urel": y,
        }
    )


def simulate_pair(truth: str, s: Settings, rng: np.random.Generator) -> dict[int, pd.DataFrame]:
    """Per-seed head tables (``layer, head, I_pre, Urel``) under a named truth:

    - ``independent``: I_pre and Urel independent across heads, stable across seeds (seed
      noise sd 0.2 against head sd 1): the seeds share the encoder and the examples;
    - ``depth_only``: both grow with depth (layer effect sd 1.5 each), independent within
      layers;
    - ``within_layer``: a true within-layer rho of 0.3, no depth effect, seed noise sd 0.3.
    """
    n = s.n_layers * s.n_heads
    depth = (s.layer - s.layer.mean()) / s.layer.std()
    if truth == "independent":
        xt, yt, noise = rng.normal(size=n), rng.normal(size=n), 0.2
    elif truth == "depth_only":
        xt = 1.5 * depth + rng.normal(size=n)
        yt = 1.5 * depth + rng.normal(size=n)
        noise = 0.2
    elif truth == "within_layer":
        xt = rng.normal(size=n)
        yt = 0.3 * xt + math.sqrt(1 - 0.09) * rng.normal(size=n)
        noise = 0.3
    else:
        raise ValueError(f"unknown pair truth {truth!r}: use independent, depth_only, within_layer")
    return {
        seed: _heads_table(s, xt + noise * rng.normal(size=n), yt + noise * rng.normal(size=n))
        for seed in range(1, s.n_seeds + 1)
    }


def _pair_stats(
    heads: Mapping[int, pd.DataFrame], run: int, n_permutations: int
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The workflow's summaries of one simulated (model, task, start): the pooled
    ``pair_stats.json`` content with its head-level tests, and each seed's ``stats.json``."""
    stats = {
        seed: pair_statistics(df, [("I_pre", "Urel")], 10, 99, 20, seed)
        for seed, df in heads.items()
    }
    ps = pair_stats_across_seeds(
        stats, heads_by_seed=heads, n_permutations=n_permutations, seed=run
    )
    ps.update({"seeds": list(heads), "degenerate_seeds": [], "degenerate_excluded": []})
    return ps, stats


def _run_findings(
    heads: Mapping[int, pd.DataFrame], s: Settings, run: int, n_permutations: int
) -> dict[str, Any]:
    """The workflow's path for one simulated (model, task, start): per-seed ``stats.json``
    content, the pooled ``pair_stats.json`` with its head-level tests, the findings block."""
    ps, stats = _pair_stats(heads, run, n_permutations)
    return run_findings(ps, {}, stats, {})


def pair_verdicts(heads: Mapping[int, pd.DataFrame], s: Settings, run: int) -> dict[str, Any]:
    """The findings' I_pre~Urel row and sentence of one simulated run, judged."""
    f = _run_findings(heads, s, run, s.n_permutations)
    row = f["pairs"][0]
    first = f["sentences"]["pairs"][0]
    raw, _ = association_call(row["ci_low"], row["ci_high"], row["p_head"], s.level)
    p_lay = row["p_head_layer_adj"] if row["p_head_layer_adj"] is not None else row["p_head_layer"]
    lay, _ = association_call(row["layer_ci_low"], row["layer_ci_high"], p_lay, s.level)
    return {
        "raw": raw,
        "layer": lay,
        "raw_without_depth_words": raw and "carried by depth" not in first,
        "before_raw": legacy_association(row),
    }


def legacy_association(row: Mapping[str, Any]) -> bool:
    """Commit a7dfd25's pair rule: an association whenever the interval over seeds is
    informative (3 seeds) and excludes 0; no head-level test, no layer-controlled verdict."""
    lo, hi = row["ci_low"], row["ci_high"]
    return bool(row["informative"] and lo is not None and not lo <= 0 <= hi)


def simulate_starts(
    rhos: tuple[float, float], s: Settings, rng: np.random.Generator
) -> tuple[dict[int, pd.DataFrame], dict[int, pd.DataFrame]]:
    """Two starts' per-seed head tables on the same heads: one I_pre truth per head, shared by the
    starts (the encoder is the same); each start's Urel truth ``rho * x + sqrt(1 - rho^2) * e``
    with one ``e`` per head for both (so equal rhos are the same truth); seed noise sd 0.3,
    independent between starts and seeds."""
    n = s.n_layers * s.n_heads
    x, e = rng.normal(size=n), rng.normal(size=n)
    out = []
    for rho in rhos:
        y = rho * x + math.sqrt(1 - rho**2) * e
        out.append(
            {
                seed: _heads_table(s, x + 0.3 * rng.normal(size=n), y + 0.3 * rng.normal(size=n))
                for seed in range(1, s.n_seeds + 1)
            }
        )
    return out[0], out[1]


def starts_verdicts(
    rhos: tuple[float, float], s: Settings, rng: np.random.Generator, run: int
) -> dict[str, bool]:
    """The starts comparison's rule (``starts_sentences``: disjoint 95 % seed intervals) on the
    I_pre~Urel rows of two simulated starts. The head-level test plays no part in it (a small
    ``n_permutations`` keeps the run cheap)."""
    a, b = (_run_findings(h, s, run, 19)["pairs"][0] for h in simulate_starts(rhos, s, rng))
    return {"after": bool(intervals_disjoint(a, b))}


def simulate_methods(
    rho: float, s: Settings, rng: np.random.Generator
) -> tuple[dict[int, pd.DataFrame], dict[int, pd.DataFrame]]:
    """Full fine-tuning's and LoRA's per-seed head tables on the same heads: one I_pre truth
    per head, shared (theta0 is the same), independent of both methods' Urel; LoRA's Urel truth
    ``rho * f + sqrt(1 - rho^2) * e`` against full fine-tuning's ``f`` across heads (``rho`` 0:
    the methods move unrelated heads); seed noise sd 0.2 against a head sd of 1, independent
    between methods and seeds, so each method's ranking is seed-stable (the seeds share theta0
    and the examples) and the seed interval alone would call a rho of 0."""
    n = s.n_layers * s.n_heads
    x, f, e = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    out = []
    for y in (f, rho * f + math.sqrt(1 - rho**2) * e):
        out.append(
            {
                seed: _heads_table(s, x + 0.2 * rng.normal(size=n), y + 0.2 * rng.normal(size=n))
                for seed in range(1, s.n_seeds + 1)
            }
        )
    return out[0], out[1]


def methods_verdicts(
    rho: float, s: Settings, rng: np.random.Generator, run: int
) -> dict[str, bool]:
    """The methods comparison's rule on one simulated run: ``compare_methods`` (the head-level
    test of the pooled full~lora rho, Holm-adjusted with LoRA's I_pre~Urel test, and the seed
    interval) as the ``compare_methods`` rule runs it, on both methods' tables and summaries;
    ``seed_interval``: the seed interval alone excludes 0 (no head-level test)."""
    full, lora = simulate_methods(rho, s, rng)
    ps_full, ps_lora = (_pair_stats(h, run, s.n_permutations)[0] for h in (full, lora))
    kwargs = {
        "heads_full": full,
        "heads_lora": lora,
        "pair_stats_full": ps_full,
        "pair_stats_lora": ps_lora,
        "top_k": 10,
        "n_permutations": s.n_permutations,
        "perm_seed": run,
    }
    row = compare_methods({("m", "t", "s"): kwargs}).set_index("item").loc[ACROSS]
    return {
        "after": bool(row["called"]),
        "seed_interval": not row["rho_low"] <= 0 <= row["rho_high"],
    }


# --------------------------------------------------------------------------- reliability


def simulate_examples(
    s: Settings, rng: np.random.Generator, head_sd: float = 0.0, shared: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example values [n_examples, heads] of two measures: a head signal of sd ``head_sd``
    (independent between the two) plus per-example noise sd 1, whose correlation between the two
    measures within an example is ``shared`` (the same examples make both)."""
    n, h = s.n_examples, s.n_layers * s.n_heads
    common = rng.normal(size=(n, h))
    ex = math.sqrt(shared) * common + math.sqrt(1 - shared) * rng.normal(size=(n, h))
    ey = math.sqrt(shared) * common + math.sqrt(1 - shared) * rng.normal(size=(n, h))
    return head_sd * rng.normal(size=h) + ex, head_sd * rng.normal(size=h) + ey


def reliability_verdicts(values: np.ndarray, s: Settings, run: int) -> dict[str, bool]:
    """Whether a measure's split-half reliability is taken as information: now, above its noise
    null's 95th percentile; before, any positive reliability (a ceiling and advice were given)."""
    r = split_half(values, mean_stat, s.split_half_repeats, run, n_null=s.n_null)
    return {
        "after": bool(r["distinguishable_from_noise"]),
        "before": r["reliability"] is not None and r["reliability"] > 0,
    }


def shared_example_disattenuated(x: np.ndarray, y: np.ndarray, s: Settings, run: int) -> dict:
    """The disattenuated rho of a pair whose two measures come from the same examples: before,
    the full-subset rho over sqrt(r_xx r_yy); now, the cross-half estimate."""
    rx = split_half(x, mean_stat, s.split_half_repeats, run, n_null=0)["reliability"]
    ry = split_half(y, mean_stat, s.split_half_repeats, run, n_null=0)["reliability"]
    rho = spearman(x.mean(0), y.mean(0)).rho
    before = None
    if rx and ry and rx > 0 and ry > 0:
        before = disattenuated(rho, math.sqrt(rx * ry))
    after = cross_half(x, y, mean_stat, mean_stat, s.split_half_repeats, run)["rho_disattenuated"]
    return {"before": before, "after": after}


# --------------------------------------------------------------------------- freeze and pruning


def simulate_effects(
    s: Settings, rng: np.random.Generator, n_draws: int, shift: float, seed_sd: float, sd: float
) -> tuple[dict[int, float], list[dict[int, float]]]:
    """Per-seed values of a score's set or order and of ``n_draws`` random ones: a seed effect
    shared by all (sd ``seed_sd``: the seed's fine-tune), a draw's own noise (sd ``sd``), and the
    score's ``shift`` from random (0: the score's set behaves like one more random draw)."""
    seeds = range(1, s.n_seeds + 1)
    seed_eff = {k: seed_sd * rng.normal() for k in seeds}
    score = {k: seed_eff[k] + shift + sd * rng.normal() for k in seeds}
    draws = [{k: seed_eff[k] + sd * rng.normal() for k in seeds} for _ in range(n_draws)]
    return score, draws


def _freeze_csv(score: Mapping[int, float], draws: list[Mapping[int, float]]) -> pd.DataFrame:
    """``freeze.csv`` as the workflow writes it (``freeze_table``) from per-seed changes."""

    def eff(v: float) -> dict[str, float]:
        return {"delta_acc": v, "frozen_Urel_max": 0.0, "other_U_ratio": 1.0}

    effects = {"Urel": {k: eff(v) for k, v in score.items()}}
    for i, d in enumerate(draws):
        effects[f"random_{i}"] = {k: eff(v) for k, v in d.items()}
    return freeze_table(effects)


def freeze_verdicts(shift: float, s: Settings, rng: np.random.Generator) -> dict[str, bool]:
    """Whether a freeze verdict (below or above random) is given: now (``freeze_rows``, with
    ``n_draws`` random sets) and before (a7dfd25: the score's 95 % interval wholly outside the
    range of ``n_draws_before`` random sets' means)."""
    score, draws = simulate_effects(s, rng, s.n_draws, shift, 0.02, 0.01)
    after = freeze_rows(_freeze_csv(score, draws))[0]["position"] in ("below", "above")
    old = freeze_table_before(_freeze_csv(score, draws[: s.n_draws_before]))
    return {"after": after, "before": old}


def freeze_table_before(table: pd.DataFrame) -> bool:
    """a7dfd25's page rule for freezing: the score order's interval wholly below or above the
    random band (smallest to largest random draw mean); no minimum of seeds or draws."""
    row = table[table["kind"] == "score"].iloc[0]
    lo, hi = row["ci_low"], row["ci_high"]
    b_lo, b_hi = row["random_band_low"], row["random_band_high"]
    if any(v is None or not math.isfinite(float(v)) for v in (lo, hi, b_lo, b_hi)):
        return False
    return bool(hi < b_lo or lo > b_hi)


def pruning_verdicts(shift: float, s: Settings, rng: np.random.Generator) -> dict[str, bool]:
    """Whether a pruning verdict (above or below random) is given: now (``pruning_rows``) and
    before (a7dfd25: the seed-mean area outside the smallest-to-largest single-draw area of any
    seed). Seeds differ far more than orders (sd 0.05 against 0.005), as in the data."""
    score, draws = simulate_effects(s, rng, s.n_draws, shift, 0.05, 0.005)
    auc = {
        "I_pre": {"mean": float(np.mean(list(score.values()))), "per_seed": _keys(score)},
        "random_orders": {f"random_{i}": {"per_seed": _keys(d)} for i, d in enumerate(draws)},
    }
    after = pruning_rows(auc)[0]["position"] in ("above", "below")
    singles = [v for d in draws for v in d.values()]
    mean = auc["I_pre"]["mean"]
    return {"after": after, "before": bool(mean > max(singles) or mean < min(singles))}


def _keys(d: Mapping[int, float]) -> dict[str, float]:
    return {str(k): float(v) for k, v in d.items()}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """One line of the table: a truth, a rule, whether the truth is a null for that rule (its
    rate is then a false-positive rate, to be at most ``level``) and how each run is judged."""

    truth: str
    rule: str
    null: bool
    judge: Callable[[Settings, np.random.Generator, int], dict[str, Any]]
    before_key: str | None = "before"  # None: no such rule before; "after": the rule unchanged
    after_key: str = "after"
    has_level: bool = True  # False: a value rule with no nominal level (a bias, not a test)


def _pair_case(truth: str) -> Callable[[Settings, np.random.Generator, int], dict[str, Any]]:
    def judge(s: Settings, rng: np.random.Generator, run: int) -> dict[str, Any]:
        return pair_verdicts(simulate_pair(truth, s, rng), s, run)

    return judge


def cases() -> list[Case]:
    """The truths x rules of the table, in its order."""
    return [
        Case("independent, seed-stable", "association called (I_pre~Urel)", True,
             _pair_case("independent"), "before_raw", "raw"),
        Case("depth only", "association called without 'carried by depth'", True,
             _pair_case("depth_only"), "before_raw", "raw_without_depth_words"),
        Case("depth only", "within-layer association called", True,
             _pair_case("depth_only"), None, "layer"),
        Case("within-layer rho 0.3", "within-layer association called", False,
             _pair_case("within_layer"), None, "layer"),
        Case("within-layer rho 0.3", "association called (I_pre~Urel)", False,
             _pair_case("within_layer"), "before_raw", "raw"),
        Case("reliability at noise level", "reliability taken as information", True,
             lambda s, rng, run: reliability_verdicts(simulate_examples(s, rng)[0], s, run)),
        Case("reliability about 0.6", "reliability taken as information", False,
             lambda s, rng, run: reliability_verdicts(
                 simulate_examples(s, rng, head_sd=0.073)[0], s, run)),
        Case("shared-example errors, true rho 0", "disattenuated rho beyond +-0.2", True,
             lambda s, rng, run: {k: v is not None and abs(v) > 0.2 for k, v in
                                  shared_example_disattenuated(
                                      *simulate_examples(s, rng, 0.12, 0.8), s, run).items()},
             has_level=False),
        Case("freeze set like a random one", "freeze verdict (below/above)", True,
             lambda s, rng, run: freeze_verdicts(0.0, s, rng)),
        Case("freeze set costs 0.03 more", "freeze verdict (below/above)", False,
             lambda s, rng, run: freeze_verdicts(-0.03, s, rng)),
        Case("pruning order like a random one", "pruning verdict (above/below)", True,
             lambda s, rng, run: pruning_verdicts(0.0, s, rng)),
        Case("pruning order +0.02 in every seed", "pruning verdict (above/below)", False,
             lambda s, rng, run: pruning_verdicts(0.02, s, rng)),
        Case("two starts, the same truth (rho 0.3)", "starts differ on I_pre~Urel", True,
             lambda s, rng, run: starts_verdicts((0.3, 0.3), s, rng, run), "after"),
        Case("two starts, rho 0 and 0.5", "starts differ on I_pre~Urel", False,
             lambda s, rng, run: starts_verdicts((0.0, 0.5), s, rng, run), "after"),
        Case("full and LoRA move unrelated heads, seed-stable", "full~lora association called",
             True, lambda s, rng, run: methods_verdicts(0.0, s, rng, run), None),
        Case("LoRA's Urel rho 0.3 with full's", "full~lora association called", False,
             lambda s, rng, run: methods_verdicts(0.3, s, rng, run), None),
    ]  # fmt: skip


def run_case(case: Case, s: Settings) -> dict[str, Rate]:
    """``{"before": Rate, "after": Rate}`` of one case over ``s.n_runs`` simulated runs (each
    run from ``numpy.random.default_rng([s.seed, case index, run])``)."""
    index = [c.truth + c.rule for c in cases()].index(case.truth + case.rule)
    before, after = Rate(), Rate()
    for run in range(s.n_runs):
        out = case.judge(s, np.random.default_rng([s.seed, index, run]), run)
        after.add(out[case.after_key])
        if case.before_key is not None:
            before.add(out[case.before_key])
    return {"before": before, "after": after}


def calibrate(s: Settings, only: str | None = None) -> Iterator[tuple[Case, dict[str, Rate]]]:
    """Every case of :func:`cases` (those whose truth contains ``only``), with its rates."""
    for case in cases():
        if only is None or only in case.truth:
            yield case, run_case(case, s)


def _cell(r: Rate) -> str:
    if not r.n:
        return "n/a (no such rule)"
    lo, hi = r.interval
    return f"{100 * r.rate:.1f} % ({100 * lo:.1f}-{100 * hi:.1f})"


def table_lines(results: list[tuple[Case, dict[str, Rate]]], s: Settings) -> list[str]:
    """The table in Markdown: truth, rule, what the rate is, before and after."""
    lines = [
        "| truth | rule | rate is | before (a7dfd25) | after |",
        "|---|---|---|---|---|",
    ]
    for case, rates in results:
        kind = "power"
        if case.null:
            kind = (
                f"false positives (level {100 * s.level:.0f} %)"
                if case.has_level
                else ("false positives (no level: a value, not a test)")
            )
        lines.append(
            f"| {case.truth} | {case.rule} | {kind} | {_cell(rates['before'])} | "
            f"{_cell(rates['after'])} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    """``make calibrate``: print the table (and how long it took)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=Settings.n_runs, help="simulated runs per case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="only truths containing this text")
    args = ap.parse_args(argv)
    s = replace(Settings(), n_runs=args.runs, seed=args.seed)
    t0 = time.perf_counter()
    results = []
    for case, rates in calibrate(s, args.only):
        results.append((case, rates))
        print(f"  {case.truth}: {case.rule} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(
        f"\nCalibration: {s.n_runs} simulated runs per line; {s.n_layers} x {s.n_heads} heads, "
        f"{s.n_seeds} seeds, {s.n_examples} examples, {s.n_draws} random draws "
        f"({s.n_draws_before} for the freeze rule before); Clopper-Pearson 95 % intervals.\n"
    )
    print("\n".join(table_lines(results, s)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
