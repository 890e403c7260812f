"""headplast.analysis.random_baseline and the random pruning orders' areas: a score's set or order
against as many random heads, paired by seed, the draws as a distribution (issue 27 item 6)."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from headplast.analysis.pruning_auc import random_order_areas
from headplast.analysis.random_baseline import MIN_SEEDS, against_random, position
from tests.pruning_rows import synthetic_curves


def test_against_random_by_hand():
    score = {1: 0.5, 2: 0.6, 3: 0.7}
    draws = {
        "r0": {1: 0.4, 2: 0.5, 3: 0.5},
        "r1": {1: 0.45, 2: 0.45, 3: 0.6},
        "r2": {1: 0.5, 2: 0.5, 3: 0.5},
    }
    out = against_random(score, draws)
    paired = [0.5 - 0.45, 0.6 - 0.48333333, 0.7 - 0.53333333]
    assert out["effect"] == pytest.approx(np.mean(paired))
    half = sps.t.ppf(0.975, 2) * np.std(paired, ddof=1) / math.sqrt(3)
    assert out["effect_ci"] == pytest.approx([np.mean(paired) - half, np.mean(paired) + half])
    means = np.array([np.mean([0.4, 0.5, 0.5]), 0.5, 0.5])
    scale = means.std(ddof=1) * math.sqrt(1 + 1 / 3)
    assert out["random_mean"] == pytest.approx(means.mean())
    assert out["pi"] == pytest.approx(
        [means.mean() - sps.t.ppf(0.975, 2) * scale, means.mean() + sps.t.ppf(0.975, 2) * scale]
    )
    assert out["p_random"] == pytest.approx(2 * sps.t.sf(abs(0.6 - means.mean()) / scale, 2))
    assert out["informative"] and out["n_seeds"] == 3 and out["n_random"] == 3


def test_seeds_missing_anywhere_are_left_out_and_too_few_give_no_verdict():
    score = {1: 0.5, 2: 0.6, 3: 0.7}
    draws = {"r0": {1: 0.4, 2: 0.5}, "r1": {1: 0.45, 2: 0.45, 3: 0.6}}
    out = against_random(score, draws)
    assert out["n_seeds"] == 2 < MIN_SEEDS and not out["informative"]
    assert position(out, 0.001) is None
    none = against_random(score, {})
    assert none["score_mean"] == pytest.approx(0.6) and none["p_random"] is None
    same = against_random(score, {"a": {1: 0.5, 2: 0.5, 3: 0.5}, "b": {1: 0.5, 2: 0.5, 3: 0.5}})
    assert same["p_random"] is None and not same["informative"]  # draws that do not vary


def test_position_needs_the_test_and_the_paired_interval():
    base = {"informative": True, "effect": -0.1, "effect_ci": [-0.2, -0.05]}
    assert position(base, 0.01) == "below"
    assert position({**base, "effect": 0.1, "effect_ci": [0.05, 0.2]}, 0.01) == "above"
    assert position(base, 0.2) == "within"
    assert position({**base, "effect_ci": [-0.2, 0.01]}, 0.01) == "within"
    assert position(base, None) == "within"


def test_random_order_areas_keep_each_draw_per_seed():
    """Each random order's area per seed (the same draw in every seed), apart from the score
    orders; the random orders' mean over draws equals auc_across_seeds' per-seed random mean."""
    areas = random_order_areas({1: synthetic_curves(0.0), 2: synthetic_curves(0.1)})
    assert list(areas) == ["random_0", "random_1"]
    # 0.25 * (0.8 + 2 * top + 0.3): top 0.6 / 0.5 in seed 1, +0.1 in seed 2
    assert areas["random_0"]["per_seed"] == {"1": pytest.approx(0.575), "2": pytest.approx(0.625)}
    assert areas["random_1"]["mean"] == pytest.approx((0.525 + 0.575) / 2)
    no_random = [r for r in synthetic_curves(0.0) if r["kind"] != "random"]
    assert random_order_areas({1: no_random}) == {}
