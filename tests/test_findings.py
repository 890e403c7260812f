"""headplast.analysis.findings: the sentences follow the numbers (each rule, and a different
result changes the words), the tables carry pair_stats' numbers, the page is self-contained."""

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from headplast.analysis.findings import (
    FINDINGS_PAIRS,
    accuracy_summary,
    adjust_pairs,
    build_findings,
    freeze_rows,
    freeze_sentences,
    intervals_disjoint,
    order_words,
    pair_row,
    pair_sentences,
    pruning_rows,
    pruning_sentences,
    run_findings,
    seed_sentences,
    starts_sentences,
    strength,
    subset_advice,
    subset_sentences,
)
from headplast.analysis.findings_page import fmt, interval_text, render_page
from headplast.analysis.summary import fisher_z_pool, pair_stats_across_seeds


def row(rho=0.4, lo=0.2, hi=0.6, n=5, ceiling=0.9, dis=0.44, r_xx=0.8, r_yy=1.0, **kw):
    base = {
        "pair": "I_pre~Urel",
        "x": "I_pre",
        "y": "Urel",
        "measured": True,
        "rho": rho,
        "ci_low": lo,
        "ci_high": hi,
        "n_seeds": n,
        "informative": n >= 3,
        "noise_ceiling": ceiling,
        "rho_disattenuated": dis,
        "r_xx": r_xx,
        "r_yy": r_yy,
        "per_seed": {},
        "p_head": 0.001,
        "rho_layer": None,
        "layer_ci_low": None,
        "layer_ci_high": None,
        "p_head_layer": None,
    }
    return {**base, **kw}


def test_interval_excluding_zero_names_strength_and_sign():
    """Issue 27: the strength word comes from the interval, not the point: the same word at both
    bounds gives it, otherwise the range between the bound nearer 0 and the farther one."""
    (s,) = pair_sentences(row(lo=0.32, hi=0.48))
    assert "a moderate positive association" in s and "head-level p = 0.001" in s
    (s,) = pair_sentences(row(rho=-0.62, lo=-0.8, hi=-0.55))
    assert "a strong negative association" in s
    (s,) = pair_sentences(row(rho=0.55, lo=0.04, hi=0.85))
    assert "a positive association of a strength between negligible and strong" in s
    assert "strong positive" not in s
    assert [strength(v) for v in (0.05, -0.2, 0.45, 0.7)] == [
        "negligible",
        "weak",
        "moderate",
        "strong",
    ]


def test_interval_containing_zero_is_not_distinguishable():
    (s,) = pair_sentences(row(rho=0.1, lo=-0.1, hi=0.3))
    assert "not distinguishable from no association" in s
    assert s.endswith(": the seed interval contains 0.")
    assert "+0.10" in s and "-0.10 to +0.30" in s


def test_an_association_needs_the_head_level_test_and_the_interval():
    """Issue 27: a narrow seed interval alone (seeds that agree because they share the encoder
    and the examples) calls nothing; the sentence says which condition failed."""
    (s,) = pair_sentences(row(p_head=0.3))
    assert "not distinguishable from no association" in s
    assert s.endswith(": the head-level test does not reject (p = 0.3).")
    (s,) = pair_sentences(row(rho=0.1, lo=-0.1, hi=0.3, p_head=0.3))
    assert s.endswith("does not reject (p = 0.3) and the seed interval contains 0.")
    (s,) = pair_sentences(row(p_head=None))
    assert s.endswith(": no head-level test in the summaries.")
    (s,) = pair_sentences(row(p_head=0.05))
    assert "not distinguishable" not in s  # p at the level rejects


@pytest.mark.parametrize(
    "raw_p, lay, want",
    [
        (0.001, (0.01, -0.1, 0.12, 0.8), "the association is carried by depth"),
        (0.4, (0.3, 0.2, 0.4, 0.001), "an association hidden by depth"),
        (0.001, (-0.3, -0.4, -0.2, 0.001), "the sign is reversed"),
        (0.001, (0.3, 0.2, 0.4, 0.001), None),
    ],
)
def test_the_layer_controlled_verdict_stands_beside_the_raw_one(raw_p, lay, want):
    rho_l, lo_l, hi_l, p_l = lay
    (s,) = pair_sentences(
        row(p_head=raw_p, rho_layer=rho_l, layer_ci_low=lo_l, layer_ci_high=hi_l, p_head_layer=p_l)
    )
    assert "; within layers " in s and f"layer-controlled rho {rho_l:+.2f}" in s
    for words in ("carried by depth", "hidden by depth", "sign is reversed"):
        assert (words in s) == (want is not None and words in want), s


def test_a_different_result_changes_the_words():
    assert pair_sentences(row(rho=0.1, lo=-0.1, hi=0.3)) != pair_sentences(row())


def test_fewer_than_three_seeds_is_not_informative_with_each_seed():
    (s,) = pair_sentences(row(n=2, per_seed={"1": 0.3, "2": 0.5}))
    assert "not informative" in s and "at least 3" in s
    assert "seed 1 +0.30, seed 2 +0.50" in s
    assert "association" not in s


def test_low_ceiling_names_the_less_reliable_measure():
    lines = pair_sentences(row(ceiling=0.3, r_xx=0.09, r_yy=1.0))
    assert len(lines) == 2
    assert "noise ceiling is 0.30: I_pre (split-half reliability 0.09)" in lines[1]
    assert len(pair_sentences(row(ceiling=0.5))) == 1  # at the limit: no sentence


def test_nonpositive_reliability_means_no_ceiling():
    lines = pair_sentences(row(ceiling=None, dis=None, r_xx=-0.05))
    assert any("split-half reliability of I_pre is not positive (-0.05)" in s for s in lines)


def test_disattenuated_beyond_one_is_explained():
    lines = pair_sentences(row(dis=1.54))
    assert any("+1.54, lies beyond +-1" in s and "underestimated" in s for s in lines)
    assert not any("beyond" in s for s in pair_sentences(row(dis=0.99)))


def test_unmeasured_pair_says_so():
    assert pair_sentences(pair_row("I_kl_pre~Urel", None, {})) == [
        "I_kl_pre and Urel: not measured in this run."
    ]


def pair_stats_for(rhos_by_seed):
    """pair_stats.json content from per-seed rho values of every findings pair."""
    stats = {}
    for seed, rho in rhos_by_seed.items():
        pairs = {}
        for name in FINDINGS_PAIRS:
            x, y = name.split("~")
            pairs[name] = {
                "x": x,
                "y": y,
                "rho": rho,
                "rho_layer": rho,
                "topk": {"overlap": 1, "k": 3, "expected": 0.75},
                "r_xx": 0.8,
                "r_yy": 1.0,
                "noise_ceiling": 0.8**0.5,
                "rho_disattenuated": rho / 0.8**0.5,
            }
        stats[seed] = {
            "pairs": pairs,
            "subset_advice": {
                "I_pre": {
                    "target": 0.9,
                    "n_for_target": 100 + seed,
                    "n_examples": 64,
                    "reliability": 0.8,
                },
                "G": {"target": 0.9, "n_for_target": 10, "n_examples": 64, "reliability": 0.99},
            },
            "pruning": {"random": {"n": 2, "min": 0.40 + seed / 100, "max": 0.45 + seed / 100}},
        }
    ps = pair_stats_across_seeds(stats)
    for block in ps["pairs"].values():  # as if the head-level tests had rejected
        for stat in ("rho", "rho_layer"):
            block[stat]["head_test"] = {"rho": block[stat]["mean"], "p": 0.001}
    ps.update({"seeds": list(rhos_by_seed), "degenerate_seeds": [], "degenerate_excluded": []})
    return ps, stats


def test_pair_row_carries_pair_stats_numbers():
    ps, stats = pair_stats_for({1: 0.3, 2: 0.5, 3: 0.4})
    r = pair_row("I_pre~Urel", ps["pairs"]["I_pre~Urel"], stats)
    pooled = fisher_z_pool([0.3, 0.5, 0.4])
    assert r["rho"] == pooled["mean"] and [r["ci_low"], r["ci_high"]] == pooled["ci"]
    assert r["informative"] and r["n_seeds"] == 3
    assert r["r_xx"] == pytest.approx(0.8) and r["r_yy"] == 1.0
    assert r["per_seed"] == {"1": 0.3, "2": 0.5, "3": 0.4}


def _advice_row(measure: str, reliability: float, n_for_target: int | None) -> dict:
    """One subset_advice row as findings builds it, at 2,000 examples measured and target 0.9."""
    return {
        "measure": measure,
        "n_examples": 2000,
        "reliability": reliability,
        "n_for_target": n_for_target,
        "target": 0.9,
        "noise": False,
        "n_available": None,
    }


def test_subset_advice_takes_the_largest_need_over_seeds():
    _, stats = pair_stats_for({1: 0.3, 2: 0.5})
    rows = subset_advice(stats)
    assert [r["measure"] for r in rows] == ["I_pre", "G"]
    assert rows[0]["n_for_target"] == 102 and rows[0]["n_examples"] == 64
    (s,) = subset_sentences(rows)
    assert "asks for 102 examples (I_pre, the least reliable; measured on 64" in s
    stats[1]["subset_advice"]["G"]["n_for_target"] = None
    rows = subset_advice(stats)
    assert any("No subset size can be advised for G" in s for s in subset_sentences(rows))


def one_run(rhos, degenerate=()):
    ps, stats = pair_stats_for(rhos)
    ps["degenerate_excluded"] = list(degenerate)
    rcs = {
        s: {"validation": {"theta0": {"accuracy": 0.3}, "theta1": {"accuracy": 0.7}}} for s in rhos
    }
    return {"pair_stats": ps, "pruning_auc": {}, "stats_by_seed": stats, "run_configs": rcs}


def test_starts_differ_only_on_disjoint_intervals():
    near = build_findings(
        {
            ("m", "t", "random"): one_run({1: 0.3, 2: 0.35, 3: 0.32}),
            ("m", "t", "probe"): one_run({1: 0.31, 2: 0.36, 3: 0.3}),
        },
        {"seeds": [1, 2, 3]},
    )
    assert "not distinguishable at this precision" in near["tasks"][0]["sentences"][-1]
    far = build_findings(
        {
            ("m", "t", "random"): one_run({1: 0.3, 2: 0.35, 3: 0.32}),
            ("m", "t", "probe"): one_run({1: -0.5, 2: -0.45, 3: -0.52}),
        },
        {"seeds": [1, 2, 3]},
    )
    assert far["tasks"][0]["sentences"][-1].startswith("The starts differ")
    assert "I_pre~Urel (random +0.32, probe -0.49)" in far["tasks"][0]["sentences"][-1]
    two = build_findings(
        {
            ("m", "t", "random"): one_run({1: 0.3, 2: 0.35}),
            ("m", "t", "probe"): one_run({1: -0.5, 2: -0.45}),
        },
        {"seeds": [1, 2]},
    )
    assert "cannot be compared" in two["tasks"][0]["sentences"][-1]


def test_no_usable_seed_is_stated_not_tabulated():
    words = "no usable seed: every seed [1, 2] is degenerate"
    dead = {
        "pair_stats": {
            "n_seeds": 0,
            "pairs": {},
            "seeds": [],
            "degenerate_excluded": [1, 2],
            "no_usable_seed": words,
        },
        "pruning_auc": {"no_usable_seed": words},
        "stats_by_seed": {},
        "run_configs": {},
    }
    f = build_findings(
        {("m", "t", "random"): dead, ("m", "t", "probe"): one_run({1: 0.3, 2: 0.5, 3: 0.4})},
        {"seeds": [1, 2, 3]},
    )
    block = f["runs"][0]
    assert block["sentences"]["seeds"] == [words] and block["sentences"]["pairs"] == []
    assert "The random start has no usable seed" in " ".join(f["tasks"][0]["sentences"])
    page = render_page(f)
    assert words in page
    assert page.count('data-pair="I_pre~Urel"') == 1  # only the usable start has a table


def test_degenerate_seeds_are_named():
    f = run_findings(**one_run({1: 0.3, 2: 0.5, 3: 0.4}, degenerate=[4]))
    assert (
        "Left out as degenerate" in f["sentences"]["seeds"][1] and "4" in f["sentences"]["seeds"][1]
    )


def test_page_tables_show_the_pooled_numbers_and_no_external_resource():
    f = build_findings({("m", "t", "random"): one_run({1: 0.3, 2: 0.5, 3: 0.4})}, {"seeds": [1]})
    page = render_page(f)
    r = f["runs"][0]["pairs"][0]
    cells = re.search(r'<tr data-pair="I_pre~Urel">(.*?)</tr>', page).group(1)
    assert f">{fmt(r['rho'])}<" in cells and f">{interval_text(r)}<" in cells
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    for name in FINDINGS_PAIRS:
        assert f'data-pair="{name}"' in page


def test_interval_text_says_not_informative():
    assert interval_text(row(n=2)) == "not informative (2 seeds)"
    assert interval_text(row()) == "+0.20 to +0.60"


def test_a_ceiling_on_fewer_seeds_than_the_rho_says_so():
    from headplast.analysis.findings_page import fewer_seeds

    assert fewer_seeds(row(n=2, ceiling_n_seeds=1)) == " (1 of 2 seeds)"
    assert fewer_seeds(row(n=2, ceiling_n_seeds=2)) == ""
    assert fewer_seeds(row(n=2, ceiling=None, ceiling_n_seeds=0)) == ""


# ------------------------------------------------------------------------ exact numbers and words
# The findings page is the product a researcher reads: the tests below pin whole rows and whole
# sentences, and the values at each rule's threshold, so that no rule can drift unnoticed.


def test_strength_bounds_belong_to_the_stronger_word():
    """|rho| exactly at a bound of STRENGTH takes the next word: 0.1 is weak, 0.3 moderate, 0.5
    strong (methods.md's table gives each word as "below the bound")."""
    assert [strength(v) for v in (0.0999, 0.1, -0.3, 0.5, -1.0)] == [
        "negligible",
        "weak",
        "moderate",
        "strong",
        "strong",
    ]


def test_pair_row_pins_every_field_and_averages_only_finite_reliabilities():
    """pair_row copies the block's pooled rho, interval, ceiling and disattenuated rho, and
    averages r_xx/r_yy over the seeds given, skipping missing and NaN values (a NaN would turn
    the whole mean to NaN and hide the limiting measure)."""
    block = {
        "rho": {
            "mean": 0.4,
            "ci": [0.2, 0.6],
            "n": 3,
            "informative": True,
            "values": {1: 0.3, 2: 0.5, 3: 0.4},
        },
        "noise_ceiling": {"mean": 0.7, "n": 2},
        "rho_disattenuated": {"mean": 0.57, "n": 2},
    }
    stats = {
        1: {"pairs": {"I_pre~Urel": {"r_xx": 0.6, "r_yy": 1.0}}},
        2: {"pairs": {"I_pre~Urel": {"r_xx": 0.8, "r_yy": None}}},
        3: {"pairs": {"I_pre~Urel": {"r_xx": float("nan"), "r_yy": 0.9}}},
    }
    assert pair_row("I_pre~Urel", block, stats) == {
        "pair": "I_pre~Urel",
        "x": "I_pre",
        "y": "Urel",
        "measured": True,
        "rho": 0.4,
        "ci_low": 0.2,
        "ci_high": 0.6,
        "p_head": None,
        "rho_layer": None,
        "layer_ci_low": None,
        "layer_ci_high": None,
        "p_head_layer": None,
        "n_seeds": 3,
        "informative": True,
        "noise_ceiling": 0.7,
        "rho_disattenuated": 0.57,
        "ceiling_n_seeds": 2,
        "r_xx": pytest.approx(0.7),
        "r_yy": pytest.approx(0.95),
        "per_seed": {"1": 0.3, "2": 0.5, "3": 0.4},
        "noise_sides": [],
        "rho_cross_half": None,
        "rho_same_half": None,
    }
    assert pair_row("G~Urel", None, stats) == {
        "pair": "G~Urel",
        "x": "G",
        "y": "Urel",
        "measured": False,
        "rho": None,
        "ci_low": None,
        "ci_high": None,
        "p_head": None,
        "rho_layer": None,
        "layer_ci_low": None,
        "layer_ci_high": None,
        "p_head_layer": None,
        "n_seeds": 0,
        "informative": False,
        "noise_ceiling": None,
        "rho_disattenuated": None,
        "ceiling_n_seeds": 0,
        "r_xx": None,
        "r_yy": None,
        "per_seed": {},
        "noise_sides": [],
        "rho_cross_half": None,
        "rho_same_half": None,
    }


def test_not_informative_sentence_is_exact_and_skips_missing_seeds():
    """With fewer than three seeds the sentence gives the pooled rho and each seed's rho that
    exists, and ends plainly when no seed has one."""
    assert pair_sentences(row(n=2, per_seed={})) == [
        "I_pre and Urel: with 2 seed(s) the interval over seeds is not informative (at least 3 "
        "are needed); the pooled rho is +0.40."
    ]
    assert pair_sentences(row(n=2, per_seed={"1": 0.3, "2": None})) == [
        "I_pre and Urel: with 2 seed(s) the interval over seeds is not informative (at least 3 "
        "are needed); the pooled rho is +0.40 (seed 1 +0.30)."
    ]


def test_an_interval_ending_at_zero_contains_zero():
    """An interval whose bound is exactly 0 does not exclude 0: no association is claimed."""
    assert pair_sentences(row(rho=0.2, lo=0.0, hi=0.4)) == [
        "I_pre and Urel: not distinguishable from no association (rho +0.20, 95 % seed interval "
        "+0.00 to +0.40, head-level p = 0.001): the seed interval contains 0."
    ]
    assert pair_sentences(row(rho=-0.2, lo=-0.4, hi=0.0)) == [
        "I_pre and Urel: not distinguishable from no association (rho -0.20, 95 % seed interval "
        "-0.40 to +0.00, head-level p = 0.001): the seed interval contains 0."
    ]
    assert pair_sentences(row()) == [
        "I_pre and Urel: a positive association of a strength between weak and strong (rho "
        "+0.40, 95 % seed interval +0.20 to +0.60, head-level p = 0.001)."
    ]


def test_low_ceiling_sentence_names_the_limiting_side_or_both():
    """The ceiling sentence names the side with the lower split-half reliability, or both
    measures when neither reliability is known."""
    assert pair_sentences(row(ceiling=0.45, r_xx=0.9, r_yy=0.2))[1] == (
        "The noise ceiling is 0.45: Urel (split-half reliability 0.20) limits what this pair can "
        "show; a larger eval subset raises it (subset advice below)."
    )
    assert pair_sentences(row(ceiling=0.3, r_xx=None, r_yy=None))[1] == (
        "The noise ceiling is 0.30: I_pre or Urel limits what this pair can show; a larger eval "
        "subset raises it (subset advice below)."
    )


def test_zero_reliability_is_not_positive_and_positive_ones_say_nothing():
    """A split-half reliability of exactly 0 has no ceiling and is named; positive reliabilities
    without a ceiling, or a missing one, add no sentence."""
    first = pair_sentences(row(ceiling=None, dis=None))[0]
    assert pair_sentences(row(ceiling=None, dis=None, r_xx=0.0, r_yy=None)) == [
        first,
        "No noise ceiling: the split-half reliability of I_pre is not positive (+0.00), so at "
        "this eval subset size its ranking of the heads is not distinguishable from noise.",
    ]
    assert pair_sentences(row(ceiling=None, dis=None, r_xx=0.8, r_yy=0.9)) == [first]


def test_disattenuated_rho_of_exactly_one_is_a_value():
    """Only |disattenuated rho| above 1 is flagged; -1.2 is, with its exact explanation."""
    assert len(pair_sentences(row(dis=1.0))) == 1
    assert pair_sentences(row(dis=-1.2))[1] == (
        "The disattenuated rho, -1.20, lies beyond +-1: the split-half reliabilities are "
        "underestimated at this subset size, so read it as at the noise ceiling, not as a value."
    )


def freeze_frame(scores, randoms):
    """freeze.csv rows: ``scores`` {order: {seed: change}}, ``randoms`` [{seed: change}] (one
    per random draw); the per-order summaries as freeze_table writes them."""

    def one(order, kind, by_seed):
        v = np.array(list(by_seed.values()), dtype=float)
        return {
            "order": order,
            "kind": kind,
            "n_seeds": v.size,
            "delta_acc_mean": v.mean(),
            "ci_low": v.mean() - 0.01,
            "ci_high": v.mean() + 0.01,
            "per_seed": ";".join(f"{k}:{x:.6f}" for k, x in by_seed.items()),
        }

    rows = [one(o, "score", d) for o, d in scores.items()]
    rows += [one(f"random_{i}", "random", d) for i, d in enumerate(randoms)]
    return pd.DataFrame(rows)


def _draws(rng, n_draws, seeds=(1, 2, 3), mean=0.0, sd=0.01):
    return [{s: float(mean + sd * rng.normal()) for s in seeds} for _ in range(n_draws)]


def test_freeze_verdict_pairs_by_seed_and_takes_the_draws_as_a_distribution():
    """Issue 27 item 6: a score set far below ten random draws in every seed is 'below' (its
    movement was needed); one inside the draws' spread is 'within'; two seeds, or one draw,
    give no verdict and say why."""
    rng = np.random.default_rng(0)
    randoms = _draws(rng, 10)
    frame = freeze_frame(
        {"Urel": {1: -0.08, 2: -0.07, 3: -0.09}, "G": {1: 0.001, 2: -0.002, 3: 0.0}}, randoms
    )
    rows = freeze_rows(frame)
    assert [(r["order"], r["position"]) for r in rows] == [("Urel", "below"), ("G", "within")]
    urel = rows[0]
    means = np.array([np.mean(list(d.values())) for d in randoms])
    scale = means.std(ddof=1) * np.sqrt(1 + 1 / 10)
    p = 2 * sps.t.sf(abs(-0.08 - means.mean()) / scale, 9)
    assert urel["p_random"] == pytest.approx(p, rel=1e-3)  # freeze.csv rounds to 1e-6
    assert urel["p_adj"] == pytest.approx(min(1, 2 * urel["p_random"]))
    paired = [
        v - np.mean([d[s] for d in randoms]) for s, v in {1: -0.08, 2: -0.07, 3: -0.09}.items()
    ]
    assert urel["effect"] == pytest.approx(np.mean(paired))
    text = freeze_sentences(rows)
    assert text[0].startswith(
        "Freezing the heads with the largest Urel during fine-tuning (exploratory) costs more "
        "accuracy than freezing as many random heads: their movement was needed (change -0.080 "
        "against the 10 random draws'"
    )
    assert "Holm-adjusted" in text[0] and "only" not in text[0]
    two = freeze_rows(freeze_frame({"Urel": {1: -0.08, 2: -0.07}}, _draws(rng, 10, (1, 2))))
    assert two[0]["position"] is None
    assert freeze_sentences(two) == [
        "Freezing the heads with the largest Urel during fine-tuning (exploratory): no verdict "
        "with 2 seed(s) (at least 3 are needed); it changed validation accuracy by -0.075."
    ]
    one = freeze_rows(freeze_frame({"Urel": {1: -0.08, 2: -0.07, 3: -0.09}}, _draws(rng, 1)))
    assert one[0]["position"] is None
    assert "1 random draw(s) (at least 2 are needed)" in freeze_sentences(one)[0]
    few = freeze_rows(freeze_frame({"Urel": {1: -0.08, 2: -0.07, 3: -0.09}}, _draws(rng, 3)))
    assert "; only 3 random draws)." in freeze_sentences(few)[0]
    assert freeze_rows(None) == [] and freeze_rows(pd.DataFrame()) == []


def test_pruning_verdict_uses_the_seed_means_of_each_random_order():
    """Issue 27 item 6: the pruning band is the distribution of each random order's seed-mean
    area; a score that beats every random order in every seed is 'above' (the old band, from
    the lowest to the highest single-draw area of any seed, could call it 'within')."""
    rng = np.random.default_rng(1)
    seed_shift = {1: -0.05, 2: 0.0, 3: 0.05}  # seeds differ a lot, the orders little
    randoms = {
        f"random_{i}": {"per_seed": {str(s): 0.5 + sh + 0.005 * rng.normal()
                                     for s, sh in seed_shift.items()}}
        for i in range(10)
    }  # fmt: skip
    auc = {
        "I_pre": {"mean": 0.52, "sd": 0.05,
                  "per_seed": {str(s): 0.52 + sh for s, sh in seed_shift.items()}},
        "G": {"mean": 0.5, "sd": 0.05,
              "per_seed": {str(s): 0.5 + sh for s, sh in seed_shift.items()}},
        "random": {"mean": 0.5, "sd": 0.05, "per_seed": {"1": 0.45, "2": 0.5, "3": 0.55}},
        "random_orders": randoms,
    }  # fmt: skip
    rows = {r["order"]: r for r in pruning_rows(auc)}
    assert set(rows) == {"I_pre", "G"}
    assert rows["I_pre"]["position"] == "above" and rows["G"]["position"] == "within"
    single = [a for d in randoms.values() for a in d["per_seed"].values()]
    assert min(single) < 0.52 < max(single)  # inside the old band
    text = pruning_sentences(pruning_rows(auc))
    assert text[0].startswith(
        "Pruning with smallest I_pre removed first (exploratory) keeps accuracy better than "
        "removing random heads (area 0.520 against the 10 random draws'"
    )
    assert order_words("Urel_reverse") == "largest Urel removed first"
    without = pruning_rows({k: v for k, v in auc.items() if k != "random_orders"})
    assert without[0]["position"] is None
    assert "0 random draw(s)" in pruning_sentences(without)[0]


def test_a_random_like_set_is_called_at_most_at_its_level():
    """Simulated truth: the score's set behaves like one more random draw (seed effects shared,
    5 seeds, 10 draws). Over 400 runs the freeze rule calls below/above in at most 5 % plus
    Monte-Carlo error (the old band rule: about 20 %); a clear effect is called nearly always."""
    rng = np.random.default_rng(7)
    runs, called, found = 400, 0, 0
    seeds = (1, 2, 3, 4, 5)
    for _ in range(runs):
        seed_eff = {s: 0.02 * rng.normal() for s in seeds}
        draws = [{s: seed_eff[s] + 0.01 * rng.normal() for s in seeds} for _ in range(11)]
        score, randoms = draws[0], draws[1:]
        rows = freeze_rows(freeze_frame({"Urel": score}, randoms))
        called += rows[0]["position"] in ("below", "above")
        clear = {s: v - 0.05 for s, v in score.items()}
        found += freeze_rows(freeze_frame({"Urel": clear}, randoms))[0]["position"] == "below"
    assert called / runs <= 0.05 + 3 * (0.05 * 0.95 / runs) ** 0.5
    assert found / runs >= 0.9


def test_subset_advice_of_one_seed_orders_known_needs_first():
    """With one seed each measure's advice is that seed's; the measures that can be advised come
    first, most examples first, and those whose reliability is not positive come last."""
    advice = {
        "G": {"target": 0.9, "n_for_target": None, "n_examples": 2000, "reliability": -0.1},
        "I_pre": {"target": 0.9, "n_for_target": 4500, "n_examples": 2000, "reliability": 0.8},
        "Urel": {"target": 0.9, "n_for_target": 2000, "n_examples": 2000, "reliability": 0.9},
    }
    rows = subset_advice({7: {"subset_advice": advice}})
    assert rows == [
        _advice_row("I_pre", 0.8, 4500),
        _advice_row("Urel", 0.9, 2000),
        _advice_row("G", -0.1, None),
    ]
    assert subset_sentences(rows) == [
        "A split-half reliability of 0.9 for every measure asks for 4,500 examples (I_pre, the "
        "least reliable; measured on 2,000, reliability 0.80).",
        "No subset size can be advised for G: a seed's split-half reliability is not positive.",
    ]


def test_subset_need_equal_to_the_examples_measured_is_met():
    """A need of exactly the examples measured is met already; every measure without advice is
    named."""
    rows = [
        _advice_row("Urel", 0.9, 2000),
        _advice_row("G", -0.1, None),
        _advice_row("Ppred", 0.0, None),
    ]
    assert subset_sentences(rows) == [
        "A split-half reliability of 0.9 for every measure is met at the 2,000 examples measured.",
        "No subset size can be advised for G, Ppred: a seed's split-half reliability is not "
        "positive.",
    ]
    assert subset_sentences([]) == []


def test_accuracy_summary_means_the_seeds_that_have_a_record():
    """Validation accuracy at theta0 and theta1 is the mean over the seeds whose record has it."""
    rcs = {
        1: {"validation": {"theta0": {"accuracy": 0.3}, "theta1": {"accuracy": 0.7}}},
        2: {"validation": {"theta0": {"accuracy": 0.5}, "theta1": {"accuracy": 0.9}}},
        3: {},
    }
    assert accuracy_summary(rcs) == {"theta0": pytest.approx(0.4), "theta1": pytest.approx(0.8)}
    assert accuracy_summary({}) == {"theta0": None, "theta1": None}


def test_run_findings_uses_only_the_summarised_seeds():
    """A degenerate seed's stats and run record (seed 4, with very different numbers) feed
    nothing: accuracy, reliabilities, the random band and the subset advice rest on seeds 1-3."""
    run = one_run({1: 0.3, 2: 0.5, 3: 0.4}, degenerate=[4])
    run["stats_by_seed"][4] = {
        "pairs": {name: {"r_xx": 0.1, "r_yy": 0.1} for name in FINDINGS_PAIRS},
        "subset_advice": {
            "I_pre": {"target": 0.9, "n_for_target": 9999, "n_examples": 64, "reliability": 0.1}
        },
        "pruning": {"random": {"n": 2, "min": 0.1, "max": 0.9}},
    }
    run["run_configs"][4] = {
        "validation": {"theta0": {"accuracy": 0.9}, "theta1": {"accuracy": 0.1}}
    }
    run["pruning_auc"] = {
        "I_pre": {"mean": 0.5, "sd": 0.01, "per_seed": {"1": 0.5, "2": 0.5, "3": 0.5}},
        "random_orders": {
            f"random_{i}": {"per_seed": {"1": 0.4 + i / 100, "2": 0.41, "3": 0.42}}
            for i in range(4)
        },
    }
    randoms = [{1: -0.01 * i, 2: -0.005, 3: 0.0} for i in range(3)]
    f = run_findings(**run, freeze=freeze_frame({"Urel": {1: -0.08, 2: -0.07, 3: -0.09}}, randoms))
    assert list(f) == [
        "seeds",
        "degenerate",
        "no_usable_seed",
        "accuracy",
        "pairs",
        "pruning",
        "freeze",
        "subset_advice",
        "sentences",
    ]
    assert (f["seeds"], f["degenerate"], f["no_usable_seed"]) == ([1, 2, 3], [4], None)
    assert f["accuracy"] == {"theta0": pytest.approx(0.3), "theta1": pytest.approx(0.7)}
    assert [p["pair"] for p in f["pairs"]] == list(FINDINGS_PAIRS)
    assert f["pairs"][0]["r_xx"] == pytest.approx(0.8) and f["pairs"][0]["informative"]
    assert [(r["order"], r["position"], r["n_seeds"], r["n_random"]) for r in f["pruning"]] == [
        ("I_pre", "above", 3, 4)
    ]
    assert [(r["order"], r["position"]) for r in f["freeze"]] == [("Urel", "below")]
    assert [(r["measure"], r["n_for_target"]) for r in f["subset_advice"]] == [
        ("I_pre", 103),
        ("G", 10),
    ]
    s = f["sentences"]
    assert list(s) == ["seeds", "pairs", "pruning", "freeze", "subset_advice"]
    assert s["seeds"] == [
        "Seeds used: 1, 2, 3.",
        "Left out as degenerate (theta1 did not beat the majority class): seed(s) 4.",
    ]
    assert s["pairs"] == [t for r in f["pairs"] for t in pair_sentences(r)] and len(s["pairs"]) == 8
    assert s["pruning"] == pruning_sentences(f["pruning"]) and len(s["pruning"]) == 1
    assert s["freeze"] == freeze_sentences(f["freeze"]) and len(s["freeze"]) == 1
    assert s["subset_advice"] == subset_sentences(f["subset_advice"])
    assert s["subset_advice"][0].startswith("A split-half reliability of 0.9 for every measure ")


def test_a_start_without_usable_seed_tabulates_nothing():
    """When every seed is degenerate the block says so and holds no pruning or freeze rows, even
    where those files hold rows; its only sentence is the summaries' own words."""
    words = "no usable seed: every seed [1, 2] is degenerate"
    dead = {
        "pair_stats": {
            "n_seeds": 0,
            "pairs": {},
            "seeds": [],
            "degenerate_excluded": [1, 2],
            "no_usable_seed": words,
        },
        "pruning_auc": {"I_pre": {"mean": 0.5, "sd": 0.01, "per_seed": {"1": 0.5}}},
        "stats_by_seed": {},
        "run_configs": {},
    }
    f = run_findings(**dead, freeze=freeze_frame({"Urel": {1: -0.08}}, [{1: 0.0}]))
    assert (f["seeds"], f["degenerate"], f["no_usable_seed"]) == ([], [1, 2], words)
    assert f["pruning"] == [] and f["freeze"] == [] and f["subset_advice"] == []
    assert f["accuracy"] == {"theta0": None, "theta1": None}
    assert f["sentences"] == {
        "seeds": [words],
        "pairs": [],
        "pruning": [],
        "freeze": [],
        "subset_advice": [],
    }


def test_seed_sentences_name_every_seed():
    """The seeds used and those left out are listed, comma-separated; a no-usable-seed record
    without words of its own names the degenerate seeds."""
    assert seed_sentences([1, 2, 3], [4, 5], None) == [
        "Seeds used: 1, 2, 3.",
        "Left out as degenerate (theta1 did not beat the majority class): seed(s) 4, 5.",
    ]
    assert seed_sentences([], [1, 2], {"message": "every seed failed"}) == ["every seed failed"]
    assert seed_sentences([], [1, 2], {"degenerate": [1, 2]}) == [
        "No usable seed: every seed (1, 2) is degenerate; nothing is summarised here."
    ]


def interval(pair, rho, lo, hi, informative=True):
    return {"pair": pair, "rho": rho, "ci_low": lo, "ci_high": hi, "informative": informative}


def test_touching_intervals_are_not_disjoint():
    """Two intervals that share an end point overlap; a missing bound gives no verdict."""
    a, b = interval("p", 0.2, 0.1, 0.3), interval("p", 0.4, 0.3, 0.5)
    assert intervals_disjoint(a, b) is False and intervals_disjoint(b, a) is False
    assert intervals_disjoint(a, interval("p", 0.4, 0.31, 0.5)) is True
    assert intervals_disjoint(interval("p", 0.4, 0.31, 0.5), a) is True
    assert intervals_disjoint(a, interval("p", 0.4, None, 0.5)) is None
    assert intervals_disjoint(interval("p", 0.4, 0.31, None), a) is None


def start(pairs, theta0=0.3, theta1=0.75):
    return {
        "no_usable_seed": None,
        "accuracy": {"theta0": theta0, "theta1": theta1},
        "pairs": pairs,
    }


def test_starts_sentences_list_each_differing_pair_once():
    """A start without usable seed is named and skipped, accuracies are given where both points
    are known, and each pair with disjoint intervals is listed once with both starts' rho; a
    pair only one start has is not compared."""
    by_start = {
        "dead": {"no_usable_seed": "words"},
        "random": start([interval("I_pre~Urel", 0.4, 0.3, 0.5), interval("G~Urel", 0.5, 0.4, 0.6)]),
        "probe": start(
            [
                interval("I_pre~Urel", -0.4, -0.5, -0.3),
                interval("G~Urel", -0.3, -0.4, -0.2),
                interval("Ppred~Urel", 0.1, 0.0, 0.2),
            ],
            theta0=0.5,
            theta1=None,
        ),
    }
    assert starts_sentences(by_start) == [
        "The dead start has no usable seed; it is not compared.",
        "The random start: validation accuracy 0.300 at theta0, 0.750 at theta1 (mean over seeds "
        "used).",
        "The starts differ (disjoint 95 % intervals) on: I_pre~Urel (random +0.40, probe -0.40); "
        "G~Urel (random +0.50, probe -0.30).",
    ]


def test_starts_with_one_overlapping_pair_are_not_distinguishable():
    """One comparable, overlapping pair is enough to say the starts do not differ, even when the
    last pair compared has no informative interval; with none comparable, that is said."""
    a = start([interval("I_pre~Urel", 0.4, 0.3, 0.5), interval("G~Urel", 0.5, 0.4, 0.6)])
    b = start(
        [interval("I_pre~Urel", 0.45, 0.35, 0.55), interval("G~Urel", 0.5, None, None, False)]
    )
    assert starts_sentences({"random": a, "probe": b})[-1] == (
        "No pair's interval differs between the starts: not distinguishable at this precision."
    )
    c = start([interval("I_pre~Urel", 0.4, None, None, False)])
    assert starts_sentences({"random": a, "probe": c})[-1] == (
        "The starts cannot be compared pair by pair: no pair has an informative interval in both "
        "(at least 3 seeds are needed)."
    )
    assert len(starts_sentences({"random": a})) == 1  # one start: nothing to compare


def test_no_usable_start_is_said_once_with_the_way_out():
    """Every start without a usable seed: each is named, then one sentence says nothing here is
    usable and names the config key; with one usable start that sentence is not said."""
    dead = {"no_usable_seed": "words"}
    out = starts_sentences({"random": dead, "probe": dead})
    assert out[:2] == [
        "The random start has no usable seed; it is not compared.",
        "The probe start has no usable seed; it is not compared.",
    ]
    assert out[2] == (
        "No start has a usable seed: every seed of every start is degenerate (theta1 did not "
        "beat the majority class), so nothing here is usable. Set analysis.keep_degenerate: true "
        "to summarise them anyway, or try other seeds, a smaller learning rate or more epochs."
    )
    assert len(out) == 3
    alive = starts_sentences({"random": dead, "probe": start([])})
    assert not [s for s in alive if s.startswith("No start")]
    assert starts_sentences({}) == []


def test_build_findings_groups_starts_per_model_and_task_and_keeps_the_config():
    """findings.json holds one block per run in the given order, one sentence group per (model,
    task) in first-seen order, and the config as given."""
    runs = {
        ("m", "t1", "random"): one_run({1: 0.3, 2: 0.5, 3: 0.4}),
        ("m", "t2", "random"): one_run({1: 0.3, 2: 0.5, 3: 0.4}),
        ("m", "t1", "probe"): one_run({1: 0.3, 2: 0.5, 3: 0.4}),
    }
    f = build_findings(runs, {"seeds": [1, 2, 3], "eval_subset": 64})
    assert list(f) == ["runs", "tasks", "config"]
    assert f["config"] == {"seeds": [1, 2, 3], "eval_subset": 64}
    assert [(b["model"], b["task"], b["start"]) for b in f["runs"]] == list(runs)
    assert [(t["model"], t["task"]) for t in f["tasks"]] == [("m", "t1"), ("m", "t2")]
    assert f["tasks"][1]["sentences"] == [
        "The random start: validation accuracy 0.300 at theta0, 0.700 at theta1 (mean over seeds "
        "used)."
    ]


def test_the_primary_question_is_unadjusted_and_the_rest_holm_adjusted():
    """Issue 27 item 7: I_pre~Urel's raw head-level test is the primary question (level 0.05,
    unadjusted); every other head-level test of the run's informative pairs, the primary pair's
    layer-controlled one included, is one Holm family; a pair that would pass alone can fail
    after adjustment, and its sentence says so with both p."""
    rows = [
        row(pair="I_pre~Urel", x="I_pre", y="Urel", p_head=0.04, rho_layer=0.3,
            layer_ci_low=0.2, layer_ci_high=0.4, p_head_layer=0.001),
        row(pair="G~Urel", x="G", y="Urel", p_head=0.03),
        row(pair="Ppred~Urel", x="Ppred", y="Urel", p_head=0.001, n=2),  # no verdict
    ]  # fmt: skip
    out = adjust_pairs(rows)
    assert [r["primary"] for r in out] == [True, False, False]
    assert out[0]["p_head_adj"] is None and out[0]["p_head_layer_adj"] == pytest.approx(0.002)
    assert out[1]["p_head_adj"] == pytest.approx(0.03)  # second of 2: times 1
    assert out[2]["p_head_adj"] is None
    (s,) = pair_sentences(out[0])
    assert s.startswith("I_pre and Urel (primary question): a ")
    assert "head-level p = 0.04)" in s and "Holm-adjusted 0.002" in s
    (s,) = pair_sentences(out[1])
    assert s.startswith("G and Urel (exploratory): a ")
    three = adjust_pairs([*rows[:2], row(pair="I_post~Urel", x="I_post", y="Urel", p_head=0.04)])
    (s,) = pair_sentences(three[1])
    assert "head-level p = 0.03, Holm-adjusted 0.06" in s
    assert s.endswith("does not reject (Holm-adjusted p = 0.06).")


def test_a_noise_level_reliability_withholds_ceiling_disattenuation_and_advice():
    """Issue 27 item 4: a side whose split-half reliability a seed cannot tell from noise gets
    no ceiling and no disattenuated rho (the row's are emptied even where other seeds had one),
    a sentence with its reliability and the null's 95th percentile, and no subset advice."""
    ps, stats = pair_stats_for({1: 0.3, 2: 0.5, 3: 0.4})
    for seed, st in stats.items():
        st["reliability"] = {
            "I_pre": {
                "reliability": 0.15,
                "noise_p95": 0.2,
                "distinguishable_from_noise": seed > 1,
            },
            "Urel": {"reliability": 1.0},
        }
    r = pair_row("I_pre~Urel", ps["pairs"]["I_pre~Urel"], stats)
    assert r["noise_ceiling"] is None and r["rho_disattenuated"] is None
    assert r["noise_sides"] == [
        {"measure": "I_pre", "reliability": pytest.approx(0.15), "noise_p95": pytest.approx(0.2)}
    ]
    lines = pair_sentences(r)
    assert lines[1] == (
        "The split-half reliability of I_pre (+0.15; noise alone reaches 0.20 at its 95th "
        "percentile) is not distinguishable from noise at this subset size: no noise ceiling or "
        "disattenuated rho is given."
    )
    assert len(lines) == 2
    advice = {
        "I_pre": {"target": 0.9, "n_for_target": None, "n_examples": 2000, "reliability": 0.15,
                  "distinguishable_from_noise": False},
        "G": {"target": 0.9, "n_for_target": 9000, "n_examples": 2000, "reliability": 0.7,
              "n_available": 5000},
    }  # fmt: skip
    rows = subset_advice({1: {"subset_advice": advice}})
    assert [r["noise"] for r in rows] == [False, True]
    assert subset_sentences(rows) == [
        "A split-half reliability of 0.9 for every measure would need 9,000 examples (G, the "
        "least reliable; reliability 0.70 on 2,000), more than the validation split's 5,000: no "
        "eval subset of this task reaches it.",
        "No subset size is advised for I_pre: a seed's split-half reliability is not "
        "distinguishable from noise at this subset size.",
    ]


def test_shared_examples_are_named_with_the_cross_half_rho():
    """Issue 27 item 5: a pair whose sides come from the same examples says its ceiling and
    disattenuated rho are cross-half, and gives the cross-half rho beside the same-half one."""
    r = row(pair="I_pre~I_post", x="I_pre", y="I_post", rho_cross_half=0.1, rho_same_half=0.36)
    lines = pair_sentences(r)
    assert lines[1] == (
        "I_pre and I_post come from the same eval examples, whose errors they share: the noise "
        "ceiling and disattenuated rho use cross-half estimates (I_pre on one half, I_post on the "
        "other), rho +0.10 across halves against +0.36 within a half."
    )


def test_pruning_rows_read_the_cross_fitted_areas_not_the_in_sample_ones():
    """From pruning.jsonl rows of both fits to the findings' pruning rows: each order's area and
    its paired effect against the random orders are the cross-fitted ones (here 0.1 lower than
    in-sample for every order); the in-sample areas stay in pruning_auc.json beside them."""
    from headplast.analysis.pruning_auc import auc_across_seeds, random_order_areas
    from tests.pruning_rows import synthetic_curves

    by_seed = {
        s: synthetic_curves(shift, in_sample=0.2) for s, shift in ((1, 0.0), (2, 0.1), (3, 0.05))
    }
    auc = {**auc_across_seeds(by_seed), "random_orders": random_order_areas(by_seed)}
    rows = {r["order"]: r for r in pruning_rows(auc)}
    assert set(rows) == {"I_pre", "Urel", "I_post_reverse"}
    # acc at half the heads = top + shift: area 0.25 * (0.8 + 2 * (top + shift) + 0.3)
    assert rows["I_pre"]["auc"] == pytest.approx(0.25 * (1.1 + 2 * 0.95))
    assert auc["I_pre"]["in_sample_mean"] == pytest.approx(rows["I_pre"]["auc"] + 0.1)
    assert auc["random_orders"]["random_0"]["per_seed"]["1"] == pytest.approx(0.25 * 2.3)
    # paired by seed: I_pre minus the mean of the two random orders is 0.5 * (0.9 - 0.55)
    assert rows["I_pre"]["effect"] == pytest.approx(0.175)
    assert rows["I_post_reverse"]["effect"] == pytest.approx(0.5 * (0.4 - 0.55))
