"""How reproducible is a per-head ranking? Split-half and seed-to-seed reliability, noise ceilings.

docs/methods.md, "Reliability and noise ceilings": the split-half reliability of a per-head measure
is the Spearman rho between the head rankings computed from two random halves of the eval examples,
averaged over ``n_repeats`` seeded random splits and Spearman-Brown corrected to the full subset,
``r_full = 2 r_half / (1 + r_half)``. Its Spearman-Brown prophecy gives the number of examples at
which the measure would reach a target reliability (0.9): ``n * t (1 - r) / (r (1 - t))``. The noise
ceiling of a pair x~y is ``sqrt(r_xx * r_yy)``: the largest rho two measures can show when each is
measured with that much noise; ``rho / ceiling`` (the disattenuated rho) estimates the rho of the
noise-free rankings. Report it beside the raw rho, never instead: it can exceed 1 in magnitude when
a reliability is underestimated.

Spearman-Brown assumes a measure is a mean of exchangeable per-example terms (I, I_kl, G, F are;
Ppred = G^2 / F is a smooth function of two such means and is treated the same way). Measures
that do not depend on the eval examples at all (U, Urel, Uq, Uk, Uv, Uo: deterministic given
theta0 and theta1) have a split-half reliability of 1 by definition.

The per-example values come from the measuring rules' sidecar files (``.npz``, one array
``[n, L, H]`` per per-example quantity, see :func:`headplast.io.write_per_example`): with the values
themselves, any number of splits, any subset size and any statistic can be computed later, and
the GPU stage never reruns because the analysis changed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from headplast.io import read_per_example

#: Target reliability for the subset-size advice.
TARGET = 0.9

#: Measures that do not depend on the eval examples: split-half reliability 1 by definition.
DETERMINISTIC: tuple[str, ...] = ("U", "Urel", "Uq", "Uk", "Uv", "Uo")

Statistic = Callable[[np.ndarray], np.ndarray]


def mean_stat(values: np.ndarray) -> np.ndarray:
    """Mean over examples (axis 0)."""
    return values.mean(0)


def abs_mean_stat(values: np.ndarray) -> np.ndarray:
    """G = mean_i |g_i|."""
    return np.abs(values).mean(0)


def sq_mean_stat(values: np.ndarray) -> np.ndarray:
    """F = mean_i g_i^2."""
    return (values * values).mean(0)


def ppred_stat(values: np.ndarray, eps: float = 1e-20) -> np.ndarray:
    """Ppred = G^2 / (F + eps) from per-example gradients."""
    return abs_mean_stat(values) ** 2 / (sq_mean_stat(values) + eps)


#: heads.csv column -> (sidecar name, array in it, statistic over examples).
PER_EXAMPLE_MEASURES: dict[str, tuple[str, str, Statistic]] = {
    "I_pre": ("importance_pre", "d", mean_stat),
    "I_post": ("importance_post", "d", mean_stat),
    "I_kl_pre": ("importance_pre", "kl", mean_stat),
    "I_kl_post": ("importance_post", "kl", mean_stat),
    "G": ("gradfisher_pre", "g", abs_mean_stat),
    "F": ("gradfisher_pre", "g", sq_mean_stat),
    "Ppred": ("gradfisher_pre", "g", ppred_stat),
}


# --------------------------------------------------------------------------- formulas


def spearman_brown(r: float, factor: float) -> float | None:
    """Reliability of a measure made ``factor`` times longer: ``k r / (1 + (k - 1) r)``. ``None``
    where ``1 + (k - 1) r <= 0``: the parts correlate so negatively on average (``r <= -1/(k-1)``,
    e.g. three seeds at mean rho -0.5) that their sum has no positive true variance, and the
    formula would divide by zero or exceed 1."""
    den = 1 + (factor - 1) * r
    return factor * r / den if den > 0 else None


def prophecy_n(r: float | None, n: int, target: float = TARGET) -> int | None:
    """Examples needed for reliability ``target``, given reliability ``r`` at ``n`` examples
    (Spearman-Brown prophecy ``n * t (1 - r) / (r (1 - t))``, rounded up). ``None`` when ``r`` is
    not positive (no number of examples helps a measure with no reliable signal in this model)."""
    if r is None or not math.isfinite(r) or r <= 0:
        return None
    if r >= 1:
        return int(n)
    return max(1, int(math.ceil(n * target * (1 - r) / (r * (1 - target)) - 1e-9)))


def noise_ceiling(r_xx: float | None, r_yy: float | None) -> float | None:
    """``sqrt(r_xx * r_yy)``; ``None`` unless both reliabilities are positive."""
    if r_xx is None or r_yy is None or not (r_xx > 0 and r_yy > 0):
        return None
    return math.sqrt(r_xx * r_yy)


def disattenuated(rho: float | None, ceiling: float | None) -> float | None:
    """``rho / ceiling`` (Spearman's correction for attenuation); ``None`` when undefined."""
    if rho is None or ceiling is None or ceiling <= 0 or not math.isfinite(rho):
        return None
    return rho / ceiling


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(sps.spearmanr(a, b).statistic)


# --------------------------------------------------------------------------- split-half


def split_half(
    values: np.ndarray,
    statistic: Statistic = mean_stat,
    n_repeats: int = 100,
    seed: int = 0,
    target: float = TARGET,
) -> dict[str, Any]:
    """Split-half reliability of the head ranking by ``statistic`` of per-example ``values``.

    ``values`` is [n, heads] (or [n, L, H], flattened to heads). Each repeat permutes the
    examples (``numpy.random.default_rng(seed)``), splits them into halves of floor(n/2) and
    ceil(n/2), applies ``statistic`` to each half ([m, heads] -> [heads]) and takes the Spearman
    rho between the two rankings. Returns ``r_half`` (the mean rho over repeats whose rankings are
    not constant), ``r_half_sd`` (its sd over repeats: how much the split matters, not a standard
    error of the reliability), ``reliability`` (Spearman-Brown to the full ``n``: 2 r / (1 + r)),
    ``n_examples``, ``n_repeats`` and ``n_for_target`` (:func:`prophecy_n`). Undefined numbers are
    ``None``.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    values = values.reshape(n, -1)
    if n < 4:
        raise ValueError(f"split-half reliability needs at least 4 examples, got {n}")
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(int(n_repeats)):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 :]
        rho = _rank_corr(statistic(values[a]), statistic(values[b]))
        if math.isfinite(rho):
            rhos.append(rho)
    r_half = float(np.mean(rhos)) if rhos else None
    reliability = spearman_brown(r_half, 2.0) if r_half is not None else None
    return {
        "r_half": r_half,
        "r_half_sd": float(np.std(rhos, ddof=1)) if len(rhos) > 1 else None,
        "reliability": reliability,
        "n_examples": int(n),
        "n_repeats": int(n_repeats),
        "target": target,
        "n_for_target": prophecy_n(reliability, n, target),
    }


def deterministic_reliability(name: str) -> dict[str, Any]:
    """The entry for a measure that does not depend on the eval examples: reliability 1."""
    return {
        "reliability": 1.0,
        "method": f"{name} does not depend on the eval examples (deterministic given theta0 and "
        "theta1): split-half reliability 1 by definition",
    }


# --------------------------------------------------------------------------- sidecar files


def measure_reliabilities(
    sidecars: Mapping[str, str | os.PathLike],
    measures: Sequence[str],
    n_repeats: int = 100,
    seed: int = 0,
    target: float = TARGET,
) -> dict[str, Any]:
    """Split-half reliability (:func:`split_half`) of each heads.csv measure in ``measures``.

    ``sidecars`` maps a sidecar name (``importance_pre``, ``importance_post``,
    ``gradfisher_pre``) to its ``.npz``. Measures in :data:`DETERMINISTIC` get reliability 1;
    measures whose sidecar is not given, or that are not known, are left out.
    """
    out: dict[str, Any] = {}
    cache: dict[tuple[str, str], np.ndarray] = {}
    for m in measures:
        if m in DETERMINISTIC:
            out[m] = deterministic_reliability(m)
            continue
        if m not in PER_EXAMPLE_MEASURES or PER_EXAMPLE_MEASURES[m][0] not in sidecars:
            continue
        side, key, stat = PER_EXAMPLE_MEASURES[m]
        if (side, key) not in cache:
            cache[(side, key)] = read_per_example(sidecars[side], key)
        out[m] = {
            **split_half(cache[(side, key)], stat, n_repeats, seed, target),
            "method": f"split-half over eval examples ({side}: {key}), Spearman-Brown corrected",
        }
    return out


# --------------------------------------------------------------------------- across seeds


def seed_to_seed(values_by_seed: Mapping[Any, np.ndarray]) -> dict[str, Any]:
    """Seed-to-seed reliability of a head ranking: the mean Spearman rho over pairs of seeds
    (``values_by_seed``: seed -> [heads], aligned). ``reliability`` is that mean (the reliability
    of one seed's ranking); ``reliability_of_mean`` its Spearman-Brown step-up to the mean over
    all S seeds. ``None`` with fewer than two seeds or when undefined."""
    seeds = list(values_by_seed)
    rhos = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            rho = _rank_corr(np.ravel(values_by_seed[a]), np.ravel(values_by_seed[b]))
            if math.isfinite(rho):
                rhos.append(rho)
    r = float(np.mean(rhos)) if rhos else None
    S = len(seeds)
    return {
        "reliability": r,
        "n_seeds": S,
        "n_pairs": len(rhos),
        "reliability_of_mean": spearman_brown(r, S) if r is not None else None,
    }


def pair_ceiling(
    rho: float | None, r_xx: float | None, r_yy: float | None
) -> dict[str, float | None]:
    """``{noise_ceiling, rho_disattenuated}`` of a pair with reliabilities ``r_xx``, ``r_yy``."""
    ceiling = noise_ceiling(r_xx, r_yy)
    return {"noise_ceiling": ceiling, "rho_disattenuated": disattenuated(rho, ceiling)}


def subset_advice(reliabilities: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per example-dependent measure: the eval-subset size at which its split-half reliability
    would reach the target (Spearman-Brown prophecy), beside the size and reliability measured.
    ``n_for_target`` None: no positive reliability, so no subset size can be advised."""
    out: dict[str, Any] = {}
    for m, r in reliabilities.items():
        if "n_examples" not in r:
            continue
        out[m] = {
            "target": r["target"],
            "n_for_target": r["n_for_target"],
            "n_examples": r["n_examples"],
            "reliability": r["reliability"],
        }
    return out


#: Sidecar names the stats rule may give (``input`` keys of the rule).
SIDECARS: tuple[str, ...] = ("importance_pre", "importance_post", "gradfisher_pre")


def reliability_report(
    sidecars: Mapping[str, str | os.PathLike],
    measures: Sequence[str],
    n_repeats: int = 100,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(reliability per measure, subset-size advice) for ``stats.json``."""
    rel = measure_reliabilities(sidecars, measures, n_repeats, seed)
    return rel, subset_advice(rel)
