"""headplast.analysis.findings: the sentences follow the numbers (each rule, and a different
result changes the words), the tables carry pair_stats' numbers, the page is self-contained."""

import json
import re

import pandas as pd
import pytest

from headplast.analysis.findings import (
    FINDINGS_PAIRS,
    build_findings,
    freeze_rows,
    freeze_sentences,
    order_words,
    pair_row,
    pair_sentences,
    pruning_rows,
    pruning_sentences,
    random_band,
    run_findings,
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
    }
    return {**base, **kw}


def test_interval_excluding_zero_names_strength_and_sign():
    (s,) = pair_sentences(row())
    assert "a moderate positive association" in s and "excludes 0" in s
    (s,) = pair_sentences(row(rho=-0.62, lo=-0.8, hi=-0.4))
    assert "a strong negative association" in s
    assert [strength(v) for v in (0.05, -0.2, 0.45, 0.7)] == [
        "negligible",
        "weak",
        "moderate",
        "strong",
    ]


def test_interval_containing_zero_is_not_distinguishable():
    (s,) = pair_sentences(row(rho=0.1, lo=-0.1, hi=0.3))
    assert "not distinguishable from no association at this precision" in s
    assert "+0.10" in s and "-0.10 to +0.30" in s


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


def test_pruning_position_against_the_random_band():
    _, stats = pair_stats_for({1: 0.3, 2: 0.5})
    band = random_band(stats)
    assert band == pytest.approx((0.41, 0.47))
    auc = {
        "I_pre": {"mean": 0.5, "sd": 0.01, "per_seed": {"1": 0.5, "2": 0.5}},
        "G": {"mean": 0.44, "sd": 0.01, "per_seed": {"1": 0.44, "2": 0.44}},
        "I_post_reverse": {"mean": 0.3, "sd": 0.01, "per_seed": {"1": 0.3, "2": 0.3}},
        "random": {"mean": 0.44, "sd": 0.0, "per_seed": {"1": 0.43, "2": 0.45}},
    }
    rows = {r["order"]: r["position"] for r in pruning_rows(auc, band)}
    assert rows == {"I_pre": "above", "G": "within", "I_post_reverse": "below"}
    text = pruning_sentences(pruning_rows(auc, band))
    assert text[0].startswith("Pruning with smallest I_pre removed first keeps accuracy better")
    assert "largest I_post removed first loses accuracy faster" in text[2]
    assert order_words("Urel_reverse") == "largest Urel removed first"
    assert pruning_rows(auc, None)[0]["position"] is None


def freeze_table(ci_high, n_random=2):
    rows = [
        {
            "order": "Urel",
            "kind": "score",
            "n_seeds": 3,
            "delta_acc_mean": -0.05,
            "ci_low": -0.08,
            "ci_high": ci_high,
            "random_band_low": -0.01,
            "random_band_high": 0.0,
        },
    ]
    rows += [
        {
            "order": f"random_{i}",
            "kind": "random",
            "n_seeds": 3,
            "delta_acc_mean": -0.01 * i,
            "ci_low": None,
            "ci_high": None,
            "random_band_low": -0.01,
            "random_band_high": 0.0,
        }
        for i in range(n_random)
    ]
    return pd.DataFrame(rows)


def test_freeze_verdict_uses_the_interval_not_the_mean():
    below = freeze_rows(freeze_table(ci_high=-0.02))
    assert below[0]["position"] == "below" and below[0]["n_random"] == 2
    assert "costs more accuracy than freezing as many random heads" in freeze_sentences(below)[0]
    within = freeze_rows(freeze_table(ci_high=0.01))  # mean below the band, interval reaches it
    assert within[0]["position"] == "within"
    assert "not distinguishable" in freeze_sentences(within)[0]
    one = freeze_rows(freeze_table(ci_high=0.01, n_random=1))
    assert "the one random draw's" in freeze_sentences(one)[0]
    assert freeze_rows(None) == []
    one_seed = freeze_table(ci_high=float("nan"))  # one seed: no interval in freeze.csv
    one_seed["ci_low"] = float("nan")
    rows = freeze_rows(one_seed)
    assert rows[0]["position"] is None and rows[0]["ci_low"] is None
    json.dumps(rows, allow_nan=False)
    assert "there is no interval" in freeze_sentences(rows)[0]


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
