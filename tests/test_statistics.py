"""headplast.analysis.statistics against scipy and hand-computed values."""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from headplast.analysis.correlation import has_constant_side, spearman
from headplast.analysis.statistics import (
    PAIRS,
    REQUIRED_COLUMNS,
    _spearman_vectorized,
    bootstrap_ci,
    cluster_resamples,
    counter_examples,
    layer_controlled_spearman,
    pair_statistics,
    quantile_mask,
    read_heads,
    spearman_permutation,
    top_k_indices,
    topk_overlap,
    validate_heads,
)
from headplast.io import ArtifactError, finite_or_none, json_value, read_csv_table
from headplast.measure.uncertainty import t_quantile


def make_heads(seed: int = 0, n_layers: int = 4, n_heads: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_layers * n_heads
    layer = np.repeat(np.arange(n_layers), n_heads)
    base = rng.lognormal(size=n)
    df = pd.DataFrame({"layer": layer, "head": np.tile(np.arange(n_heads), n_layers)})
    df["I_pre"] = base * rng.lognormal(0, 0.3, n)
    df["I_post"] = df["I_pre"] * rng.lognormal(0, 0.3, n)
    df["G"] = base * rng.lognormal(0, 0.5, n)
    df["F"] = df["G"] ** 2 * (1 + rng.uniform(size=n))
    df["Ppred"] = df["G"] ** 2 / df["F"]
    df["Urel"] = (1 + layer) * rng.lognormal(0, 0.3, n)
    df["U"] = 3 * df["Urel"]
    for c in ("Uq", "Uk", "Uv", "Uo"):
        df[c] = df["U"] / 2
    df["A_js"] = 0.05 * df["Urel"] * rng.lognormal(0, 0.3, n)
    df["C_rel"] = 10 * df["A_js"]
    return df


# --------------------------------------------------------------------------- Spearman


def test_pairs_are_the_spec_pairs():
    assert PAIRS == (
        ("I_pre", "Urel"),
        ("I_pre", "U"),
        ("I_pre", "G"),
        ("I_pre", "Ppred"),
        ("G", "Urel"),
        ("Ppred", "Urel"),
        ("I_pre", "I_post"),
        ("I_post", "Urel"),
        ("I_pre", "A_js"),
        ("I_post", "A_js"),
        ("Urel", "A_js"),
        ("G", "A_js"),
    )


def test_spearman_rho_matches_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    rho, p = spearman_permutation(x, y, n_permutations=999, seed=0)
    assert rho == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    assert 0 < p <= 1


def test_spearman_permutation_reproducible_and_seed_dependent():
    rng = np.random.default_rng(2)
    x = rng.normal(size=25)
    y = 0.3 * x + rng.normal(size=25)
    a = spearman_permutation(x, y, n_permutations=500, seed=7)
    b = spearman_permutation(x, y, n_permutations=500, seed=7)
    c = spearman_permutation(x, y, n_permutations=500, seed=8)
    assert a == b
    assert a[0] == c[0]
    assert a[1] != c[1]


def _loop_p(rx, ry, n_permutations, seed, observed):
    """Reference: (1 + #{|r| >= |observed|}) / (1 + n) from a plain loop of numpy permutations of
    ``ry`` (np.corrcoef of the permuted pairing), drawn one by one from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    extreme = 0
    for _ in range(n_permutations):
        r = np.corrcoef(rx, rng.permutation(ry))[0, 1]
        extreme += abs(r) >= abs(observed) - 1e-12
    return (1 + extreme) / (1 + n_permutations)


@pytest.mark.parametrize("n,n_permutations,seed", [(12, 400, 0), (30, 2500, 5)])
def test_spearman_permutation_p_is_the_documented_estimator(n, n_permutations, seed):
    # 2500 > one chunk of 2000: the draws continue across chunks as in one sequential loop
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.25 * x + rng.normal(size=n)
    rho, p = spearman_permutation(x, y, n_permutations, seed)
    ref = _loop_p(sps.rankdata(x), sps.rankdata(y), n_permutations, seed, rho)
    assert p == ref  # the same draws, so exactly equal
    assert 0.05 < p < 0.95  # a case where many null draws are extreme (not the trivial 1/(1+n))


def test_spearman_permutation_p_counts_ties_with_the_observed_as_extreme():
    # n = 4 and y ordered like x: |rho| = 1, reached by 2 of the 24 pairings (identity, reversal).
    # Documented estimator: (1 + #extreme) / (1 + n); about 2/24 of the draws are extreme.
    x = np.array([1.0, 2.0, 3.0, 4.0])
    rho, p = spearman_permutation(x, x * 10, n_permutations=1000, seed=0)
    assert rho == pytest.approx(1.0)
    ref = _loop_p(x, x, 1000, 0, 1.0)
    assert p == ref
    assert p == pytest.approx(2 / 24, abs=0.03)
    assert p != pytest.approx(2 / 24, abs=1e-9)  # not scipy's exact enumeration


def test_spearman_permutation_p_is_small_for_strong_and_large_for_none():
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    _, p_strong = spearman_permutation(x, x + 0.1 * rng.normal(size=60), 999, 0)
    _, p_none = spearman_permutation(x, rng.normal(size=60), 999, 0)
    assert p_strong <= 0.002
    assert p_none > 0.05


def test_spearman_constant_is_nan():
    rho, p = spearman_permutation([1, 2, 3, 4], [5, 5, 5, 5], 99, 0)
    assert math.isnan(rho) and math.isnan(p)


# --------------------------------------------------------------------------- layer-controlled


def test_layer_controlled_removes_a_pure_layer_effect():
    # both measures grow with depth; within a layer they are independent noise
    rng = np.random.default_rng(4)
    layer = np.repeat(np.arange(12), 12)
    x = layer * 10 + rng.uniform(size=layer.size)
    y = layer * 10 + rng.uniform(size=layer.size)
    raw = sps.spearmanr(x, y).statistic
    rho_l, p_l = layer_controlled_spearman(x, y, layer, n_permutations=999, seed=0)
    assert raw > 0.9
    assert abs(rho_l) < 0.2
    assert p_l > 0.05


def test_layer_controlled_equals_mean_of_per_layer_spearman():
    # equal layer sizes, no ties: pooled centred within-layer ranks = mean per-layer rho
    rng = np.random.default_rng(5)
    layer = np.repeat(np.arange(3), 8)
    x = rng.normal(size=24)
    y = x + rng.normal(size=24)
    rho_l, _ = layer_controlled_spearman(x, y, layer, n_permutations=99, seed=0)
    per_layer = [sps.spearmanr(x[layer == k], y[layer == k]).statistic for k in range(3)]
    assert rho_l == pytest.approx(np.mean(per_layer), abs=1e-12)


def test_layer_controlled_keeps_within_layer_agreement_and_is_reproducible():
    layer = np.repeat(np.arange(3), 5)
    x = np.tile(np.arange(5.0), 3)
    y = x * 2 + np.repeat([100.0, 0.0, 50.0], 5)  # same order in each layer, shuffled offsets
    rho_l, p = layer_controlled_spearman(x, y, layer, n_permutations=2000, seed=1)
    assert rho_l == pytest.approx(1.0)
    # exact null: P(all three layers perfectly ordered, same sign) = 2 / 120**3, so p = 1/2001
    assert p == pytest.approx(1 / 2001)
    assert layer_controlled_spearman(x, y[::-1], layer, 500, 3) == layer_controlled_spearman(
        x, y[::-1], layer, 500, 3
    )


def test_layer_controlled_null_permutes_within_layers_only():
    """Hand-enumerated null where the within-layer and the global null differ.

    Layers [0, 1, 1, 1] and y = x: the centred within-layer ranks are rx = ry = [0, -1, 0, 1]
    (layer 0 has one head: rank 1, centred 0), rho_layer = 1.
    Within-layer null: the 6 orders of layer 1's ranks; |rho| = 1 for 2 of them: p -> 1/3.
    Global null (all 4 heads permuted): |rho| = 1 only when heads 1 and 3 get -1 and 1 in
    either order, 2 * 2 of 24 permutations: p -> 1/6.
    """
    layer = np.array([0, 1, 1, 1])
    x = np.array([5.0, 1.0, 2.0, 3.0])
    n = 20_000
    rho, p = layer_controlled_spearman(x, x, layer, n_permutations=n, seed=0)
    assert rho == pytest.approx(1.0)
    assert p == pytest.approx(1 / 3, abs=0.015)  # binomial sd 0.0033; the global null gives 1/6


def test_layer_controlled_p_equals_a_per_layer_permutation_loop():
    """Same draws as a plain loop: per layer (in order) n permutations of its centred ranks."""
    rng = np.random.default_rng(9)
    layer = np.repeat([0, 1, 2], [2, 5, 7])  # unequal layers
    x = rng.normal(size=14)
    y = 0.3 * x + rng.normal(size=14)
    n, seed = 300, 4
    rho, p = layer_controlled_spearman(x, y, layer, n_permutations=n, seed=seed)

    def centred(v):
        out = np.zeros(v.size)
        for k in (0, 1, 2):
            r = sps.rankdata(v[layer == k])
            out[layer == k] = r - r.mean()
        return out

    rx, ry = centred(x), centred(y)
    den = np.sqrt((rx**2).sum() * (ry**2).sum())
    assert rho == pytest.approx((rx * ry).sum() / den, abs=1e-12)
    draws = np.random.default_rng(seed)
    acc = np.zeros(n)
    for k in (0, 1, 2):
        m = layer == k
        for i in range(n):
            acc[i] += rx[m] @ draws.permutation(ry[m])
    extreme = (np.abs(acc / den) >= abs(rho) - 1e-12).sum()
    assert p == (1 + extreme) / (1 + n)


def test_layer_controlled_permutation_differs_by_seed():
    rng = np.random.default_rng(6)
    layer = np.repeat(np.arange(4), 6)
    x, y = rng.normal(size=24), rng.normal(size=24)
    a = layer_controlled_spearman(x, y, layer, 300, seed=1)
    b = layer_controlled_spearman(x, y, layer, 300, seed=2)
    assert a[0] == b[0] and a[1] != b[1]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_matches_scipy_bootstrap():
    rng = np.random.default_rng(7)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    lo, hi = bootstrap_ci(x, y, n_bootstrap=400, seed=3, level=0.9)

    def rho(a, b):
        return sps.spearmanr(a, b).statistic

    ref = sps.bootstrap(
        (x, y),
        rho,
        n_resamples=400,
        paired=True,
        vectorized=False,
        confidence_level=0.9,
        method="percentile",
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert lo == pytest.approx(ref.low, abs=1e-10)
    assert hi == pytest.approx(ref.high, abs=1e-10)
    r = rho(x, y)
    assert lo < r < hi
    assert bootstrap_ci(x, y, 400, 3, 0.9) == (lo, hi)


# --------------------------------------------------------------------------- top-K overlap


def test_topk_overlap_chance_level_and_hypergeom_p():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=144), rng.normal(size=144)
    res = topk_overlap(x, y, 20)
    assert res["k"] == 20 and res["n"] == 144
    assert res["expected"] == pytest.approx(20 * 20 / 144)
    assert res["expected"] == pytest.approx(2.7777777777777777)
    true = len(set(np.argsort(-x)[:20]) & set(np.argsort(-y)[:20]))
    assert res["overlap"] == true
    assert res["p"] == pytest.approx(sps.hypergeom.sf(true - 1, 144, 20, 20))


def test_top_k_ties_are_broken_by_position():
    v = np.tile([0.0, 1.0], 20)  # 20 tied maxima at the odd positions
    assert top_k_indices(v, 5).tolist() == [1, 3, 5, 7, 9]
    assert topk_overlap(v, np.arange(40.0)[::-1], 5)["overlap"] == 2  # {1, 3} of {0, .., 4}


def test_topk_overlap_hand_example():
    x = [6, 5, 4, 3, 2, 1]  # top-3: indices 0, 1, 2
    y = [6, 1, 5, 2, 4, 3]  # top-3: indices 0, 2, 4
    res = topk_overlap(x, y, 3)
    assert res["overlap"] == 2
    assert res["expected"] == pytest.approx(1.5)
    # P(X >= 2) for hypergeom(N=6, K=3, n=3): (C(3,2)C(3,1) + C(3,3)) / C(6,3) = 10/20
    assert res["p"] == pytest.approx(0.5)
    full = topk_overlap(x, x, 3)
    assert full["overlap"] == 3 and full["p"] == pytest.approx(1 / 20)


# --------------------------------------------------------------------------- counter-examples


def test_quantile_mask_rule():
    v = np.arange(1.0, 21.0)  # 20 values
    assert quantile_mask(v, 0.1, top=True).nonzero()[0].tolist() == [18, 19]
    assert quantile_mask(v, 0.3, top=False).nonzero()[0].tolist() == list(range(6))
    # 0.1 * 15 = 1.5: only rank 1 qualifies
    assert quantile_mask(np.arange(15.0), 0.1, top=True).sum() == 1
    # ties at the cut: all tied heads share the best rank and are kept
    tied = np.array([5.0, 5.0, 5.0] + [0.0] * 17)
    assert quantile_mask(tied, 0.1, top=True).sum() == 3
    # ... by the minimum rank: with average ranks (1.5) this tie would miss a cut at rank 1
    v = [5.0, 5.0, 3.0, 2.0]
    assert quantile_mask(v, 0.25, top=True).tolist() == [True, True, False, False]
    assert quantile_mask(v, 0.25, top=False).tolist() == [False, False, False, True]
    # q is a fraction in [0, 1], both ends included
    assert not quantile_mask(v, 0.0, top=True).any()
    assert quantile_mask(v, 1.0, top=True).all()
    with pytest.raises(ValueError, match="quantile"):
        quantile_mask(v, 1.5, top=True)


def test_counter_examples_hand_built():
    # 20 heads; top 10% = 2 heads, bottom 30% = 6 heads
    n = 20
    i_pre = np.arange(n, dtype=float)  # head 19, 18 most important; 0..5 least
    urel = np.full(n, 10.0) + np.arange(n) * 0.01
    urel[19] = 0.0  # most important, static  -> important_but_static
    urel[2] = 100.0  # unimportant, most plastic -> plastic_but_unimportant
    urel[10] = 99.0  # middling importance, plastic -> neither
    df = pd.DataFrame(
        {"layer": np.arange(n) // 5, "head": np.arange(n) % 5, "I_pre": i_pre, "Urel": urel}
    )
    out = counter_examples(df, top_q=0.1, bottom_q=0.3)
    ibs = out["important_but_static"]
    pbu = out["plastic_but_unimportant"]
    assert [(h["layer"], h["head"]) for h in ibs["heads"]] == [(3, 4)]
    assert ibs["heads"][0] == {"layer": 3, "head": 4, "I_pre": 19.0, "Urel": 0.0}
    assert [(h["layer"], h["head"]) for h in pbu["heads"]] == [(0, 2)]
    assert ibs["n"] == 1 and pbu["n"] == 1
    assert ibs["expected"] == pytest.approx(20 * 0.1 * 0.3)
    assert ibs["n_top"] == 2 and ibs["n_bottom"] == 6
    assert ibs["p"] == pytest.approx(sps.hypergeom.sf(0, 20, 2, 6))
    assert ibs["expected_from_sizes"] == pytest.approx(2 * 6 / 20)
    assert out["parameters"] == {
        "top_quantile": 0.1,
        "bottom_quantile": 0.3,
        "rule": "rank (ties share the best rank) <= quantile * n_heads",
    }
    assert out["n_heads"] == 20


# --------------------------------------------------------------------------- stats.json and reading


def test_pair_statistics_content_and_json():
    import json

    df = make_heads(0)
    out = pair_statistics(df, PAIRS, top_k=5, n_permutations=199, n_bootstrap=199, seed=0)
    json.dumps(out, allow_nan=False)  # plain, finite
    assert out["n_heads"] == 24
    assert out["parameters"]["top_k"] == 5
    assert list(out["pairs"]) == [f"{x}~{y}" for x, y in PAIRS]
    blk = out["pairs"]["I_pre~Urel"]
    assert set(blk) == {"x", "y", "rho", "p_perm", "rho_layer", "p_layer", "ci", "topk"}
    assert blk["rho"] == pytest.approx(sps.spearmanr(df.I_pre, df.Urel).statistic)
    assert blk["ci"][0] <= blk["rho"] <= blk["ci"][1]
    x, y = df.I_pre.to_numpy(), df.Urel.to_numpy()
    assert blk["p_perm"] == spearman_permutation(x, y, 199, 0)[1]  # the pair's own settings
    assert blk["p_layer"] == layer_controlled_spearman(x, y, df.layer.to_numpy(), 199, 0)[1]
    assert blk["ci"] == list(bootstrap_ci(x, y, 199, 0, 0.95, df.layer.to_numpy()))
    assert 1 / 200 < blk["p_perm"] < 1
    assert blk["topk"]["expected"] == pytest.approx(25 / 24)
    assert isinstance(blk["rho"], float) and isinstance(blk["topk"]["overlap"], int)
    assert out["n_layers"] == 4
    assert out["parameters"] == {
        "top_k": 5,
        "n_permutations": 199,
        "n_bootstrap": 199,
        "seed": 0,
        "ci_level": 0.95,
        "ci_method": "cluster bootstrap (layers, then heads within them), percentile interval",
        "p_perm": "two-sided permutation test of the pairing, (1 + #extreme) / (1 + n)",
        "rho_layer": "Pearson of within-layer centred ranks; null permutes y within layers",
    }
    again = pair_statistics(df, PAIRS, top_k=5, n_permutations=199, n_bootstrap=199, seed=0)
    assert again == out


def test_pair_statistics_constant_column_gives_null():
    df = make_heads(1)
    df["I_post"] = 0.0
    out = pair_statistics(df, [("I_pre", "I_post")], 5, 99, 99, 0)
    assert out["pairs"]["I_pre~I_post"]["rho"] is None
    assert out["pairs"]["I_pre~I_post"]["ci"] == [None, None]


def test_read_heads_validates(tmp_path):
    df = make_heads(0)
    good = tmp_path / "heads.csv"
    df.sample(frac=1, random_state=0).to_csv(good, index=False)
    back = read_heads(good)
    assert back[["layer", "head"]].equals(df[["layer", "head"]])

    bad = tmp_path / "missing.csv"
    df.drop(columns=["Urel"]).to_csv(bad, index=False)
    with pytest.raises(ArtifactError, match=r"missing\.csv.*Urel"):
        read_heads(bad)

    dup = tmp_path / "dup.csv"
    pd.concat([df, df.iloc[[3]]]).to_csv(dup, index=False)
    with pytest.raises(ArtifactError, match=r"dup\.csv.*\(0, 3\).*more than once"):
        read_heads(dup)

    nan = tmp_path / "nan.csv"
    df.assign(G=np.where(np.arange(len(df)) == 2, np.nan, df.G)).to_csv(nan, index=False)
    with pytest.raises(ArtifactError, match=r"nan\.csv.*\['G'\]"):
        read_heads(nan)

    with pytest.raises(ArtifactError, match="not found"):
        read_heads(tmp_path / "absent.csv")
    assert "Uo" in REQUIRED_COLUMNS


# ------------------------------------------------- settings, ceilings and batched Spearman (mutmut)


def test_pair_statistics_uses_its_own_seed_level_and_reliabilities():
    """Non-default seed and level reach every statistic of a pair; with reliabilities each pair
    carries r_xx, r_yy, sqrt(r_xx r_yy) and rho / ceiling, and None where a side has none."""
    df = make_heads(1)
    rel = {"I_pre": 0.64, "Urel": 0.81}
    out = pair_statistics(
        df, PAIRS, top_k=3, n_permutations=99, n_bootstrap=150, seed=7, level=0.8, reliabilities=rel
    )
    x, y = df.I_pre.to_numpy(), df.Urel.to_numpy()
    blk = out["pairs"]["I_pre~Urel"]
    assert blk["p_perm"] == spearman_permutation(x, y, 99, 7)[1]
    assert blk["p_perm"] != spearman_permutation(x, y, 99, 0)[1]
    assert blk["p_layer"] == layer_controlled_spearman(x, y, df.layer.to_numpy(), 99, 7)[1]
    assert blk["ci"] == list(bootstrap_ci(x, y, 150, 7, 0.8, df.layer.to_numpy()))
    assert blk["ci"] != list(bootstrap_ci(x, y, 150, 7, 0.95, df.layer.to_numpy()))
    assert (blk["r_xx"], blk["r_yy"]) == (0.64, 0.81)
    assert blk["noise_ceiling"] == pytest.approx(0.72)
    assert blk["rho_disattenuated"] == pytest.approx(sps.spearmanr(x, y).statistic / 0.72)
    other = out["pairs"]["I_pre~G"]  # G has no reliability here
    assert (other["r_xx"], other["r_yy"], other["noise_ceiling"]) == (0.64, None, None)
    assert other["rho_disattenuated"] is None
    assert out["parameters"]["seed"] == 7 and out["parameters"]["ci_level"] == 0.8


@pytest.mark.parametrize("k", [1, 24])
def test_pair_statistics_accepts_top_k_from_1_to_the_number_of_heads(k):
    out = pair_statistics(make_heads(0), PAIRS[:1], top_k=k, n_permutations=9, n_bootstrap=9)
    assert out["pairs"]["I_pre~Urel"]["topk"]["k"] == k


@pytest.mark.parametrize("k", [0, 25])
def test_pair_statistics_refuses_top_k_outside_1_to_the_number_of_heads(k):
    with pytest.raises(ValueError, match="analysis.top_k"):
        pair_statistics(make_heads(0), PAIRS[:1], top_k=k, n_permutations=9, n_bootstrap=9)


def test_batched_spearman_equals_scipy_on_every_slice_of_any_axis():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3, 10, 4)), rng.normal(size=(3, 10, 4))
    x[1, :, 2] = np.round(x[1, :, 2])  # ties share the average rank
    got = _spearman_vectorized(x, y, axis=1)
    assert got.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            want = sps.spearmanr(x[i, :, j], y[i, :, j]).statistic
            assert got[i, j] == pytest.approx(want, abs=1e-12)
    y[2, :, 1] = 5.0  # a constant side: undefined, NaN (not 0, not an error)
    assert np.isnan(_spearman_vectorized(x, y, axis=1)[2, 1])


BOOTSTRAP_CASES = {
    # seven heads, five tied: about a tenth of the resamples draw a constant x
    "seven": (
        np.array([0.0, 0, 0, 0, 0, 1, 2]),
        np.array([0.3, 0.1, 0.9, 0.4, 0.2, 0.8, 0.7]),
        0.8,
    ),
    # twelve heads, ten tied (about 11 % constant resamples); both sides span exactly 1 (a range
    # is not a constant), and the finer distribution tells the 5th percentile from nearby ones
    "twelve": (
        np.array([0.0] * 10 + [0.5, 1.0]),
        np.array([0.0, 0.61, 0.13, 0.94, 0.27, 0.72, 0.38, 1.0, 0.05, 0.83, 0.46, 0.19]),
        0.9,
    ),
}


@pytest.mark.filterwarnings("ignore::scipy.stats.DegenerateDataWarning")
@pytest.mark.parametrize("case", BOOTSTRAP_CASES)
def test_bootstrap_ci_drops_resamples_with_a_constant_side(case):
    """Resamples that draw a constant side are dropped; the interval is then the percentile
    interval of the remaining resamples, computed here from scipy's own bootstrap with scipy's
    spearmanr per resample (same draws: same seed)."""
    x, y, level = BOOTSTRAP_CASES[case]

    def ref_stat(a, b, axis=-1):
        a2, b2 = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
        rows_a, rows_b = a2.reshape(-1, a2.shape[-1]), b2.reshape(-1, b2.shape[-1])
        flat = [sps.spearmanr(u, v).statistic for u, v in zip(rows_a, rows_b, strict=True)]
        return np.asarray(flat).reshape(a2.shape[:-1])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap(
            (x, y), ref_stat, n_resamples=400, paired=True, vectorized=True,
            confidence_level=level, method="percentile", rng=np.random.default_rng(3),
        )  # fmt: skip
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    assert 10 < np.isnan(dist).sum() < 100
    kept = dist[np.isfinite(dist)]
    alpha = 100 * (1 - level) / 2
    want = (np.percentile(kept, alpha), np.percentile(kept, 100 - alpha))
    assert bootstrap_ci(x, y, 400, 3, level) == pytest.approx(want, abs=1e-12)


def test_within_layer_null_converges_to_the_enumerated_null_of_all_layers():
    """Two layers of three heads: all 36 pairs of within-layer permutations enumerated by hand.
    The exact p is 10/36; a null that kept only one layer's permutation would give p ~ 0."""
    x = np.array([1.0, 2, 3, 1, 2, 3])
    y = np.array([1.0, 2, 3, 2, 1, 3])
    layer = np.array([0, 0, 0, 1, 1, 1])
    cx, cy = x - 2, np.array([-1.0, 0, 1, 0, -1, 1])  # within-layer centred ranks, by hand
    den = math.sqrt((cx @ cx) * (cy @ cy))
    obs = cx @ cy / den
    perms = [list(p) for p in itertools.permutations(range(3))]
    null = [(cx[:3] @ cy[:3][a] + cx[3:] @ cy[3:][b]) / den for a in perms for b in perms]
    exact = np.mean(np.abs(null) >= abs(obs) - 1e-12)
    assert exact == pytest.approx(10 / 36)
    rho, p = layer_controlled_spearman(x, y, layer, n_permutations=20_000, seed=0)
    assert rho == pytest.approx(obs)
    assert p == pytest.approx(exact, abs=0.015)  # 4 Monte-Carlo sd


def test_pairs_need_three_finite_heads_on_both_sides():
    assert np.isfinite(spearman_permutation([1, 2, 3], [1, 3, 2], 9)[0])
    with pytest.raises(ValueError, match="at least 3"):
        spearman_permutation([1, 2], [2, 1], 9)
    with pytest.raises(ValueError, match="finite"):
        spearman_permutation([1, 2, 3, 4], [1, np.nan, 3, 4], 9)


def test_validate_heads_refusals_and_its_clean_copy():
    df = make_heads(0)
    with pytest.raises(ArtifactError, match="^heads table: no rows"):  # a table, not a file
        validate_heads(df.iloc[:0])
    one = validate_heads(df.iloc[[5]])
    assert len(one) == 1
    odd = df.copy()
    odd["head"] = odd["head"] + 0.5  # layer stays integral
    with pytest.raises(ArtifactError, match="integers"):
        validate_heads(odd)
    dup = df.copy()
    dup.loc[1, "head"] = 0  # (0, 0) twice, every other value distinct
    with pytest.raises(ArtifactError, match=r"\(0, 0\) appears more than once"):
        validate_heads(dup)
    shuffled = df.sample(frac=1.0, random_state=0)
    out = validate_heads(shuffled)
    assert list(out.columns) == list(df.columns)  # no index column carried along
    assert out.index.tolist() == list(range(len(df)))
    assert out[["layer", "head"]].equals(df[["layer", "head"]].astype(int))


def test_t_quantile_needs_two_examples():
    assert math.isnan(t_quantile(1))
    assert t_quantile(2) == pytest.approx(sps.t.ppf(0.975, 1))
    assert t_quantile(3, level=0.9) == pytest.approx(sps.t.ppf(0.95, 2))


def test_rho_of_a_range_of_exactly_one_is_defined():
    """A side whose values span exactly 1 is not constant: rho, p and the interval exist."""
    x = np.array([0.0, 0.25, 0.5, 1.0, 0.75, 0.1])
    y = np.array([0.2, 0.0, 1.0, 0.9, 0.4, 0.3])
    want = sps.spearmanr(x, y).statistic
    rho, p = spearman_permutation(x, y, 200, 0)
    assert rho == pytest.approx(want) and 0 < p <= 1
    assert rho == pytest.approx(spearman_permutation(y, x, 200, 0)[0])
    lo, hi = bootstrap_ci(x, y, 200, 0)
    assert lo <= hi and np.isfinite([lo, hi]).all()


def test_permutation_p_of_a_zero_rho_is_one():
    """rho exactly 0 (sum of d^2 = n(n^2 - 1)/6): every null value, zeros included, is at
    least as extreme, so p = (1 + n) / (1 + n) = 1 (some permutations give exactly 0 too)."""
    x = np.array([1.0, 2, 3, 4, 5])
    y = np.array([2.0, 5, 3, 1, 4])
    rho, p = spearman_permutation(x, y, 500, 0)
    assert rho == 0.0
    assert p == 1.0
    rho_l, p_l = layer_controlled_spearman(x, y, np.zeros(5, dtype=int), 500, 0)
    assert (rho_l, p_l) == (0.0, 1.0)


def test_layer_controlled_rho_with_two_heads_per_layer():
    """Two layers of two heads: centred within-layer ranks are +-1/2, so the denominator
    sqrt(sum rx^2 * sum ry^2) is exactly 1; rho is +1 when both layers agree, 0 when they
    disagree, and the within-layer null has the 4 permutation pairs of the two layers."""
    layer = np.array([0, 0, 1, 1])
    x = np.array([1.0, 2, 3, 4])
    rho, p = layer_controlled_spearman(x, np.array([5.0, 6, 1, 2]), layer, 2000, 0)
    assert rho == 1.0
    # of the 4 equally likely pairs, both kept (+1) and both swapped (-1) reach |rho| = 1
    assert p == pytest.approx(0.5, abs=0.03)
    rho0, _ = layer_controlled_spearman(x, np.array([5.0, 6, 2, 1]), layer, 100, 0)
    assert rho0 == 0.0


def test_pair_statistics_needs_only_the_columns_of_its_pairs(tmp_path):
    """A table with the pair's two measures and nothing else (no G, U, ...) is enough; so is
    reading a heads.csv for a given set of columns."""
    full = make_heads(1)
    df = full[["layer", "head", "I_pre", "Urel"]]
    out = pair_statistics(df, pairs=[("I_pre", "Urel")], top_k=5, n_permutations=99, n_bootstrap=99)
    want = pair_statistics(
        full, pairs=[("I_pre", "Urel")], top_k=5, n_permutations=99, n_bootstrap=99
    )
    assert out == want
    path = tmp_path / "heads.csv"
    df.to_csv(path, index=False)
    assert read_heads(path, ("layer", "head", "I_pre", "Urel")).equals(df)


def test_cluster_resamples_draw_layers_then_heads_within_them():
    """Issue 27 item 8: each resample is whole layers (drawn with replacement), each filled with
    heads of that layer only; equal layers give one [B, N] array, unequal ones a list."""
    layer = np.repeat(np.arange(4), 3)
    idx = cluster_resamples(layer, 200, np.random.default_rng(0))
    assert idx.shape == (200, 12)
    blocks = layer[idx].reshape(200, 4, 3)
    assert (blocks == blocks[..., :1]).all()  # each block of 3 from one layer
    assert len({tuple(r) for r in blocks[..., 0]}) > 50  # layers vary between resamples
    uneven = np.array([0, 0, 1, 1, 1, 2])
    lists = cluster_resamples(uneven, 30, np.random.default_rng(1))
    assert isinstance(lists, list) and {len(i) for i in lists} <= set(range(3, 10))


def test_the_cluster_bootstrap_covers_rho_when_heads_of_a_layer_are_alike():
    """Simulated truth: x and y independent per layer-level effect plus a little head noise
    (heads of a layer are near copies): over 60 data sets the head bootstrap's 90 % interval
    misses the population rho 0 far more often than 10 %, the cluster bootstrap's does not
    beyond Monte-Carlo error."""
    rng = np.random.default_rng(5)
    layer = np.repeat(np.arange(12), 12)
    runs, miss_heads, miss_cluster = 60, 0, 0
    for i in range(runs):
        x = np.repeat(rng.normal(size=12), 12) + 0.3 * rng.normal(size=144)
        y = np.repeat(rng.normal(size=12), 12) + 0.3 * rng.normal(size=144)
        lo, hi = bootstrap_ci(x, y, 300, i, 0.9)
        miss_heads += not lo <= 0 <= hi
        lo, hi = bootstrap_ci(x, y, 300, i, 0.9, layer)
        miss_cluster += not lo <= 0 <= hi
    assert miss_heads / runs > 0.3
    assert miss_cluster / runs <= 0.1 + 3 * (0.09 / runs) ** 0.5


def test_spearman_guard_and_json_helpers(tmp_path):
    """The one Spearman (NaN for a constant side, scipy's rho and p otherwise), the one
    NaN-to-None and the one CSV reader with its error."""
    x, y = np.array([1.0, 2.0, 3.0, 5.0]), np.array([2.0, 1.0, 4.0, 3.0])
    ref = sps.spearmanr(x, y)
    assert spearman(x, y) == (float(ref.statistic), float(ref.pvalue))
    assert has_constant_side(x, np.ones(4)) and not has_constant_side(x, y)
    assert all(math.isnan(v) for v in spearman(x, np.ones(4)))
    assert [finite_or_none(v) for v in (None, pd.NA, math.nan, -math.inf, np.float32(1.5))] == [
        None,
        None,
        None,
        None,
        1.5,
    ]
    assert [json_value(v) for v in (np.int64(3), "a", True, np.float64(math.nan))] == [
        3,
        "a",
        True,
        None,
    ]
    assert type(json_value(np.int64(3))) is int
    with pytest.raises(ArtifactError, match="file not found"):
        read_csv_table(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ArtifactError, match="not a readable CSV"):
        read_csv_table(tmp_path / "empty.csv")
