"""headplast.analysis.summary on three synthetic seeds, plus the across-seed and across-task
scripts."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from headplast.analysis.statistics import PAIRS, counter_examples, pair_statistics
from headplast.analysis.summary import (
    case_counts,
    compare_tasks,
    fisher_z_pool,
    pair_stats_across_seeds,
    rank_stability,
    seed_mean,
)
from headplast.io import ArtifactError, read_json
from tests.script_runner import run_script

SEEDS = (1, 2, 3)


def make_heads(seed: int, n_layers: int = 3, n_heads: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_layers * n_heads
    layer = np.repeat(np.arange(n_layers), n_heads)
    df = pd.DataFrame({"layer": layer, "head": np.tile(np.arange(n_heads), n_layers)})
    shared = np.linspace(1, 2, n)  # a stable component so rankings agree across seeds
    df["I_pre"] = shared + 0.3 * rng.normal(size=n)
    df["I_post"] = df["I_pre"] + 0.1 * rng.normal(size=n)
    df["G"] = shared**2 + rng.uniform(size=n)
    df["F"] = df["G"] ** 2 * 2
    df["Ppred"] = df["G"] ** 2 / df["F"] + 0.01 * rng.uniform(size=n)
    df["Urel"] = (1 + layer) * rng.lognormal(0, 0.3, n)
    df["U"] = 2 * df["Urel"]
    for c in ("Uq", "Uk", "Uv", "Uo"):
        df[c] = df["U"] / 2
    df["A_js"] = 0.05 * df["Urel"] * rng.lognormal(0, 0.3, n)
    df["C_rel"] = 10 * df["A_js"]
    return df


@pytest.fixture
def heads_by_seed():
    # shuffle rows differently per seed: everything must align on (layer, head)
    return {s: make_heads(s).sample(frac=1, random_state=s) for s in SEEDS}


def test_seed_mean(heads_by_seed):
    m = seed_mean(heads_by_seed)
    assert len(m) == 12
    assert list(m.columns[:3]) == ["layer", "head", "n_seeds"]
    assert {"I_pre_mean", "I_pre_sd", "Urel_mean", "Urel_sd", "Uo_sd"} <= set(m.columns)
    assert (m["n_seeds"] == 3).all()
    row = m[(m["layer"] == 1) & (m["head"] == 2)].iloc[0]
    vals = [heads_by_seed[s].set_index(["layer", "head"]).loc[(1, 2), "I_pre"] for s in SEEDS]
    assert row["I_pre_mean"] == pytest.approx(np.mean(vals))
    assert row["I_pre_sd"] == pytest.approx(np.std(vals, ddof=1))
    one = seed_mean({1: heads_by_seed[1]})
    assert one["I_pre_sd"].isna().all() and (one["n_seeds"] == 1).all()


def test_seed_mean_rejects_mismatched_heads(heads_by_seed):
    bad = dict(heads_by_seed)
    bad[3] = bad[3].iloc[1:]
    with pytest.raises(ArtifactError, match="seed 3"):
        seed_mean(bad)


def test_rank_stability(heads_by_seed):
    out = rank_stability(heads_by_seed, ["I_pre", "Urel"])
    assert set(out) == {"I_pre", "Urel"}
    blk = out["I_pre"]
    assert blk["n_pairs"] == 3
    assert [(p["seed_a"], p["seed_b"]) for p in blk["pairs"]] == [(1, 2), (1, 3), (2, 3)]
    a = heads_by_seed[1].sort_values(["layer", "head"])["I_pre"].to_numpy()
    b = heads_by_seed[3].sort_values(["layer", "head"])["I_pre"].to_numpy()
    assert blk["pairs"][1]["rho"] == pytest.approx(sps.spearmanr(a, b).statistic)
    rhos = [p["rho"] for p in blk["pairs"]]
    assert blk["mean"] == pytest.approx(np.mean(rhos))
    assert blk["min"] == min(rhos) and blk["max"] == max(rhos)
    single = rank_stability({1: heads_by_seed[1]}, ["I_pre"])
    assert single["I_pre"] == {
        "mean": None,
        "min": None,
        "max": None,
        "n_pairs": 0,
        "pairs": [],
        "reliability_of_seed_mean": None,
    }
    json.dumps(out, allow_nan=False)


def test_pair_stats_across_seeds(heads_by_seed):
    stats = {s: pair_statistics(df, PAIRS, 3, 99, 99, 0) for s, df in heads_by_seed.items()}
    out = pair_stats_across_seeds(stats)
    assert out["n_seeds"] == 3
    assert list(out["pairs"]) == list(stats[1]["pairs"])
    blk = out["pairs"]["I_pre~Urel"]
    vals = np.array([stats[s]["pairs"]["I_pre~Urel"]["rho"] for s in SEEDS])
    z = np.arctanh(vals)  # Fisher's z by hand: the pooled rho and its t-interval on z
    half = sps.t.ppf(0.975, 2) * z.std(ddof=1) / math.sqrt(3)
    assert blk["rho"]["mean"] == pytest.approx(math.tanh(z.mean()))
    assert blk["rho"]["sd"] == pytest.approx(vals.std(ddof=1))
    assert blk["rho"]["ci"] == pytest.approx(
        [math.tanh(z.mean() - half), math.tanh(z.mean() + half)]
    )
    assert blk["rho"]["informative"] is True and blk["rho"]["method"] == "fisher_z"
    assert blk["rho"]["values"] == {str(s): stats[s]["pairs"]["I_pre~Urel"]["rho"] for s in SEEDS}
    lay = np.array([stats[s]["pairs"]["I_pre~Urel"]["rho_layer"] for s in SEEDS])
    assert blk["rho_layer"]["mean"] == pytest.approx(math.tanh(np.arctanh(lay).mean()))
    ov = [stats[s]["pairs"]["I_pre~Urel"]["topk"]["overlap"] for s in SEEDS]
    assert blk["overlap"]["mean"] == pytest.approx(np.mean(ov))
    assert blk["overlap"]["expected"] == pytest.approx(9 / 12)
    json.dumps(out, allow_nan=False)
    one = pair_stats_across_seeds({1: stats[1]})
    assert one["pairs"]["I_pre~Urel"]["rho"]["sd"] is None
    assert one["pairs"]["I_pre~Urel"]["rho"]["ci"] == [None, None]
    two = pair_stats_across_seeds({1: stats[1], 2: stats[2]})["pairs"]["I_pre~Urel"]["rho"]
    assert two["informative"] is False and -1 <= two["ci"][0] <= two["ci"][1] <= 1


def test_fisher_z_pool_stays_a_correlation():
    """Property over 2,000 random draws (1-8 seeds, rho anywhere in [-1, 1], exact +-1 and 0
    included): the pooled rho and both bounds lie in [-1, 1], the point inside its interval; the
    raw t-interval it replaces leaves [-1, 1] on many of the same draws."""
    rng = np.random.default_rng(0)
    raw_outside = 0
    for _ in range(2000):
        n = int(rng.integers(1, 9))
        vals = rng.uniform(-1, 1, n)
        vals[rng.random(n) < 0.1] = rng.choice([-1.0, 0.0, 1.0])
        out = fisher_z_pool(list(vals))
        assert -1 <= out["mean"] <= 1 and out["n"] == n
        assert out["informative"] == (n >= 3)
        if n == 1:
            assert out["ci"] == [None, None]
            continue
        lo, hi = out["ci"]
        assert -1 <= lo <= out["mean"] <= hi <= 1, (vals, out)
        half = sps.t.ppf(0.975, n - 1) * vals.std(ddof=1) / math.sqrt(n)
        raw_outside += not -1 <= vals.mean() - half <= vals.mean() + half <= 1
    assert raw_outside > 500
    # nulls and non-finite values are left out; all-equal seeds give a zero-width interval
    assert fisher_z_pool([0.5, None, float("nan"), 0.5])["ci"] == pytest.approx([0.5, 0.5])
    assert fisher_z_pool([]) == {
        "mean": None, "sd": None, "ci": [None, None], "n": 0, "informative": False,
        "method": "fisher_z",
    }  # fmt: skip


def _cases(heads):
    return {
        "important_but_static": {"heads": heads[0]},
        "plastic_but_unimportant": {"heads": heads[1]},
    }


def test_case_counts():
    h = lambda layer, head: {"layer": layer, "head": head, "I_pre": 1.0, "Urel": 0.0}  # noqa: E731
    cases = {
        1: _cases([[h(0, 1), h(2, 3)], [h(1, 1)]]),
        2: _cases([[h(0, 1)], []]),
        3: _cases([[h(0, 1), h(2, 3)], [h(1, 0)]]),
    }
    df = case_counts(cases)
    assert list(df.columns[:4]) == ["layer", "head", "set", "n_seeds"]
    got = {(r.layer, r.head, r.set): r.n_seeds for r in df.itertuples()}
    assert got == {
        (0, 1, "important_but_static"): 3,
        (2, 3, "important_but_static"): 2,
        (1, 1, "plastic_but_unimportant"): 1,
        (1, 0, "plastic_but_unimportant"): 1,
    }
    assert df.iloc[0].tolist()[:4] == [0, 1, "important_but_static", 3]
    assert df.loc[(df["layer"] == 2) & (df["head"] == 3), "seeds"].item() == "1;3"
    empty = case_counts({1: _cases([[], []])})
    assert empty.empty and list(empty.columns[:4]) == ["layer", "head", "set", "n_seeds"]


def test_compare_tasks(heads_by_seed):
    mean_a = seed_mean(heads_by_seed)
    mean_b = seed_mean({s: make_heads(s + 10) for s in SEEDS})
    table = compare_tasks({"mnli": mean_a, "rte": mean_b}, ["I_pre", "Urel"], top_k=3)
    assert list(table["measure"]) == ["I_pre", "Urel"]
    assert (table["task_a"] == "mnli").all() and (table["task_b"] == "rte").all()
    row = table.iloc[0]
    assert row["rho"] == pytest.approx(
        sps.spearmanr(mean_a["I_pre_mean"], mean_b["I_pre_mean"]).statistic
    )
    assert row["expected"] == pytest.approx(9 / 12) and row["n_heads"] == 12
    one = compare_tasks({"mnli": mean_a}, ["I_pre"], top_k=3)
    assert one.empty and "rho" in one.columns
    three = compare_tasks({"a": mean_a, "b": mean_b, "c": mean_a}, ["I_pre"], top_k=3)
    assert len(three) == 3
    assert three.iloc[1]["rho"] == pytest.approx(1.0)  # a vs c: identical


# --------------------------------------------------------------------------- scripts


def test_summary_and_compare_scripts(heads_by_seed, tmp_path, monkeypatch):
    heads, stats, cases = [], [], []
    for s, df in heads_by_seed.items():
        p = tmp_path / f"heads{s}.csv"
        df.to_csv(p, index=False)
        heads.append(str(p))
        for kind, obj in (
            ("stats", pair_statistics(df, PAIRS, 3, 99, 99, 0)),
            ("cases", counter_examples(df, 0.25, 0.5)),
        ):
            q = tmp_path / f"{kind}{s}.json"
            q.write_text(json.dumps(obj))
            (stats if kind == "stats" else cases).append(str(q))
    out = {
        "heads_mean": str(tmp_path / "heads_mean.csv"),
        "stability": str(tmp_path / "stability.json"),
        "pair_stats": str(tmp_path / "pair_stats.json"),
        "case_counts": str(tmp_path / "case_counts.csv"),
    }
    run_script(
        "summary_seeds",
        tmp_path,
        input={"heads": heads, "stats": stats, "cases": cases},
        output=out,
        params={"seeds": list(SEEDS)},
        wildcards={"task": "mnli"},
    )
    mean = pd.read_csv(out["heads_mean"])
    assert len(mean) == 12 and "Urel_sd" in mean.columns
    assert read_json(out["stability"])["I_pre"]["n_pairs"] == 3
    assert read_json(out["pair_stats"])["n_seeds"] == 3
    assert list(pd.read_csv(out["case_counts"]).columns[:4]) == ["layer", "head", "set", "n_seeds"]

    table = tmp_path / "compare.csv"
    run_script(
        "compare_tasks",
        tmp_path,
        input={"heads_mean": [out["heads_mean"], out["heads_mean"]]},
        output={"table": str(table)},
        params={"runs": ["m/mnli/random", "m/rte/random"], "top_k": 3},
    )
    t = pd.read_csv(table)
    assert len(t) == 5 and np.allclose(t["rho"], 1.0)
    assert set(t["model"]) == {"m"} and set(t["start"]) == {"random"}

    run_script(
        "compare_tasks",
        tmp_path,
        input={"heads_mean": [out["heads_mean"]]},
        output={"table": str(table)},
        params={"runs": ["m/mnli/random"], "top_k": 3},
    )
    assert pd.read_csv(table).empty


def test_summary_script_rejects_length_mismatch(heads_by_seed, tmp_path, monkeypatch):
    p = tmp_path / "h.csv"
    heads_by_seed[1].to_csv(p, index=False)
    with pytest.raises(ArtifactError, match="1 heads files for 2 seeds"):
        run_script(
            "summary_seeds",
            tmp_path,
            input={"heads": [str(p)], "stats": [], "cases": []},
            output={},
            params={"seeds": [1, 2]},
        )
