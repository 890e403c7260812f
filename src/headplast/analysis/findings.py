"""What a run found, in numbers and in sentences made from them (docs/methods.md, "Findings").

One block per (model, task, start) from its summaries: the pairs that carry the question, each
with its rho pooled over the seeds used, the interval, the noise ceiling, the disattenuated rho and
each side's split-half reliability; the pruning areas against the random band; the freeze
interventions against theirs; the subset size the reliabilities ask for. Then, per (model, task),
how the starts differ. Every sentence is produced by one of the rules below from those numbers: a
different result changes the words, and no conclusion is written by hand. No torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from headplast.analysis.head_permutation import holm
from headplast.analysis.random_baseline import MIN_DRAWS, MIN_SEEDS, against_random, position
from headplast.analysis.summary import MIN_INFORMATIVE_SEEDS

#: The pairs that answer "do the heads that matter move?", in the order the page shows them.
FINDINGS_PAIRS: tuple[str, ...] = (
    "I_pre~Urel",
    "I_post~Urel",
    "I_kl_pre~Urel",
    "I_kl_post~Urel",
    "G~Urel",
    "Ppred~Urel",
    "I_pre~I_post",
    "I_pre~A_js",
)
#: A noise ceiling below this says a measure limits what the pair can show.
CEILING_LIMIT = 0.5
#: Words for |rho| of an association whose interval excludes 0: below each bound, its word.
STRENGTH: tuple[tuple[float, str], ...] = (
    (0.1, "negligible"),
    (0.3, "weak"),
    (0.5, "moderate"),
    (math.inf, "strong"),
)
#: What "the subset advice" aims at: the split-half reliability the prophecy is computed for.
NOT_INFORMATIVE = "not informative"


#: Level of the head-level permutation tests that decide an association (two-sided).
ALPHA = 0.05


def strength(rho: float) -> str:
    """The word for |rho| (:data:`STRENGTH`)."""
    return next(word for bound, word in STRENGTH if abs(rho) < bound)


def strength_range(low: float, high: float) -> str:
    """The strength an interval that excludes 0 supports: the word of the bound nearer 0 and of
    the bound farther, "moderate" when they agree, else "between moderate and strong" (so the
    word never claims more than the interval's weakest end: +0.55 with interval +0.04 to +0.85
    is "between negligible and strong", not "strong")."""
    near, far = sorted((abs(low), abs(high)))
    w_near, w_far = strength(near), strength(far)
    return w_near if w_near == w_far else f"between {w_near} and {w_far}"


def association_call(
    low: float | None,
    high: float | None,
    p: float | None,
    alpha: float = ALPHA,
    adjusted: bool = False,
) -> tuple[bool, list[str]]:
    """Whether an association is called, and what failed otherwise: it is called only when the
    head-level permutation test rejects (``p <= alpha``) and the seed interval excludes 0.
    Failures, in words: "the head-level test does not reject (p = 0.23)", "no head-level test
    in the summaries", "the seed interval contains 0". ``adjusted``: ``p`` is Holm-adjusted
    (an exploratory test), and the words say so."""
    failed = []
    if p is None:
        failed.append("no head-level test in the summaries")
    elif p > alpha:
        what = "Holm-adjusted p" if adjusted else "p"
        failed.append(f"the head-level test does not reject ({what} = {p:.3g})")
    if low is None or high is None or low <= 0 <= high:
        failed.append("the seed interval contains 0")
    return not failed, failed


def _mean(values: Sequence[float | None]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def _finite(v: Any) -> Any:
    """``v``, or None where it is a NaN or infinite number (JSON has no NaN)."""
    if isinstance(v, float | np.floating) and not math.isfinite(float(v)):
        return None
    return v


def _get(block: Mapping[str, Any] | None, *keys: str) -> Any:
    for k in keys:
        if not isinstance(block, Mapping):
            return None
        block = block.get(k)
    return block


# --------------------------------------------------------------------------- pairs


def pair_row(
    name: str, block: Mapping[str, Any] | None, stats_by_seed: Mapping[int, Mapping[str, Any]]
) -> dict[str, Any]:
    """One table row: ``pair, x, y, rho, ci_low, ci_high, p_head, rho_layer, layer_ci_low,
    layer_ci_high, p_head_layer, n_seeds, informative,
    noise_ceiling, rho_disattenuated, r_xx, r_yy, per_seed, measured``. ``rho``/``ci`` are
    pair_stats' pooled rho and its interval (Fisher's z), ``p_head`` its head-level permutation
    p (None where the summaries have no head test); the same for the layer-controlled rho
    (``rho_layer``, ``layer_ci_*``, ``p_head_layer``); ``noise_ceiling`` and
    ``rho_disattenuated`` their seed summaries, ``r_xx``/``r_yy`` each side's split-half
    reliability averaged over the seeds used (1 for a measure that does not depend on the
    examples), ``per_seed`` each seed's rho, ``ceiling_n_seeds`` the seeds that have a ceiling
    (those whose two reliabilities are positive). ``measured`` False: the pair is not in the
    summaries (e.g. no label-free importance)."""
    x, y = name.split("~")
    row: dict[str, Any] = {"pair": name, "x": x, "y": y, "measured": block is not None}
    rho = _get(block, "rho") or {}
    low, high = rho.get("ci") or [None, None]
    per_seed = [_get(st, "pairs", name) or {} for st in stats_by_seed.values()]
    lay = _get(block, "rho_layer") or {}
    lay_low, lay_high = lay.get("ci") or [None, None]
    row.update(
        {
            "rho": rho.get("mean"),
            "ci_low": low,
            "ci_high": high,
            "p_head": _get(rho, "head_test", "p"),
            "rho_layer": lay.get("mean"),
            "layer_ci_low": lay_low,
            "layer_ci_high": lay_high,
            "p_head_layer": _get(lay, "head_test", "p"),
            "n_seeds": int(rho.get("n") or 0),
            "informative": bool(rho.get("informative")),
            "noise_ceiling": _get(block, "noise_ceiling", "mean"),
            "rho_disattenuated": _get(block, "rho_disattenuated", "mean"),
            "ceiling_n_seeds": int(_get(block, "noise_ceiling", "n") or 0),
            "r_xx": _mean([p.get("r_xx") for p in per_seed]),
            "r_yy": _mean([p.get("r_yy") for p in per_seed]),
            "per_seed": {str(k): v for k, v in (rho.get("values") or {}).items()},
        }
    )
    row.update(noise_fields(x, y, per_seed, stats_by_seed))
    if row["noise_sides"]:  # a noise-level reliability: no ceiling, no disattenuated rho
        row["noise_ceiling"] = row["rho_disattenuated"] = None
    return row


def noise_fields(
    x: str,
    y: str,
    per_seed: Sequence[Mapping[str, Any]],
    stats_by_seed: Mapping[int, Mapping[str, Any]],
) -> dict[str, Any]:
    """``noise_sides``: ``[{measure, reliability, noise_p95}]`` for each side whose split-half
    reliability is not distinguishable from noise in some seed used (means over the seeds);
    ``rho_cross_half``, ``rho_same_half`` (means over seeds) where both sides come from the same
    examples and the stats carry the cross-half estimates."""
    sides = []
    for m in (x, y):
        recs = [_get(st, "reliability", m) or {} for st in stats_by_seed.values()]
        if any(r.get("distinguishable_from_noise") is False for r in recs):
            sides.append(
                {
                    "measure": m,
                    "reliability": _mean([r.get("reliability") for r in recs]),
                    "noise_p95": _mean([r.get("noise_p95") for r in recs]),
                }
            )
    return {
        "noise_sides": sides,
        "rho_cross_half": _mean([p.get("rho_cross_half") for p in per_seed]),
        "rho_same_half": _mean([p.get("rho_same_half") for p in per_seed]),
    }


def verdict_clause(
    rho: float, low: Any, high: Any, p: Any, what: str, p_adj: Any = None
) -> tuple[bool, str]:
    """(called, words) for one rho: "a moderate positive association (rho +0.40, 95 % seed
    interval +0.31 to +0.49, head-level p = 0.0001)" or "not distinguishable from no association
    (...): the head-level test does not reject (p = 0.23)". With ``p_adj`` (the Holm-adjusted p
    of an exploratory test) the decision uses it and the numbers show both."""
    adjusted = p_adj is not None
    called, failed = association_call(low, high, p_adj if adjusted else p, adjusted=adjusted)
    interval = "-" if low is None or high is None else f"{low:+.2f} to {high:+.2f}"
    numbers = f"{what} {rho:+.2f}, 95 % seed interval {interval}, head-level p = " + (
        "-" if p is None else f"{p:.3g}"
    )
    if adjusted:
        numbers += f", Holm-adjusted {p_adj:.3g}"
    if called:
        sign = "positive" if rho > 0 else "negative"
        word = strength_range(low, high)
        if word.startswith("between"):
            return True, f"a {sign} association of a strength {word} ({numbers})"
        return True, f"a {word} {sign} association ({numbers})"
    return False, f"not distinguishable from no association ({numbers}): {' and '.join(failed)}"


def _decisive_p(row: Mapping[str, Any], key: str) -> Any:
    """The p that decides: the Holm-adjusted one where the row has it, else the raw one."""
    adj = row.get(f"{key}_adj")
    return adj if adj is not None else row.get(key)


def depth_words(row: Mapping[str, Any]) -> str:
    """The layer-controlled clause of a pair's first sentence, and whether depth carries or hides
    the raw association: they disagree in significance (one called, the other not) or in sign
    (both called, opposite signs)."""
    if row.get("rho_layer") is None:
        return ""
    raw, _ = association_call(row["ci_low"], row["ci_high"], _decisive_p(row, "p_head"))
    lay, clause = verdict_clause(
        row["rho_layer"], row["layer_ci_low"], row["layer_ci_high"], row.get("p_head_layer"),
        "layer-controlled rho", row.get("p_head_layer_adj"),
    )  # fmt: skip
    if raw and not lay:
        return f"; within layers {clause}; so the association is carried by depth"
    if lay and not raw:
        return f"; within layers {clause}; an association hidden by depth"
    if raw and lay and (row["rho"] > 0) != (row["rho_layer"] > 0):
        return f"; within layers {clause}; the sign is reversed, depth hides the within-layer one"
    return f"; within layers {clause}"


def _label(row: Mapping[str, Any]) -> str:
    """ " (primary question)" or " (exploratory)" where :func:`adjust_pairs` has marked the row."""
    if "primary" not in row:
        return ""
    return " (primary question)" if row["primary"] else " (exploratory)"


#: The pair whose raw head-level test answers the primary question (docs/methods.md).
PRIMARY_PAIR = "I_pre~Urel"


def adjust_pairs(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the primary test and Holm-adjust the rest (docs/methods.md, "Findings"): the raw
    head-level test of :data:`PRIMARY_PAIR` is the primary question, judged at :data:`ALPHA`
    unadjusted (``p_head_adj`` None); every other head-level test of the run's pairs (the
    primary pair's layer-controlled one included) is exploratory, one family, Holm-adjusted
    (``p_head_adj``, ``p_head_layer_adj``). Rows without an informative interval make no
    verdict and stay out of the family. Returns new rows with ``primary`` added."""
    rows = [dict(r) for r in rows]
    slots = []
    for i, r in enumerate(rows):
        r["primary"] = r["pair"] == PRIMARY_PAIR
        r["p_head_adj"] = None
        r["p_head_layer_adj"] = None
        if not (r.get("measured") and r.get("informative")):
            continue  # no verdict is made, so no test joins the family
        if not r["primary"]:
            slots.append((i, "p_head"))
        slots.append((i, "p_head_layer"))
    adjusted = holm([rows[i].get(key) for i, key in slots])
    for (i, key), p in zip(slots, adjusted, strict=True):
        rows[i][f"{key}_adj"] = p
    return rows


def pair_sentences(row: Mapping[str, Any]) -> list[str]:
    """The rules of docs/methods.md ("Findings"), in order, applied to one :func:`pair_row`:

    1. not measured: say so; 2. no seed: say so; 3. fewer than three seeds: the interval is not
    informative, the pooled rho and each seed's are given; 4. an association is called only
    when the head-level permutation test rejects at :data:`ALPHA` and the seed interval excludes
    0 (:func:`association_call`), else "not distinguishable from no association" with what
    failed; its strength from the interval (:func:`strength_range`); the layer-controlled rho's
    verdict beside it, "carried by depth" / "hidden by depth" where the two disagree
    (:func:`depth_words`); 5. a noise ceiling below :data:`CEILING_LIMIT`: the less reliable side
    limits what can be seen; 6. no ceiling because a side's reliability is not positive: that
    side's ranking is noise at this size; 7. a disattenuated rho beyond +-1: the reliabilities
    are underestimated, read it as "at the ceiling"."""
    x, y = row["x"], row["y"]
    if not row["measured"]:
        return [f"{x} and {y}: not measured in this run."]
    if row["rho"] is None:
        return [f"{x} and {y}: no seed gave a correlation."]
    rho = row["rho"]
    out = []
    if not row["informative"]:
        seeds = ", ".join(f"seed {k} {v:+.2f}" for k, v in row["per_seed"].items() if v is not None)
        out.append(
            f"{x} and {y}{_label(row)}: with {row['n_seeds']} seed(s) the interval over seeds is "
            f"not informative (at least {MIN_INFORMATIVE_SEEDS} are needed); the pooled rho is "
            f"{rho:+.2f}" + (f" ({seeds})." if seeds else ".")
        )
    else:
        _, clause = verdict_clause(
            rho, row["ci_low"], row["ci_high"], row.get("p_head"), "rho", row.get("p_head_adj")
        )
        out.append(f"{x} and {y}{_label(row)}: {clause}{depth_words(row)}.")
    ceiling = row["noise_ceiling"]
    if ceiling is not None and ceiling < CEILING_LIMIT:
        sides = [(r, m) for r, m in ((row["r_xx"], x), (row["r_yy"], y)) if r is not None]
        limiting = min(sides)[1] if sides else f"{x} or {y}"
        rel = f" (split-half reliability {min(sides)[0]:.2f})" if sides else ""
        out.append(
            f"The noise ceiling is {ceiling:.2f}: {limiting}{rel} limits what this pair can show; "
            "a larger eval subset raises it (subset advice below)."
        )
    noise = row.get("noise_sides") or []
    for side in noise:
        rel, p95 = side["reliability"], side["noise_p95"]
        numbers = (
            f" ({rel:+.2f}; noise alone reaches {p95:.2f} at its 95th percentile)"
            if rel is not None and p95 is not None
            else ""
        )
        out.append(
            f"The split-half reliability of {side['measure']}{numbers} is not distinguishable "
            "from noise at this subset size: no noise ceiling or disattenuated rho is given."
        )
    same, cross = row.get("rho_same_half"), row.get("rho_cross_half")
    if same is not None and cross is not None and not noise:
        out.append(
            f"{x} and {y} come from the same eval examples, whose errors they share: the noise "
            f"ceiling and disattenuated rho use cross-half estimates ({x} on one half, {y} on "
            f"the other), rho {cross:+.2f} across halves against {same:+.2f} within a half."
        )
    nonpositive = [
        (m, r) for m, r in ((x, row["r_xx"]), (y, row["r_yy"])) if r is not None and r <= 0
    ]
    if ceiling is None and nonpositive and not noise:
        m, r = nonpositive[0]
        out.append(
            f"No noise ceiling: the split-half reliability of {m} is not positive ({r:+.2f}), so "
            f"at this eval subset size its ranking of the heads is not distinguishable from noise."
        )
    d = row["rho_disattenuated"]
    if d is not None and abs(d) > 1:
        out.append(
            f"The disattenuated rho, {d:+.2f}, lies beyond +-1: the split-half reliabilities are "
            "underestimated at this subset size, so read it as at the noise ceiling, not as a "
            "value."
        )
    return out


# --------------------------------------------------------------------------- pruning


def _with_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm-adjust the informative rows' ``p_random`` as one family (``p_adj``) and set each
    row's ``position`` (:func:`headplast.analysis.random_baseline.position`)."""
    adjusted = holm([r["p_random"] if r["informative"] else None for r in rows])
    for r, p in zip(rows, adjusted, strict=True):
        r["p_adj"] = p
        r["position"] = position(r, p)
    return rows


def pruning_rows(auc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per score order of ``pruning_auc.json`` (random orders apart): ``order, auc`` (mean over
    seeds), ``auc_sd``, then :func:`headplast.analysis.random_baseline.against_random` of its
    per-seed areas against each random order's (``random_orders`` of the file: the draws as a
    distribution, each by its mean over the same seeds; the effect paired by seed), ``p_adj``
    (Holm over the run's score orders) and ``position``: ``above`` (keeps accuracy better than
    random orders), ``below``, ``within``, or None (fewer than 3 seeds or 2 random orders)."""
    draws = {
        name: {str(k): v for k, v in (d.get("per_seed") or {}).items()}
        for name, d in (auc.get("random_orders") or {}).items()
    }
    rows = []
    for order, a in auc.items():
        if order in ("random", "random_orders") or not isinstance(a, Mapping):
            continue  # no_usable_seed holds words
        per_seed = {str(k): v for k, v in (a.get("per_seed") or {}).items()}
        rows.append(
            {
                "order": order,
                "auc": a.get("mean"),
                "auc_sd": a.get("sd"),
                **against_random(per_seed, draws),
                "n_seeds_order": len(per_seed),
            }
        )
    return _with_verdicts(rows)


def order_words(order: str) -> str:
    """``I_pre`` -> "smallest I_pre removed first"; ``I_pre_reverse`` -> "largest I_pre removed
    first" (the pruning orders' names)."""
    if order.endswith("_reverse"):
        return f"largest {order.removesuffix('_reverse')} removed first"
    return f"smallest {order} removed first"


def _against_random_numbers(r: Mapping[str, Any], spec: str, what: str) -> str:
    """The numbers a pruning or freeze sentence gives in brackets."""
    lo, hi = r["pi"]
    e_lo, e_hi = r["effect_ci"]
    p = f"p = {r['p_random']:.3g}" + (
        f", Holm-adjusted {r['p_adj']:.3g}" if r.get("p_adj") is not None else ""
    )
    return (
        f"{what} {r['score_mean']:{spec}} against the {r['n_random']} random draws' "
        f"{r['random_mean']:{spec}}, 95 % prediction interval {lo:{spec}} to {hi:{spec}}; paired "
        f"by seed {r['effect']:+{spec[1:] if spec.startswith('+') else spec}}, 95 % seed "
        f"interval {e_lo:+.3f} to {e_hi:+.3f}; {p}"
    )


def _not_informative(r: Mapping[str, Any]) -> str:
    """Why a pruning or freeze row has no verdict."""
    why = []
    if r["n_seeds"] < MIN_SEEDS:
        why.append(f"{r['n_seeds']} seed(s) (at least {MIN_SEEDS} are needed)")
    if r["n_random"] < MIN_DRAWS:
        why.append(f"{r['n_random']} random draw(s) (at least {MIN_DRAWS} are needed)")
    if not why:
        why.append("random draws that do not vary")
    return " and ".join(why)


def pruning_sentences(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per score order (exploratory): where its area lies against the random
    orders, or why no verdict is given."""
    words = {
        "above": "keeps accuracy better than removing random heads",
        "below": "loses accuracy faster than removing random heads",
        "within": "is not distinguishable from removing random heads",
    }
    out = []
    for r in rows:
        what = f"Pruning with {order_words(r['order'])} (exploratory)"
        if r["position"] is None:
            if r["score_mean"] is None:
                continue
            out.append(
                f"{what}: no verdict with {_not_informative(r)}; area {r['score_mean']:.3f}, "
                f"random orders {_fmt_or_dash(r['random_mean'], '.3f')}."
            )
            continue
        out.append(f"{what} {words[r['position']]} ({_against_random_numbers(r, '.3f', 'area')}).")
    return out


def _fmt_or_dash(v: Any, spec: str) -> str:
    return "-" if v is None else format(float(v), spec)


# --------------------------------------------------------------------------- freeze


def _per_seed_cell(text: Any) -> dict[str, float]:
    """``freeze.csv``'s ``per_seed`` cell, ``"1:-0.020000;2:-0.021000"``, as {seed: value}."""
    if not isinstance(text, str) or not text.strip():
        return {}
    out = {}
    for part in text.split(";"):
        seed, _, value = part.partition(":")
        out[seed.strip()] = float(value)
    return out


def freeze_rows(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The score orders of ``freeze.csv`` against its random draws
    (:func:`headplast.analysis.random_baseline.against_random` on the ``per_seed`` accuracy
    changes: each seed's change minus that seed's mean over the random draws, and the score's
    mean change against the draws' means), ``p_adj`` (Holm over the run's score orders) and
    ``position``: ``below`` (freezing these heads costs more than freezing as many random ones),
    ``above``, ``within``, or None (fewer than 3 seeds or 2 random draws)."""
    if table is None or table.empty:
        return []
    records = [{k: _finite(v) for k, v in r.items()} for r in table.to_dict("records")]
    draws = {
        r["order"]: _per_seed_cell(r.get("per_seed")) for r in records if r["kind"] == "random"
    }
    rows = []
    for r in records:
        if r["kind"] != "score":
            continue
        rows.append(
            {
                "order": r["order"],
                "delta_acc": r.get("delta_acc_mean"),
                "ci_low": r.get("ci_low"),
                "ci_high": r.get("ci_high"),
                **against_random(_per_seed_cell(r.get("per_seed")), draws),
                "n_seeds_order": int(r.get("n_seeds") or 0),
            }
        )
    return _with_verdicts(rows)


def freeze_sentences(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per score order (exploratory): whether freezing its heads cost more than
    freezing as many random heads, or why no verdict is given."""
    out = []
    for r in rows:
        what = f"Freezing the heads with the largest {r['order']} during fine-tuning (exploratory)"
        if r["position"] is None:
            change = r["delta_acc"] if r["delta_acc"] is not None else r["score_mean"]
            numbers = "" if change is None else f"; it changed validation accuracy by {change:+.3f}"
            out.append(f"{what}: no verdict with {_not_informative(r)}{numbers}.")
            continue
        verdict = {
            "below": "costs more accuracy than freezing as many random heads: their movement "
            "was needed",
            "above": "costs less accuracy than freezing as many random heads",
            "within": "is not distinguishable from freezing as many random heads",
        }[r["position"]]
        numbers = _against_random_numbers(r, "+.3f", "change")
        few = f"; only {r['n_random']} random draws" if r["n_random"] < RECOMMENDED_DRAWS else ""
        out.append(f"{what} {verdict} ({numbers}{few}).")
    return out


#: Random draws below this are named as few in the freeze sentences (config default 10).
RECOMMENDED_DRAWS = 10


# --------------------------------------------------------------------------- subset advice


def subset_advice(stats_by_seed: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per example-dependent measure: ``measure, n_examples, reliability`` (mean over seeds),
    ``n_for_target`` (the largest over seeds: the size at which every seed's split-half
    reliability would reach ``target``; None when a seed's reliability is not positive or not
    distinguishable from noise), ``noise`` (a seed's reliability is not distinguishable from
    noise), ``n_available`` (the validation split's size, where the stats know it) and
    ``target``, sorted by the examples asked for, most first."""
    by_measure: dict[str, list[Mapping[str, Any]]] = {}
    for st in stats_by_seed.values():
        for m, a in (st.get("subset_advice") or {}).items():
            by_measure.setdefault(m, []).append(a)
    rows = []
    for m, advice in by_measure.items():
        needs = [a.get("n_for_target") for a in advice]
        rows.append(
            {
                "measure": m,
                "n_examples": int(advice[0]["n_examples"]),
                "reliability": _mean([a.get("reliability") for a in advice]),
                "n_for_target": None if None in needs else int(max(needs)),
                "target": advice[0].get("target"),
                "noise": any(a.get("distinguishable_from_noise") is False for a in advice),
                "n_available": advice[0].get("n_available"),
            }
        )
    return sorted(rows, key=lambda r: (r["n_for_target"] is not None, r["n_for_target"] or 0))[::-1]


def subset_sentences(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the subset advice asks for: the measure that needs the most examples (and, where
    that is more than the validation split has, that no subset of this task reaches it), the
    measures whose reliability is not distinguishable from noise, and those whose reliability is
    not positive (no size can be advised for either)."""
    if not rows:
        return []
    out = []
    noise = [r["measure"] for r in rows if r.get("noise")]
    unknown = [r["measure"] for r in rows if r["n_for_target"] is None and not r.get("noise")]
    known = [r for r in rows if r["n_for_target"] is not None]
    if known:
        top = max(known, key=lambda r: r["n_for_target"])
        avail = top.get("n_available")
        if avail is not None and top["n_for_target"] > avail:
            out.append(
                f"A split-half reliability of {top['target']} for every measure would need "
                f"{top['n_for_target']:,} examples ({top['measure']}, the least reliable; "
                f"reliability {top['reliability']:.2f} on {top['n_examples']:,}), more than the "
                f"validation split's {avail:,}: no eval subset of this task reaches it."
            )
        elif top["n_for_target"] > top["n_examples"]:
            out.append(
                f"A split-half reliability of {top['target']} for every measure asks for "
                f"{top['n_for_target']:,} examples ({top['measure']}, the least reliable; measured "
                f"on {top['n_examples']:,}, reliability {top['reliability']:.2f})."
            )
        else:
            out.append(
                f"A split-half reliability of {top['target']} for every measure is met at the "
                f"{top['n_examples']:,} examples measured."
            )
    if noise:
        out.append(
            f"No subset size is advised for {', '.join(noise)}: a seed's split-half reliability "
            "is not distinguishable from noise at this subset size."
        )
    if unknown:
        out.append(
            f"No subset size can be advised for {', '.join(unknown)}: a seed's split-half "
            "reliability is not positive."
        )
    return out


# --------------------------------------------------------------------------- one run


def accuracy_summary(run_configs: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Validation accuracy at theta0 and theta1, mean over the given seeds' run records."""
    out = {}
    for point in ("theta0", "theta1"):
        out[point] = _mean(
            [_get(rc, "validation", point, "accuracy") for rc in run_configs.values()]
        )
    return out


def run_findings(
    pair_stats: Mapping[str, Any],
    pruning_auc: Mapping[str, Any],
    stats_by_seed: Mapping[int, Mapping[str, Any]],
    run_configs: Mapping[int, Mapping[str, Any]],
    freeze: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Everything the page shows for one (model, task, start): ``seeds``, ``degenerate``,
    ``no_usable_seed`` (the summaries' words, or None), ``accuracy`` (:func:`accuracy_summary`
    over the seeds used), ``pairs`` (:func:`pair_row` of each of :data:`FINDINGS_PAIRS`),
    ``pruning``, ``freeze``, ``subset_advice`` and ``sentences`` per section. Only the seeds
    used by the summaries feed the reliabilities and the subset advice."""
    seeds = [int(s) for s in pair_stats["seeds"]]
    used_stats = {s: st for s, st in stats_by_seed.items() if int(s) in seeds}
    degenerate = [int(s) for s in pair_stats["degenerate_excluded"]]
    no_usable = pair_stats.get("no_usable_seed")
    pairs = adjust_pairs(
        [pair_row(p, pair_stats["pairs"].get(p), used_stats) for p in FINDINGS_PAIRS]
    )
    prune = [] if no_usable else pruning_rows(pruning_auc)
    frz = [] if no_usable else freeze_rows(freeze)
    advice = subset_advice(used_stats)
    sentences = {
        "seeds": seed_sentences(seeds, degenerate, no_usable),
        "pairs": [] if no_usable else [s for r in pairs for s in pair_sentences(r)],
        "pruning": pruning_sentences(prune),
        "freeze": freeze_sentences(frz),
        "subset_advice": subset_sentences(advice),
    }
    return {
        "seeds": seeds,
        "degenerate": degenerate,
        "no_usable_seed": no_usable,
        "accuracy": accuracy_summary({s: rc for s, rc in run_configs.items() if int(s) in seeds}),
        "pairs": pairs,
        "pruning": prune,
        "freeze": frz,
        "subset_advice": advice,
        "sentences": sentences,
    }


def seed_sentences(seeds: Sequence[int], degenerate: Sequence[int], no_usable: Any) -> list[str]:
    """Which seeds the numbers rest on, and which were left out as degenerate."""
    if no_usable:
        words = no_usable if isinstance(no_usable, str) else _get(no_usable, "message")
        named = ", ".join(str(s) for s in degenerate)
        return [
            words
            or f"No usable seed: every seed ({named}) is degenerate; nothing is summarised here."
        ]
    out = [f"Seeds used: {', '.join(str(s) for s in seeds)}."]
    if degenerate:
        out.append(
            f"Left out as degenerate (theta1 did not beat the majority class): seed(s) "
            f"{', '.join(str(s) for s in degenerate)}."
        )
    return out


# --------------------------------------------------------------------------- starts


def intervals_disjoint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool | None:
    """Whether two pair rows' intervals do not overlap; None when either is missing or not
    informative."""
    for r in (a, b):
        if not r.get("informative") or r.get("ci_low") is None or r.get("ci_high") is None:
            return None
    return bool(a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"])


def starts_sentences(by_start: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """How the starts of one (model, task) differ: their theta0 and theta1 accuracy, and the
    pairs whose intervals do not overlap between two starts (rule: disjoint 95 % intervals),
    or that none do at this precision."""
    usable = {s: f for s, f in by_start.items() if not f["no_usable_seed"]}
    out = []
    for start, f in by_start.items():
        if f["no_usable_seed"]:
            out.append(f"The {start} start has no usable seed; it is not compared.")
            continue
        acc = f["accuracy"]
        if acc["theta0"] is not None and acc["theta1"] is not None:
            out.append(
                f"The {start} start: validation accuracy {acc['theta0']:.3f} at theta0, "
                f"{acc['theta1']:.3f} at theta1 (mean over seeds used)."
            )
    names = list(usable)
    if not names and by_start:
        out.append(
            "No start has a usable seed: every seed of every start is degenerate (theta1 did not "
            "beat the majority class), so nothing here is usable. Set analysis.keep_degenerate: "
            "true to summarise them anyway, or try other seeds, a smaller learning rate or more "
            "epochs."
        )
    if len(names) < 2:
        return out
    differ, comparable = [], 0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rows_a = {r["pair"]: r for r in usable[a]["pairs"]}
            for r_b in usable[b]["pairs"]:
                r_a = rows_a.get(r_b["pair"])
                verdict = intervals_disjoint(r_a, r_b) if r_a else None
                comparable += verdict is not None
                if verdict:
                    differ.append(f"{r_b['pair']} ({a} {r_a['rho']:+.2f}, {b} {r_b['rho']:+.2f})")
    if differ:
        out.append(f"The starts differ (disjoint 95 % intervals) on: {'; '.join(differ)}.")
    elif comparable:
        out.append(
            "No pair's interval differs between the starts: not distinguishable at this precision."
        )
    else:
        out.append(
            "The starts cannot be compared pair by pair: no pair has an informative interval "
            f"in both (at least {MIN_INFORMATIVE_SEEDS} seeds are needed)."
        )
    return out


# --------------------------------------------------------------------------- the page's data


def build_findings(
    runs: Mapping[tuple[str, str, str], Mapping[str, Any]],
    config: Mapping[str, Any],
    methods: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``findings.json``: ``runs`` (one :func:`run_findings` block per (model, task, start) with
    its names, in the given order), ``tasks`` (per (model, task): ``sentences`` from
    :func:`starts_sentences`, and ``methods`` where full fine-tuning and LoRA were compared) and
    ``config`` (what the page says about the run: seeds, eval subset size).
    ``runs[(model, task, start)]`` holds the keyword arguments of :func:`run_findings`;
    ``methods`` the blocks of :func:`headplast.analysis.methods_comparison.methods_sections`
    (none with one method: no task then has a ``methods`` key)."""
    blocks = [
        {"model": m, "task": t, "start": s, **run_findings(**inputs)}
        for (m, t, s), inputs in runs.items()
    ]
    compared = {(b["model"], b["task"]): b["runs"] for b in methods}
    tasks = []
    for m, t in dict.fromkeys((b["model"], b["task"]) for b in blocks):
        by_start = {b["start"]: b for b in blocks if (b["model"], b["task"]) == (m, t)}
        tasks.append({"model": m, "task": t, "sentences": starts_sentences(by_start)})
        if (m, t) in compared:
            tasks[-1]["methods"] = compared[(m, t)]
    return {"runs": blocks, "tasks": tasks, "config": dict(config)}
