"""A score's set or order against as many random heads (docs/methods.md, "Findings": pruning and
freeze verdicts).

Two numbers decide, as for the pairs: the effect paired by seed and the random draws taken as a
distribution.

- Paired by seed: per seed, the score's value minus the mean over the random draws of that seed
  (the same seed's fine-tune, data order and eval examples), and the 95 % t-interval of its mean
  over seeds: how precisely the difference from random is estimated.
- The random draws as a distribution: each draw's mean over the same seeds; the score's mean over
  seeds is compared with them by the two-sided prediction p, ``2 * t_sf(|M - mean_M| / (sd_M *
  sqrt(1 + 1/J)), J - 1)``, J draws: the probability that one more random draw lands as far from
  the draws' mean (normal draws; exact for exchangeable normal draws). Its 95 % prediction
  interval is ``mean_M +- t_(J-1) sd_M sqrt(1 + 1/J)``.

A verdict needs :data:`MIN_SEEDS` seeds and :data:`MIN_DRAWS` draws; it is called when the
prediction p (Holm-adjusted within its family) is at most the level and the paired interval
excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats as sps

from headplast.analysis.summary import MIN_INFORMATIVE_SEEDS, mean_t_interval

#: At least this many seeds for a verdict (the pairs' rule).
MIN_SEEDS = MIN_INFORMATIVE_SEEDS
#: At least this many random draws for a prediction interval (an sd needs two).
MIN_DRAWS = 2


def against_random(
    score_by_seed: Mapping[Any, float | None],
    random_by_draw: Mapping[str, Mapping[Any, float | None]],
    level: float = 0.95,
) -> dict[str, Any]:
    """A score's per-seed values against the random draws' (``random_by_draw[draw][seed]``),
    over the seeds every one of them has. Returns ``n_seeds, n_random, score_mean`` (over
    seeds), ``effect`` (mean over seeds of score minus the seed's random mean), ``effect_ci``
    (its t-interval at ``level``; [None, None] below two seeds), ``random_mean, random_sd``
    (over the draws' seed means), ``pi`` (the prediction interval at ``level``), ``p_random``
    (the prediction p; None below :data:`MIN_DRAWS` draws or with draws that do not vary) and
    ``informative`` (enough seeds and draws for a verdict)."""
    seeds = [s for s, v in score_by_seed.items() if v is not None and math.isfinite(v)]
    for draw in random_by_draw.values():
        seeds = [s for s in seeds if draw.get(s) is not None and math.isfinite(draw[s])]
    n_draws = len(random_by_draw)
    out: dict[str, Any] = {
        "n_seeds": len(seeds),
        "n_random": n_draws,
        "score_mean": None,
        "effect": None,
        "effect_ci": [None, None],
        "random_mean": None,
        "random_sd": None,
        "pi": [None, None],
        "p_random": None,
        "informative": False,
    }
    if not n_draws:  # nothing to compare with: the score's own mean over its seeds
        own = [v for v in score_by_seed.values() if v is not None and math.isfinite(v)]
        out["score_mean"] = float(np.mean(own)) if own else None
        return out
    if not seeds:
        return out
    score = np.array([score_by_seed[s] for s in seeds], dtype=float)
    draws = np.array([[d[s] for s in seeds] for d in random_by_draw.values()], dtype=float)
    paired = mean_t_interval(list(score - draws.mean(axis=0)), level)
    means = draws.mean(axis=1)  # each draw's mean over the seeds
    out.update(
        {
            "score_mean": float(score.mean()),
            "effect": paired["mean"],
            "effect_ci": paired["ci"],
            "random_mean": float(means.mean()),
        }
    )
    if n_draws >= MIN_DRAWS:
        sd = float(means.std(ddof=1))
        out["random_sd"] = sd
        scale = sd * math.sqrt(1 + 1 / n_draws)
        q = float(sps.t.ppf(0.5 + level / 2, n_draws - 1))
        out["pi"] = [out["random_mean"] - q * scale, out["random_mean"] + q * scale]
        if scale > 0:
            t = abs(out["score_mean"] - out["random_mean"]) / scale
            out["p_random"] = float(2 * sps.t.sf(t, n_draws - 1))
    out["informative"] = bool(
        len(seeds) >= MIN_SEEDS and n_draws >= MIN_DRAWS and out["p_random"] is not None
    )
    return out


def position(result: Mapping[str, Any], p: float | None, alpha: float = 0.05) -> str | None:
    """``above`` / ``below`` (the score's side of random) when ``result`` is informative, ``p``
    (the Holm-adjusted prediction p) is at most ``alpha`` and the paired interval excludes 0;
    ``within`` otherwise; None when not informative."""
    if not result.get("informative"):
        return None
    lo, hi = result["effect_ci"]
    if p is None or p > alpha or lo is None or lo <= 0 <= hi:
        return "within"
    return "above" if result["effect"] > 0 else "below"
