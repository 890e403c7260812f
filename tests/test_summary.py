"""headplast.analysis.summary on three synthetic seeds, plus the across-seed and across-task
scripts."""

import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from headplast.analysis.statistics import PAIRS, counter_examples, pair_statistics
from headplast.analysis.summary import (
    COMPARE_COLUMNS,
    DEFAULT_MEASURES,
    case_counts,
    compare_runs,
    compare_tasks,
    fisher_z_pool,
    mean_t_interval,
    pair_stats_across_seeds,
    rank_stability,
    read_heads_mean,
    seed_mean,
    summarise_seeds,
)
from headplast.io import ArtifactError, read_json
from tests.pruning_rows import synthetic_curves
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


def test_pruning_summary_scripts_use_the_cross_fitted_curves(tmp_path):
    """summary_pruning on pruning.jsonl files of both fits: pruning_mean.csv holds the
    cross-fitted seed means, pruning_auc.json their areas with the in-sample areas beside them;
    the per-seed and the seed-mean figures are drawn from them."""
    files, configs = [], []
    healthy = {"degenerate": False, "validation": {"theta1": {"accuracy": 0.9}}}
    for seed, shift in ((1, 0.0), (2, 0.1)):
        rows = [
            {**r, "n_removed": 2 * r["step"], "removed": [[0, h] for h in range(2 * r["step"])]}
            for r in synthetic_curves(shift, in_sample=0.2)
        ]
        files.append(tmp_path / f"pruning{seed}.jsonl")
        files[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))
        configs.append(tmp_path / f"rc{seed}.json")
        configs[-1].write_text(json.dumps(healthy))
    out = {"curves": str(tmp_path / "pruning_mean.csv"), "auc": str(tmp_path / "auc.json")}
    run_script(
        "summary_pruning",
        tmp_path,
        input={"pruning": [str(f) for f in files], "run_config": [str(f) for f in configs]},
        output=out,
        params={"seeds": [1, 2], "keep_degenerate": False},
    )
    curves = pd.read_csv(out["curves"])
    mid = curves[(curves["order"] == "I_pre") & (curves["fraction"] == 0.5)].iloc[0]
    assert mid["acc_mean"] == pytest.approx(0.95)  # tops 0.9, 1.0: not the in-sample 1.15
    assert len(curves) == 12 and "fit" not in curves
    auc = read_json(out["auc"])
    assert auc["I_pre"]["mean"] == pytest.approx(0.75)
    assert auc["I_pre"]["in_sample_mean"] == pytest.approx(0.85)
    assert auc["random"]["in_sample_per_seed"] == {
        "1": pytest.approx(0.65),
        "2": pytest.approx(0.7),
    }
    figs = {"fig": str(tmp_path / "mean.png")}
    run_script("fig_pruning_mean", tmp_path, input=out, output=figs, wildcards={"task": "t"})
    one = {"fig": str(tmp_path / "one.png")}
    run_script("fig_pruning", tmp_path, input={"pruning": str(files[0])}, output=one)
    for f in (figs["fig"], one["fig"]):
        assert open(f, "rb").read()[:4] == b"\x89PNG"


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


# --------------------------------------------------------------------------- exact values, edges


def _grid(values_by_column: dict, n_heads: int = 4) -> pd.DataFrame:
    """One layer of ``n_heads`` heads with the given columns, rows in reverse order (the
    functions must align on (layer, head), not on row position)."""
    df = pd.DataFrame({"layer": 0, "head": np.arange(n_heads), **values_by_column})
    return df.iloc[::-1]


def test_rank_stability_hand_computed_rhos_and_edges():
    """Spearman rhos worked out by hand (1 - 6 sum d^2 / (n (n^2 - 1)), n = 4 heads) on values
    spread over less than 1; the step-up to the mean of 3 seeds, 3 r / (1 + 2 r); a constant
    column gives None (and no scipy warning); two exactly reversed seeds give -1 and no
    step-up (it would divide by zero); a seed lacking a measure is named."""
    seeds = {
        1: _grid({"C": [0.1, 0.2, 0.3, 0.4], "K": [1.0, 2.0, 3.0, 4.0]}),
        2: _grid({"C": [0.1, 0.3, 0.2, 0.4], "K": [5.0, 5.0, 5.0, 5.0]}),
        3: _grid({"C": [0.1, 0.2, 0.4, 0.3], "K": [4.0, 3.0, 2.0, 1.0]}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rank_stability(seeds, ["C", "K"])
    # C: ranks 1234 / 1324 / 1243: sum d^2 = 2, 2, 6 -> rho 0.8, 0.8, 0.4
    assert out["C"] == {
        "mean": pytest.approx(2 / 3),
        "min": pytest.approx(0.4),
        "max": pytest.approx(0.8),
        "n_pairs": 3,
        "pairs": [
            {"seed_a": 1, "seed_b": 2, "rho": pytest.approx(0.8)},
            {"seed_a": 1, "seed_b": 3, "rho": pytest.approx(0.8)},
            {"seed_a": 2, "seed_b": 3, "rho": pytest.approx(0.4)},
        ],
        "reliability_of_seed_mean": pytest.approx(6 / 7),  # 3 (2/3) / (1 + 2 (2/3))
    }
    # K: seed 2 constant -> its two pairs undefined; seeds 1 and 3 exactly reversed
    assert out["K"]["pairs"] == [
        {"seed_a": 1, "seed_b": 2, "rho": None},
        {"seed_a": 1, "seed_b": 3, "rho": -1.0},
        {"seed_a": 2, "seed_b": 3, "rho": None},
    ]
    assert (out["K"]["mean"], out["K"]["min"], out["K"]["max"]) == (-1.0, -1.0, -1.0)
    two = rank_stability({1: seeds[1], 3: seeds[3]}, ["K"])["K"]
    assert two["mean"] == -1.0 and two["reliability_of_seed_mean"] is None
    json.dumps(out, allow_nan=False)
    with pytest.raises(ArtifactError, match=r"seed 2: missing column\(s\) \['F'\]"):
        rank_stability({1: seeds[1].assign(F=1.0), 2: seeds[2]}, ["C", "F"])


def test_case_counts_row_order_and_types():
    """Rows sort by set, then by how many seeds share the head (most first), then layer and head
    ascending; the empty table keeps integer columns, so an empty case_counts.csv reads back
    like a full one."""
    h = lambda layer, head: {"layer": layer, "head": head}  # noqa: E731
    cases = {
        7: _cases([[h(1, 0), h(0, 3), h(0, 1)], [h(2, 2)]]),
        9: _cases([[h(0, 3)], [h(1, 1), h(2, 2)]]),
    }
    df = case_counts(cases)
    assert df.values.tolist() == [
        [0, 3, "important_but_static", 2, "7;9"],
        [0, 1, "important_but_static", 1, "7"],
        [1, 0, "important_but_static", 1, "7"],
        [2, 2, "plastic_but_unimportant", 2, "7;9"],
        [1, 1, "plastic_but_unimportant", 1, "9"],
    ]
    assert list(df.index) == [0, 1, 2, 3, 4]
    empty = case_counts({})
    assert list(empty.columns) == ["layer", "head", "set", "n_seeds", "seeds"]
    assert empty.dtypes[["layer", "head", "n_seeds"]].tolist() == [np.dtype(int)] * 3
    with pytest.raises(ArtifactError, match="cases of seed 7 lack the set plastic_but_unimportant"):
        case_counts({7: {"important_but_static": {"heads": []}}})


def test_read_heads_mean(tmp_path):
    """A header-only table (a run with no usable seed) passes only with ``allow_empty``; a table
    with rows is validated either way (sorted, and its errors name the file)."""
    empty = tmp_path / "empty.csv"
    empty.write_text("layer,head\n")
    got = read_heads_mean(empty, ["I_pre"], allow_empty=True)
    assert got.empty and list(got.columns) == ["layer", "head"]
    with pytest.raises(ArtifactError, match="no rows"):
        read_heads_mean(empty)
    no_key = tmp_path / "no_key.csv"
    no_key.write_text("layer,I_pre_mean\n")
    with pytest.raises(ArtifactError, match="missing column"):
        read_heads_mean(no_key, allow_empty=True)
    full = tmp_path / "heads_mean.csv"
    pd.DataFrame({"layer": [1, 0], "head": [0, 1], "G_mean": [0.5, 0.25]}).to_csv(full, index=False)
    got = read_heads_mean(full, ["G"], allow_empty=True)
    assert got[["layer", "head", "G_mean"]].values.tolist() == [[0, 1, 0.25], [1, 0, 0.5]]
    for allow in (False, True):
        with pytest.raises(ArtifactError, match=rf"^{re.escape(str(full))}: missing column"):
            read_heads_mean(full, ["G", "Urel"], allow_empty=allow)


def _means(n_heads: int, **cols) -> pd.DataFrame:
    df = pd.DataFrame({"layer": np.arange(n_heads) // 4, "head": np.arange(n_heads) % 4})
    for m, v in cols.items():
        df[f"{m}_mean"] = v
    return df


def test_compare_tasks_exact_rows():
    """Every column of a row against scipy, on the heads the two tasks share (a head only one
    task has is ignored); a measure constant in either task gives NaN rho and p (numeric, no
    warning) but still its overlap; three shared heads are enough, two are refused."""
    a = _means(5, G=[1.0, 2.0, 3.0, 4.0, 5.0], U=[1.0] * 5, V=[1.0, 2.0, 3.0, 4.0, 5.0])
    b = _means(6, G=[2.0, 1.0, 4.0, 3.0, 6.0, 9.0], U=[0.5, 0.1, 0.4, 0.3, 0.2, 0.0], V=[2.0] * 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = compare_tasks({"mnli": a, "rte": b.iloc[::-1]}, ["G", "U", "V"], top_k=2)
    assert list(t.columns) == [
        "task_a", "task_b", "measure", "n_heads", "rho", "p", "overlap", "k", "expected",
        "p_overlap",
    ]  # fmt: skip
    res = sps.spearmanr([1, 2, 3, 4, 5], [2, 1, 4, 3, 6])
    g = t.iloc[0].to_dict()
    # top-2 by a: heads 4, 3; by b: heads 4, 2 -> overlap 1; P(X >= 1) = 1 - C(3,2)/C(5,2) = 0.7
    assert g == {
        "task_a": "mnli", "task_b": "rte", "measure": "G", "n_heads": 5,
        "rho": pytest.approx(res.statistic), "p": pytest.approx(res.pvalue), "overlap": 1,
        "k": 2, "expected": pytest.approx(0.8), "p_overlap": pytest.approx(0.7),
    }  # fmt: skip
    for i in (1, 2):  # constant in the first task (U), in the second (V)
        assert math.isnan(t.iloc[i]["rho"]) and math.isnan(t.iloc[i]["p"]) and t.iloc[i]["k"] == 2
    only_constant = compare_tasks({"mnli": a, "rte": b}, ["U"], top_k=2)
    assert only_constant[["rho", "p"]].dtypes.tolist() == [np.dtype(float)] * 2
    assert only_constant[["rho", "p"]].isna().all().all()
    three = compare_tasks({"a": a.iloc[:3], "b": b}, ["G"])  # default top_k 20 capped at 3
    assert three[["n_heads", "k", "overlap"]].values.tolist() == [[3, 3, 3]]
    with pytest.raises(ArtifactError, match="tasks a and b share 2 heads; need at least 3"):
        compare_tasks({"a": a.iloc[:2], "b": b}, ["G"])


def test_compare_default_top_k_and_runs():
    """The defaults: I_pre, I_post, G and Urel, top-20 (given 25 heads); compare_runs compares
    the tasks of each (model, start) only, passes top_k on, numbers its rows 0..n-1 and puts
    model and start first."""
    rng = np.random.default_rng(0)
    a, b = (
        _means(25, **{m: rng.normal(size=25) for m in ("I_pre", "I_post", "G", "Urel")})
        for _ in range(2)
    )
    default = compare_tasks({"a": a, "b": b})
    assert default[["measure", "k"]].values.tolist() == [
        ["I_pre", 20], ["I_post", 20], ["G", 20], ["Urel", 20],
    ]  # fmt: skip
    run_default = compare_runs({("m", "a", "random"): a, ("m", "b", "random"): b})
    assert run_default["k"].tolist() == [20] * 4
    runs = {
        ("m", "mnli", "random"): a,
        ("m", "rte", "random"): b,
        ("m", "mnli", "probe"): b,
        ("m", "rte", "probe"): a,
        ("n", "mnli", "random"): a,  # one task: nothing to compare
    }
    table = compare_runs(runs, ["G"], top_k=4)
    assert list(table.columns[:4]) == ["model", "start", "task_a", "task_b"]
    assert table[["model", "start", "task_a", "task_b", "k"]].values.tolist() == [
        ["m", "random", "mnli", "rte", 4],
        ["m", "probe", "mnli", "rte", 4],
    ]
    assert list(table.index) == [0, 1]
    assert table["rho"].tolist() == pytest.approx([sps.spearmanr(a["G_mean"], b["G_mean"])[0]] * 2)
    none = compare_runs({})
    assert none.empty and list(none.columns) == ["model", "start", *COMPARE_COLUMNS]


def _write_run(tmp_path, seeds, degenerate=()):
    """heads/stats/cases/run_config files of ``seeds`` (make_heads, plus I_kl_pre in every seed
    and I_kl_post in the first only); stats hold one pair with rho = seed / 10."""
    files = {"heads": [], "stats": [], "cases": [], "run_config": []}
    for i, s in enumerate(seeds):
        df = make_heads(s).assign(I_kl_pre=lambda d: d["I_pre"] ** 2)
        if i == 0:
            df["I_kl_post"] = 1.0
        pair = {"x": "I_pre", "y": "Urel", "rho": s / 10, "topk": {"overlap": s, "k": 3,
                "expected": 0.75}}  # fmt: skip
        cases = _cases([[{"layer": 0, "head": s % 4}], []])
        for kind, obj in (
            ("heads", df),
            ("stats", {"pairs": {"I_pre~Urel": pair}}),
            ("cases", cases),
            ("run_config", {"seed": s, "degenerate": s in degenerate}),
        ):
            p = tmp_path / f"{kind}{s}.{'csv' if kind == 'heads' else 'json'}"
            if kind == "heads":
                obj.to_csv(p, index=False)
            else:
                p.write_text(json.dumps(obj))
            files[kind].append(str(p))
    return files


def test_summarise_seeds_leaves_out_degenerate_seeds(tmp_path):
    """By default a degenerate seed is named and left out of every table; with keep_degenerate
    it is summarised and still named; without run configs every seed counts. The label-free
    importance every seed has is summarised, the one a seed lacks is not; the pair carries the
    seed-to-seed ceiling from the stability of its two measures."""
    f = _write_run(tmp_path, [1, 2, 3], degenerate=[2])
    out = summarise_seeds([1, 2, 3], f["heads"], f["stats"], f["cases"], f["run_config"])
    ps = out["pair_stats"]
    assert (ps["seeds"], ps["degenerate_seeds"], ps["degenerate_excluded"]) == ([1, 3], [2], [2])
    assert ps["n_seeds"] == 2 and (out["heads_mean"]["n_seeds"] == 2).all()
    assert list(out["stability"]) == [*DEFAULT_MEASURES, "I_kl_pre"]
    assert out["stability"]["I_pre"]["pairs"][0] == {
        "seed_a": 1,
        "seed_b": 3,
        "rho": pytest.approx(
            sps.spearmanr(*(pd.read_csv(f["heads"][i])["I_pre"] for i in (0, 2))).statistic
        ),
    }
    pair = ps["pairs"]["I_pre~Urel"]
    assert pair["rho"]["values"] == {"1": 0.1, "3": 0.3}
    assert pair["overlap"]["values"] == {"1": 1, "3": 3}
    r_xx, r_yy = out["stability"]["I_pre"]["mean"], out["stability"]["Urel"]["mean"]
    assert pair["seed_to_seed"] == {
        "r_xx": r_xx,
        "r_yy": r_yy,
        "noise_ceiling": pytest.approx(math.sqrt(r_xx * r_yy)),
        "rho_mean_disattenuated": pytest.approx(pair["rho"]["mean"] / math.sqrt(r_xx * r_yy)),
    }
    assert out["case_counts"]["seeds"].tolist() == ["1", "3"]

    kept = summarise_seeds(
        [1, 2, 3], f["heads"], f["stats"], f["cases"], f["run_config"], keep_degenerate=True
    )["pair_stats"]
    assert (kept["seeds"], kept["degenerate_seeds"], kept["degenerate_excluded"]) == (
        [1, 2, 3],
        [2],
        [],
    )
    plain = summarise_seeds([1, 2, 3], f["heads"], f["stats"], f["cases"])["pair_stats"]
    assert (plain["seeds"], plain["degenerate_seeds"], plain["n_seeds"]) == ([1, 2, 3], [], 3)


def test_summarise_seeds_with_no_usable_seed(tmp_path):
    """Every seed degenerate: empty tables with their columns, and a pair summary that says so
    in words and names the seeds (nothing else is read)."""
    f = _write_run(tmp_path, [4, 5], degenerate=[4, 5])
    out = summarise_seeds([4, 5], ["-", "-"], ["-", "-"], ["-", "-"], f["run_config"])
    assert list(out["heads_mean"].columns) == ["layer", "head", "n_seeds"]
    assert out["heads_mean"].empty and out["stability"] == {}
    assert out["pair_stats"] == {
        "n_seeds": 0,
        "pairs": {},
        "seeds": [],
        "degenerate_seeds": [4, 5],
        "degenerate_excluded": [4, 5],
        "no_usable_seed": "no usable seed: every seed [4, 5] is degenerate (theta1 does not beat "
        "the majority class; see their run_config.json). Nothing is summarised; set config key "
        "analysis.keep_degenerate: true to summarise them anyway",
    }
    assert out["case_counts"].empty and list(out["case_counts"].columns) == [
        "layer", "head", "set", "n_seeds", "seeds",
    ]  # fmt: skip


def test_summarise_seeds_names_the_short_file_list(tmp_path):
    """A file list that does not match the seeds is refused, naming which list."""
    f = _write_run(tmp_path, [1, 2])
    for name in ("heads", "stats", "cases"):
        args = {k: f[k] for k in ("heads", "stats", "cases")}
        args[name] = args[name][:1]
        with pytest.raises(ArtifactError, match=rf"^1 {name} files for 2 seeds \[1, 2\]$"):
            summarise_seeds([1, 2], args["heads"], args["stats"], args["cases"])
    with pytest.raises(ArtifactError, match="1 run_config files for seeds"):
        summarise_seeds([1, 2], f["heads"], f["stats"], f["cases"], f["run_config"][:1])


def test_seed_mean_exact_table():
    """Mean and sd (ddof=1) worked out by hand on two seeds; only the numeric measures every
    seed has are summarised (a text column and a column one seed lacks are not); the heads need
    no other column; a seed's bad table is named by its seed; a seed with the same number of
    heads but a different head is refused."""
    s1 = _grid({"X": [1.0, 3.0], "Y": [0.0, 0.0], "note": ["a", "b"]}, n_heads=2)
    s2 = _grid({"X": [2.0, 5.0]}, n_heads=2)
    m = seed_mean({1: s1, 2: s2})
    r2 = math.sqrt(2)
    assert list(m.columns) == ["layer", "head", "n_seeds", "X_mean", "X_sd"]
    assert m.to_numpy(float).ravel().tolist() == pytest.approx(
        [0, 0, 2, 1.5, 1 / r2, 0, 1, 2, 4.0, 2 / r2]
    )
    dup = pd.concat([s2, s2.iloc[:1]])
    with pytest.raises(ArtifactError, match=r"^seed 2: \(layer, head\) \(0, 1\) appears more"):
        seed_mean({1: s1, 2: dup})
    moved = s2.assign(head=[1, 7])  # heads 7 and 0 instead of 0 and 1
    with pytest.raises(ArtifactError, match="seed 2: its heads differ from those of seed 1"):
        seed_mean({1: s1, 2: moved})


def test_mean_t_interval_and_fisher_z_pool_by_hand():
    """The t-interval of the mean: mean +- t_(n-1, 0.5 + level/2) * sd / sqrt(n), with nulls and
    NaN left out; one value has no sd or interval; no value has no mean. Fisher's z pool of two
    seeds already has its sd."""
    got = mean_t_interval([1.0, None, 2.0, float("nan"), 6.0], level=0.9)
    half = sps.t.ppf(0.95, 2) * math.sqrt(7) / math.sqrt(3)  # sd of 1, 2, 6 is sqrt(7)
    assert got == {
        "mean": pytest.approx(3.0),
        "sd": pytest.approx(math.sqrt(7)),
        "ci": pytest.approx([3.0 - half, 3.0 + half]),
        "n": 3,
    }
    assert mean_t_interval([2.0, None]) == {"mean": 2.0, "sd": None, "ci": [None, None], "n": 1}
    assert mean_t_interval([None]) == {"mean": None, "sd": None, "ci": [None, None], "n": 0}
    two = fisher_z_pool([0.2, 0.6])
    assert two["sd"] == pytest.approx(0.4 / math.sqrt(2)) and two["n"] == 2


def _fz(vals, level):
    """Fisher's z pool written out (the reference for pair_stats_across_seeds)."""
    v = np.array([x for x in vals if x is not None])
    z = np.arctanh(v)
    half = sps.t.ppf(0.5 + level / 2, v.size - 1) * z.std(ddof=1) / math.sqrt(v.size)
    return {
        "mean": pytest.approx(math.tanh(z.mean())),
        "sd": pytest.approx(v.std(ddof=1)),
        "ci": pytest.approx([math.tanh(z.mean() - half), math.tanh(z.mean() + half)]),
        "n": v.size,
        "informative": v.size >= 3,
        "method": "fisher_z",
    }


def _tint(vals, level):
    """The t-interval of the mean written out."""
    v = np.array(vals, dtype=float)
    half = sps.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return {
        "mean": pytest.approx(v.mean()),
        "sd": pytest.approx(v.std(ddof=1)),
        "ci": pytest.approx([v.mean() - half, v.mean() + half]),
        "n": v.size,
    }


def test_pair_stats_across_seeds_every_field():
    """Every field of pair_stats.json on hand-written per-seed stats at level 0.9: correlations
    (rho, rho_layer, noise_ceiling) pooled on Fisher's z, rho_disattenuated and the overlap by
    the t-interval, each with its per-seed values; a statistic one pair lacks is skipped
    without dropping the ones after it; a NaN rho is a None value and not counted; the
    seed-to-seed ceiling sqrt(r_xx r_yy) from the stability means, None where a measure has no
    stability; the description of the intervals in words."""

    def pair(x, y, overlap, **stats):
        return {"x": x, "y": y, **stats, "topk": {"overlap": overlap, "k": 2, "expected": 0.5}}

    ab = [(0.2, 0.5, 0.8, 0.25), (0.4, 0.1, 0.7, 0.6), (0.5, 0.3, 0.9, 0.55)]
    ac = [0.1, 0.3, float("nan")]
    stats = {
        s: {
            "pairs": {
                "A~B": pair("A", "B", s, rho=r, rho_layer=rl, noise_ceiling=nc,
                            rho_disattenuated=rd),
                "A~C": pair("A", "C", 2, rho=ac[i], noise_ceiling=0.9),
            }
        }
        for i, (s, (r, rl, nc, rd)) in enumerate(zip((1, 2, 3), ab, strict=True))
    }  # fmt: skip
    stability = {"A": {"mean": 0.64}, "B": {"mean": 0.81}}
    out = pair_stats_across_seeds(stats, level=0.9, stability=stability)
    assert list(out) == ["n_seeds", "ci_level", "pairs", "ci_method"]
    assert (out["n_seeds"], out["ci_level"]) == (3, 0.9)
    assert out["ci_method"] == (
        "rho, rho_layer, noise_ceiling: pooled on Fisher's z, tanh(mean z +- t_(n-1) * sd_z / "
        "sqrt(n)), not informative below 3 seeds; rho_disattenuated and overlap: t-interval of "
        "the mean over seeds, mean +- t_(n-1) * sd / sqrt(n)"
    )
    col = lambda j: [row[j] for row in ab]  # noqa: E731
    rho_ab = _fz(col(0), 0.9)
    assert out["pairs"]["A~B"] == {
        "x": "A",
        "y": "B",
        "n_seeds": 3,
        "rho": {**rho_ab, "values": dict(zip("123", col(0), strict=True))},
        "rho_layer": {**_fz(col(1), 0.9), "values": dict(zip("123", col(1), strict=True))},
        "noise_ceiling": {**_fz(col(2), 0.9), "values": dict(zip("123", col(2), strict=True))},
        "rho_disattenuated": {
            **_tint(col(3), 0.9),
            "values": dict(zip("123", col(3), strict=True)),
        },
        "seed_to_seed": {
            "r_xx": 0.64,
            "r_yy": 0.81,
            "noise_ceiling": pytest.approx(0.72),
            "rho_mean_disattenuated": pytest.approx(rho_ab["mean"].expected / 0.72),
        },
        "overlap": {
            **_tint([1, 2, 3], 0.9),
            "values": {"1": 1, "2": 2, "3": 3},
            "k": 2,
            "expected": 0.5,
        },
    }
    ac_out = out["pairs"]["A~C"]
    assert list(ac_out) == ["x", "y", "n_seeds", "rho", "noise_ceiling", "seed_to_seed", "overlap"]
    assert ac_out["rho"] == {**_fz([0.1, 0.3], 0.9), "values": {"1": 0.1, "2": 0.3, "3": None}}
    assert ac_out["rho"]["informative"] is False
    assert ac_out["seed_to_seed"] == {
        "r_xx": 0.64,
        "r_yy": None,
        "noise_ceiling": None,
        "rho_mean_disattenuated": None,
    }
    assert "seed_to_seed" not in pair_stats_across_seeds(stats)["pairs"]["A~B"]
    assert pair_stats_across_seeds(stats)["ci_level"] == 0.95
    with pytest.raises(ArtifactError, match="stats of seed 2 lack the pair A~B"):
        pair_stats_across_seeds({1: stats[1], 2: {}})


def test_rank_stability_of_anticorrelated_seeds_has_no_step_up():
    """Three seeds ranking three heads as cyclic permutations: every pair's rho is -0.5, the mean
    is -0.5 = -1/(S-1), and the Spearman-Brown step-up to the seed mean is undefined (None), not
    a ZeroDivisionError that stops the summary."""
    orders = {1: [1.0, 2, 3], 2: [2.0, 3, 1], 3: [3.0, 1, 2]}
    frames = {
        s: pd.DataFrame({"layer": [0, 0, 0], "head": [0, 1, 2], "I_pre": v})
        for s, v in orders.items()
    }
    out = rank_stability(frames, measures=("I_pre",))["I_pre"]
    assert out["mean"] == pytest.approx(-0.5) and out["n_pairs"] == 3
    assert out["reliability_of_seed_mean"] is None


def test_pair_stats_names_a_seed_whose_pair_lacks_the_overlap(heads_by_seed):
    """A stats.json cut short (a pair without its top-K overlap) is named with its seed and pair,
    not a bare KeyError from inside the pooling."""
    stats = {s: pair_statistics(df, PAIRS, 3, 99, 99, 0) for s, df in heads_by_seed.items()}
    del stats[2]["pairs"]["I_pre~Urel"]["topk"]
    with pytest.raises(ArtifactError, match=r"seed 2: the pair I_pre~Urel has no top-K overlap"):
        pair_stats_across_seeds(stats)


def test_pair_stats_carry_the_head_level_tests_of_the_pooled_rho(heads_by_seed):
    """Issue 27: with the seeds' head tables each pooled rho and layer-controlled rho carries
    its head-level permutation test (labels shuffled alike in every seed; within layers for the
    layer-controlled one), computed on the tables aligned on (layer, head)."""
    from headplast.analysis.head_permutation import pooled_permutation_test

    stats = {s: pair_statistics(df, PAIRS, 3, 99, 99, 0) for s, df in heads_by_seed.items()}
    out = pair_stats_across_seeds(stats, heads_by_seed=heads_by_seed, n_permutations=199, seed=4)
    aligned = [df.sort_values(["layer", "head"]) for df in heads_by_seed.values()]
    x = np.stack([df["I_pre"].to_numpy() for df in aligned])
    y = np.stack([df["Urel"].to_numpy() for df in aligned])
    layer = aligned[0]["layer"].to_numpy()
    blk = out["pairs"]["I_pre~Urel"]
    assert blk["rho"]["head_test"] == pooled_permutation_test(x, y, layer, False, 199, 4)
    assert blk["rho_layer"]["head_test"] == pooled_permutation_test(x, y, layer, True, 199, 4)
    assert blk["rho"]["head_test"]["rho"] == pytest.approx(blk["rho"]["mean"])
    assert "head_test" not in pair_stats_across_seeds(stats)["pairs"]["I_pre~Urel"]["rho"]
    json.dumps(out, allow_nan=False)
