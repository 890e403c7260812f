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

from headplast.analysis.correlation import spearman
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


def _ppred_from_means(means: Mapping[str, np.ndarray], eps: float = 1e-20) -> np.ndarray:
    return means["abs"] ** 2 / (means["sq"] + eps)


def _forms() -> dict[Statistic, tuple[dict[str, Callable[[np.ndarray], np.ndarray]], Any]]:
    """Each mean-type statistic as (per-example transforms, statistic from their half means)."""
    ident, absv, sq = (lambda v: v), np.abs, (lambda v: v * v)
    return {
        mean_stat: ({"id": ident}, lambda m: m["id"]),
        abs_mean_stat: ({"abs": absv}, lambda m: m["abs"]),
        sq_mean_stat: ({"sq": sq}, lambda m: m["sq"]),
        ppred_stat: ({"abs": absv, "sq": sq}, _ppred_from_means),
    }


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


# --------------------------------------------------------------------------- split-half


#: Draws of the split-half noise null (:func:`noise_null`).
N_NULL = 200
#: The null recomputes the reliability on the first this-many of the repeats: fewer repeats
#: spread the null wider than the observed statistic's (conservative), at a fifth of the cost.
NULL_REPEATS = 20
#: The reliability must exceed this quantile of its null to count as information.
NULL_QUANTILE = 0.95


def _unit_ranks(a: np.ndarray) -> np.ndarray:
    """[R, N] ranks of each row, centred and scaled to unit norm (0 where a row is constant)."""
    r = sps.rankdata(a, axis=1)
    r = r - r.mean(axis=1, keepdims=True)
    norm = np.sqrt((r * r).sum(axis=1, keepdims=True))
    return np.divide(r, norm, out=np.zeros_like(r), where=norm > 0)


def _splits(n: int, n_repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The random halves (floor(n/2), ceil(n/2)) of :func:`split_half`, from
    ``numpy.random.default_rng(seed)``: the same splits for every measure and pair."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_repeats)):
        perm = rng.permutation(n)
        out.append((perm[: n // 2], perm[n // 2 :]))
    return out


def _half_means(values: np.ndarray, select: np.ndarray, statistic: Statistic) -> np.ndarray:
    """[R, N] ``statistic`` of the half of every repeat (``select``: [R, n] 0/1 rows, equal
    sizes), by matrix products for the statistics made of example means (:data:`_MEAN_FORMS`),
    else repeat by repeat."""
    m = select.sum(axis=1, keepdims=True)
    forms = _MEAN_FORMS.get(statistic)
    if forms is None:
        return np.stack([statistic(values[row.astype(bool)]) for row in select])
    means = {name: (select @ f(values)) / m for name, f in forms[0].items()}
    return forms[1](means)


#: Statistics that are functions of example means: (the per-example transforms, how the
#: statistic follows from their half means). Lets the noise null run as matrix products.
_MEAN_FORMS = _forms()


def noise_null(
    values: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    statistic: Statistic = mean_stat,
    n_null: int = N_NULL,
    seed: int = 0,
) -> np.ndarray:
    """[n_null] split-half reliabilities under "no true difference between heads": in each null
    draw every example's values are shuffled among the heads (independently per example: under
    that null the heads of an example are exchangeable), and the reliability is recomputed on
    the same random halves, exactly as the observed one. (Shuffling the head labels of one half
    only, the same in every repeat, is not a valid null: it breaks the dependence between repeats
    that share examples in swapped halves, narrows the null and let noise pass in 13 % of
    simulated data sets at a 5 % level.) :func:`split_half` passes the first
    :data:`NULL_REPEATS` of its splits. Shuffles from ``default_rng([seed, 1])``, apart from the
    splits' draws."""
    rng = np.random.default_rng([int(seed), 1])
    n = values.shape[0]
    sel_a = np.zeros((len(splits), n))
    sel_b = np.zeros((len(splits), n))
    for r, (a, b) in enumerate(splits):
        sel_a[r, a] = 1.0
        sel_b[r, b] = 1.0
    out = np.empty(int(n_null))
    for k in range(int(n_null)):
        shuffled = rng.permuted(values, axis=1)
        ra = _unit_ranks(_half_means(shuffled, sel_a, statistic))
        rb = _unit_ranks(_half_means(shuffled, sel_b, statistic))
        ok = (np.abs(ra).sum(axis=1) > 0) & (np.abs(rb).sum(axis=1) > 0)
        half = float((ra[ok] * rb[ok]).sum(axis=1).mean()) if ok.any() else 0.0
        out[k] = 2 * half / (1 + half) if half > -1 else -np.inf
    return out


def split_half(
    values: np.ndarray,
    statistic: Statistic = mean_stat,
    n_repeats: int = 100,
    seed: int = 0,
    target: float = TARGET,
    n_null: int = N_NULL,
) -> dict[str, Any]:
    """Split-half reliability of the head ranking by ``statistic`` of per-example ``values``.

    ``values`` is [n, heads] (or [n, L, H], flattened to heads). Each repeat permutes the
    examples (``numpy.random.default_rng(seed)``), splits them into halves of floor(n/2) and
    ceil(n/2), applies ``statistic`` to each half ([m, heads] -> [heads]) and takes the Spearman
    rho between the two rankings. Returns ``r_half`` (the mean rho over repeats whose rankings are
    not constant), ``r_half_sd`` (its sd over repeats: how much the split matters, not a standard
    error of the reliability), ``reliability`` (Spearman-Brown to the full ``n``: 2 r / (1 + r)),
    ``n_examples``, ``n_repeats`` and ``n_for_target`` (:func:`prophecy_n`).

    Against noise (docs/methods.md, "Reliability and noise ceilings"): ``noise_p95``, the 95th
    percentile of the reliability under :func:`noise_null` (``n_null`` draws, on the first
    :data:`NULL_REPEATS` splits), ``p_noise`` = (1 + #{null >= observed}) / (1 + n_null), and
    ``distinguishable_from_noise`` = p_noise <= 0.05 (a permutation test at 5 %; about the same
    as reliability > noise_p95). Where it is False, ``n_for_target`` is None: no subset size can
    be advised from a reliability that noise alone reaches. ``n_null`` = 0 skips the null (those
    three None). Undefined numbers are ``None``.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    values = values.reshape(n, -1)
    if n < 4:
        raise ValueError(f"split-half reliability needs at least 4 examples, got {n}")
    rhos = []
    splits = _splits(n, n_repeats, seed)
    for a, b in splits:
        rho = spearman(statistic(values[a]), statistic(values[b])).rho
        if math.isfinite(rho):
            rhos.append(rho)
    r_half = float(np.mean(rhos)) if rhos else None
    reliability = spearman_brown(r_half, 2.0) if r_half is not None else None
    p95 = p_noise = distinguishable = None  # n_null = 0: not tested against noise
    if rhos and reliability is not None and int(n_null) > 0:
        null = noise_null(values, splits[:NULL_REPEATS], statistic, n_null, seed)
        p95 = float(np.quantile(null, NULL_QUANTILE))
        p_noise = float((1 + (null >= reliability - 1e-12).sum()) / (1 + null.size))
        distinguishable = bool(p_noise <= 1 - NULL_QUANTILE)
    return {
        "r_half": r_half,
        "r_half_sd": float(np.std(rhos, ddof=1)) if len(rhos) > 1 else None,
        "reliability": reliability,
        "n_examples": int(n),
        "n_repeats": int(n_repeats),
        "target": target,
        "n_for_target": (
            prophecy_n(reliability, n, target) if distinguishable is not False else None
        ),
        "noise_p95": p95,
        "p_noise": p_noise,
        "distinguishable_from_noise": distinguishable,
    }


def cross_half(
    x_values: np.ndarray,
    y_values: np.ndarray,
    x_stat: Statistic,
    y_stat: Statistic,
    n_repeats: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """A pair whose two measures come from the same eval examples, estimated free of their shared
    errors (docs/methods.md, "Reliability and noise ceilings"). On the same random halves as
    :func:`split_half`: ``rho_same_half`` = mean Spearman of x and y computed on the same half
    (both halves averaged), ``rho_cross_half`` = mean Spearman of x on one half and y on the other
    (both ways), ``r_half_x``, ``r_half_y`` the half-to-half rhos. An example's noise that moves
    x and y alike inflates ``rho_same_half`` but not ``rho_cross_half``, whose halves share no
    example; ``shared_example_bias`` = same - cross. ``noise_ceiling`` = sqrt(r_half_x r_half_y),
    the ceiling of a cross-half rho (each side measured on a half), and ``rho_disattenuated`` =
    rho_cross_half / that ceiling: the disattenuated rho without the shared-error bias. None
    where undefined."""
    xv = np.asarray(x_values, dtype=float)
    yv = np.asarray(y_values, dtype=float)
    n = xv.shape[0]
    if yv.shape[0] != n:
        raise ValueError(f"x has {n} examples, y has {yv.shape[0]}: not the same eval subset")
    xv, yv = xv.reshape(n, -1), yv.reshape(n, -1)
    same, cross, rx, ry = [], [], [], []
    for a, b in _splits(n, n_repeats, seed):
        xa, xb, ya, yb = x_stat(xv[a]), x_stat(xv[b]), y_stat(yv[a]), y_stat(yv[b])
        pairs = ((xa, ya), (xb, yb), (xa, yb), (xb, ya), (xa, xb), (ya, yb))
        vals = [spearman(u, v).rho for u, v in pairs]
        if all(math.isfinite(v) for v in vals):
            same.append((vals[0] + vals[1]) / 2)
            cross.append((vals[2] + vals[3]) / 2)
            rx.append(vals[4])
            ry.append(vals[5])
    out: dict[str, Any] = {
        "rho_same_half": None,
        "rho_cross_half": None,
        "shared_example_bias": None,
        "r_half_x": None,
        "r_half_y": None,
        "noise_ceiling": None,
        "rho_disattenuated": None,
        "method": "cross-half: x on one half of the examples, y on the other",
    }
    if not same:
        return out
    out.update(
        {
            "rho_same_half": float(np.mean(same)),
            "rho_cross_half": float(np.mean(cross)),
            "r_half_x": float(np.mean(rx)),
            "r_half_y": float(np.mean(ry)),
        }
    )
    out["shared_example_bias"] = out["rho_same_half"] - out["rho_cross_half"]
    ceiling = noise_ceiling(out["r_half_x"], out["r_half_y"])
    out["noise_ceiling"] = ceiling
    out["rho_disattenuated"] = disattenuated(out["rho_cross_half"], ceiling)
    return out


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
    n_null: int = N_NULL,
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
            **split_half(cache[(side, key)], stat, n_repeats, seed, target, n_null),
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
            rho = spearman(np.ravel(values_by_seed[a]), np.ravel(values_by_seed[b])).rho
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


def subset_advice(
    reliabilities: Mapping[str, Mapping[str, Any]], n_available: int | None = None
) -> dict[str, Any]:
    """Per example-dependent measure: the eval-subset size at which its split-half reliability
    would reach the target (Spearman-Brown prophecy), beside the size and reliability measured.
    ``n_for_target`` None: no positive reliability, or one not distinguishable from noise
    (``distinguishable_from_noise`` False), so no subset size can be advised. ``n_available``
    (the validation split's size): ``exceeds_split`` True where the advice asks for more
    examples than the split has, so no subset of this task can reach the target."""
    out: dict[str, Any] = {}
    for m, r in reliabilities.items():
        if "n_examples" not in r:
            continue
        need = r["n_for_target"]
        out[m] = {
            "target": r["target"],
            "n_for_target": need,
            "n_examples": r["n_examples"],
            "reliability": r["reliability"],
            "distinguishable_from_noise": r.get("distinguishable_from_noise"),
            "noise_p95": r.get("noise_p95"),
            "n_available": n_available,
            "exceeds_split": (
                bool(need > n_available) if need is not None and n_available else None
            ),
        }
    return out


def pair_ceilings(
    pairs: Mapping[str, Mapping[str, Any]],
    reliabilities: Mapping[str, Mapping[str, Any]],
    cross: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The noise ceiling and disattenuated rho of each ``stats.json`` pair under the rules of
    docs/methods.md ("Reliability and noise ceilings"): withheld (None, ``ceiling_withheld``
    naming the side) where a side's split-half reliability is not distinguishable from noise;
    for a pair in ``cross`` (both sides from the same eval examples, :func:`cross_half`), the
    cross-half ceiling and disattenuated rho replace those from the full-subset reliabilities,
    with ``rho_cross_half``, ``rho_same_half`` and ``shared_example_bias`` beside them and
    ``ceiling_method`` saying which was used. Returns new pair blocks."""
    out: dict[str, dict[str, Any]] = {}
    for name, block in pairs.items():
        b = dict(block)
        noise = [
            side
            for side in (b.get("x"), b.get("y"))
            if (reliabilities.get(side) or {}).get("distinguishable_from_noise") is False
        ]
        c = (cross or {}).get(name)
        if c is not None:
            b.update(
                {
                    "noise_ceiling": c["noise_ceiling"],
                    "rho_disattenuated": c["rho_disattenuated"],
                    "rho_cross_half": c["rho_cross_half"],
                    "rho_same_half": c["rho_same_half"],
                    "shared_example_bias": c["shared_example_bias"],
                    "ceiling_method": "cross-half (both sides from the same examples)",
                }
            )
        elif "noise_ceiling" in b:
            b["ceiling_method"] = "split-half reliabilities of the full subset"
        if noise and "noise_ceiling" in b:
            b.update({"noise_ceiling": None, "rho_disattenuated": None})
            b["ceiling_withheld"] = (
                f"{', '.join(noise)}: split-half reliability not distinguishable from noise"
            )
        out[name] = b
    return out


def cross_half_pairs(
    sidecars: Mapping[str, str | os.PathLike],
    pairs: Sequence[tuple[str, str]],
    n_repeats: int = 100,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """:func:`cross_half` of every pair whose two measures both come from per-example sidecars
    given here (keyed ``"x~y"``); pairs with a side that does not depend on the examples (U,
    Urel) share no example error and are left out."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def load(m: str) -> tuple[np.ndarray, Statistic] | None:
        if m not in PER_EXAMPLE_MEASURES or PER_EXAMPLE_MEASURES[m][0] not in sidecars:
            return None
        side, key, stat = PER_EXAMPLE_MEASURES[m]
        if (side, key) not in cache:
            cache[(side, key)] = read_per_example(sidecars[side], key)
        return cache[(side, key)], stat

    out = {}
    for x, y in pairs:
        lx, ly = load(x), load(y)
        if lx is None or ly is None:
            continue
        out[f"{x}~{y}"] = cross_half(lx[0], ly[0], lx[1], ly[1], n_repeats, seed)
    return out


#: Sidecar names the stats rule may give (``input`` keys of the rule).
SIDECARS: tuple[str, ...] = ("importance_pre", "importance_post", "gradfisher_pre")


def reliability_report(
    sidecars: Mapping[str, str | os.PathLike],
    measures: Sequence[str],
    n_repeats: int = 100,
    seed: int = 0,
    n_available: int | None = None,
    n_null: int = N_NULL,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(reliability per measure, subset-size advice) for ``stats.json``; ``n_available`` the
    validation split's size (:func:`subset_advice`)."""
    rel = measure_reliabilities(sidecars, measures, n_repeats, seed, n_null=n_null)
    return rel, subset_advice(rel, n_available)
