"""Reliability, noise ceilings and the per-example sidecar, against analytic expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headplast.analysis.reliability import (
    disattenuated,
    measure_reliabilities,
    noise_ceiling,
    pair_ceiling,
    prophecy_n,
    seed_to_seed,
    spearman_brown,
    split_half,
)
from headplast.io import read_per_example, write_per_example


def _signal_plus_noise(n_examples, n_heads, sd_signal, sd_noise, seed):
    """Per-example values x_ih = s_h + e_ih, s_h ~ N(0, sd_signal^2), e ~ N(0, sd_noise^2)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0, sd_signal, n_heads)
    return s, s[None, :] + rng.normal(0, sd_noise, (n_examples, n_heads))


def _expected_split_half(n, sd_signal, sd_noise):
    """The mean of a half (n/2 examples) is s_h + N(0, 2 sd_noise^2 / n): Pearson reliability of
    a half rho_h = var_s / (var_s + 2 var_e / n). For bivariate normal variables Spearman's rho is
    (6/pi) asin(rho_h / 2); Spearman-Brown steps it up to the full n."""
    var_s, var_e = sd_signal**2, sd_noise**2
    rho_half = var_s / (var_s + 2 * var_e / n)
    return spearman_brown(6 / math.pi * math.asin(rho_half / 2), 2)


@pytest.mark.parametrize("sd_noise", [10.0, 20.0])
def test_split_half_recovers_known_reliability(sd_noise):
    n, heads = 200, 3000
    _, x = _signal_plus_noise(n, heads, 1.0, sd_noise, seed=1)
    res = split_half(x, n_repeats=40, seed=0)
    expected = _expected_split_half(n, 1.0, sd_noise)  # 0.651 and 0.317
    # tolerance: the sd of a Spearman over 3000 heads is about (1 - r^2) / sqrt(3000) < 0.02
    assert res["reliability"] == pytest.approx(expected, abs=0.03)
    assert res["n_examples"] == n
    # Pearson reliability of the full mean reaches 0.9 at n = 9 var_e / var_s (the rank version
    # needs a little more); the prophecy from the estimate lands close to it
    assert res["n_for_target"] == pytest.approx(9 * sd_noise**2, rel=0.15)


def test_split_half_is_one_for_noise_free_and_near_zero_for_pure_noise():
    _, x = _signal_plus_noise(50, 500, 1.0, 0.0, seed=2)
    assert split_half(x, n_repeats=5)["reliability"] == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    noise = split_half(rng.normal(size=(100, 2000)), n_repeats=20)
    assert abs(noise["reliability"]) < 0.05


def test_prophecy_and_spearman_brown():
    assert spearman_brown(0.5, 2) == pytest.approx(2 / 3)
    # r = 0.5 at n = 100: 0.9 needs k = 0.9 * 0.5 / (0.5 * 0.1) = 9 times as many examples
    assert prophecy_n(0.5, 100) == 900
    assert prophecy_n(-0.1, 100) is None and prophecy_n(None, 100) is None


def test_disattenuated_rho_constructed_case():
    assert noise_ceiling(0.5, 0.8) == pytest.approx(math.sqrt(0.4))
    assert disattenuated(0.3, math.sqrt(0.4)) == pytest.approx(0.3 / math.sqrt(0.4))
    assert pair_ceiling(0.3, -0.2, 0.8) == {"noise_ceiling": None, "rho_disattenuated": None}


def test_disattenuation_recovers_a_perfect_latent_correlation():
    """Two measures of the same latent ranking with different noise: the raw rho is well below
    1, rho / sqrt(r_xx r_yy) with the split-half reliabilities is close to 1."""
    n, heads = 200, 3000
    rng = np.random.default_rng(5)
    s = rng.normal(size=heads)
    x = s + rng.normal(0, 10, (n, heads))
    y = s + rng.normal(0, 20, (n, heads))
    from scipy.stats import spearmanr

    rho = spearmanr(x.mean(0), y.mean(0)).statistic
    r_xx = split_half(x, n_repeats=40)["reliability"]
    r_yy = split_half(y, n_repeats=40, seed=1)["reliability"]
    assert rho < 0.5
    assert pair_ceiling(rho, r_xx, r_yy)["rho_disattenuated"] == pytest.approx(1.0, abs=0.06)


def test_seed_to_seed():
    rng = np.random.default_rng(6)
    s = rng.normal(size=2000)
    by_seed = {k: s + rng.normal(size=2000) for k in range(3)}  # Pearson 0.5 between seeds
    res = seed_to_seed(by_seed)
    assert res["n_pairs"] == 3
    assert res["reliability"] == pytest.approx(6 / math.pi * math.asin(0.25), abs=0.04)
    assert res["reliability_of_mean"] == pytest.approx(spearman_brown(res["reliability"], 3))
    assert seed_to_seed({1: s})["reliability"] is None


def test_sidecar_round_trip_and_measure_table(tmp_path):
    _, x = _signal_plus_noise(64, 12, 1.0, 1.0, seed=7)
    d = x.reshape(64, 3, 4)
    path = tmp_path / "importance_pre.npz"
    write_per_example(path, {"d": d, "kl": np.abs(d), "acc_d": np.zeros((64, 3, 4), np.int8)})
    assert np.allclose(read_per_example(path, "d"), d, atol=1e-6)
    table = measure_reliabilities({"importance_pre": path}, ["I_pre", "I_kl_pre", "G", "Urel"])
    assert set(table) == {"I_pre", "I_kl_pre", "Urel"}
    assert table["Urel"]["reliability"] == 1.0
    assert table["I_pre"]["reliability"] == pytest.approx(
        split_half(d, n_repeats=100)["reliability"], abs=1e-6
    )
    with pytest.raises(ValueError, match="no array 'g'"):
        read_per_example(path, "g")
