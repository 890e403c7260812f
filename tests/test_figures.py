"""Figures are valid, non-trivial PNGs; the per-seed scripts run end to end on a synthetic table."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headplast.analysis.figures import _label as fig_label
from headplast.analysis.figures import (
    fig_heatmaps,
    fig_rank_stability,
    fig_scatter,
    fig_seed_mean_scatter,
    fig_stats,
)
from headplast.analysis.statistics import PAIRS, counter_examples, pair_statistics
from headplast.analysis.summary import rank_stability, seed_mean
from headplast.io import ArtifactError, read_json
from tests.script_runner import run_script

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_heads(seed: int = 0, n_layers: int = 4, n_heads: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_layers * n_heads
    layer = np.repeat(np.arange(n_layers), n_heads)
    df = pd.DataFrame({"layer": layer, "head": np.tile(np.arange(n_heads), n_layers)})
    df["I_pre"] = rng.lognormal(-4, 1.5, n) - 0.003  # heavy-tailed, a few negative
    df["I_post"] = df["I_pre"] * rng.lognormal(0, 0.3, n)
    df["G"] = rng.lognormal(-2, 1, n)
    df["F"] = df["G"] ** 2 * (1 + rng.uniform(size=n))
    df["Ppred"] = df["G"] ** 2 / df["F"]
    df["Urel"] = 0.01 * (1 + layer) * rng.lognormal(0, 0.3, n)
    df["U"] = 3 * df["Urel"]
    for c in ("Uq", "Uk", "Uv", "Uo"):
        df[c] = df["U"] / 2
    df["A_js"] = 0.05 * df["Urel"] * rng.lognormal(0, 0.3, n)
    df["C_rel"] = 10 * df["A_js"]
    return df


def assert_png(path, min_bytes=5000):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    leftovers = [p for p in Path(path).parent.iterdir() if p.name.startswith(f".{Path(path).name}")]
    assert leftovers == []  # the atomic temp file is gone


@pytest.fixture(scope="module")
def heads():
    return make_heads(0)


@pytest.mark.parametrize("log", ["auto", True, False, "x"])
def test_fig_scatter(heads, tmp_path, log):
    cases = counter_examples(heads, 0.25, 0.5)
    assert cases["important_but_static"]["n"] + cases["plastic_but_unimportant"]["n"] > 0
    out = tmp_path / "scatter.png"
    fig_scatter(heads, "I_pre", "Urel", cases, out, log=log)
    assert_png(out)


def test_fig_scatter_without_cases(heads, tmp_path):
    out = tmp_path / "g.png"
    fig_scatter(heads, "I_pre", "G", None, out)
    assert_png(out)


def test_fig_stats(heads, tmp_path):
    stats = pair_statistics(heads, PAIRS, 5, 99, 99, 0)
    stats["pairs"]["I_pre~I_post"]["rho_layer"] = None  # undefined values must not break it
    out = tmp_path / "stats.png"
    fig_stats(stats, out)
    assert_png(out)


def test_fig_heatmaps_and_seed_means(tmp_path):
    by_seed = {s: make_heads(s) for s in (1, 2, 3)}
    fig_heatmaps(by_seed[1], ("I_pre", "I_post", "G", "Urel"), tmp_path / "hm.png")
    assert_png(tmp_path / "hm.png")
    mean = seed_mean(by_seed)
    fig_heatmaps(mean, ("I_pre_mean", "Urel_mean", "G_mean"), tmp_path / "hm_mean.png", "means")
    assert_png(tmp_path / "hm_mean.png")
    fig_seed_mean_scatter(mean, "I_pre", "Urel", tmp_path / "ms.png")
    assert_png(tmp_path / "ms.png")
    stab = rank_stability(by_seed, ["I_pre", "G", "Urel"])
    fig_rank_stability(stab, tmp_path / "stab.png")
    assert_png(tmp_path / "stab.png")
    fig_rank_stability(rank_stability({1: by_seed[1]}, ["I_pre"]), tmp_path / "stab1.png")
    assert_png(tmp_path / "stab1.png", min_bytes=2000)


def test_failed_figure_leaves_nothing(heads, tmp_path):
    out = tmp_path / "bad.png"
    with pytest.raises(KeyError):
        fig_scatter(heads, "I_pre", "no_such_column", None, out)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- per-seed scripts


def test_per_seed_scripts(heads, tmp_path, monkeypatch):
    hp = tmp_path / "heads.csv"
    heads.to_csv(hp, index=False)
    pp = tmp_path / "pruning.jsonl"
    pp.write_text(
        "".join(
            json.dumps(
                {"order": o, "kind": k, "step": j, "n_removed": j, "fraction": j / 4}
                | {"removed": [], "loss": 1 + j / 4, "acc": 0.9 - j * a}
            )
            + "\n"
            for o, k, a in (("I_pre", "score", 0.05), ("random_0", "random", 0.1))
            for j in range(5)
        )
    )
    wc = {"task": "mnli", "seed": "1"}
    run_script(
        "stats",
        tmp_path,
        {"heads": str(hp), "pruning": str(pp)},
        {"stats": str(tmp_path / "stats.json")},
        {"top_k": 5, "n_permutations": 99, "n_bootstrap": 99, "seed": 0},
        wc,
    )
    stats = read_json(tmp_path / "stats.json")
    assert len(stats["pairs"]) == len(PAIRS)
    assert stats["pruning"]["auc"]["I_pre"] == pytest.approx(0.9 - 0.05 * 2)
    run_script(
        "cases",
        tmp_path,
        {"heads": str(hp)},
        {"cases": str(tmp_path / "cases.json")},
        {"top_quantile": 0.1, "bottom_quantile": 0.3},
        wc,
    )
    assert set(read_json(tmp_path / "cases.json")) >= {
        "important_but_static",
        "plastic_but_unimportant",
    }
    scatter_inputs = {"heads": str(hp), "cases": str(tmp_path / "cases.json")}
    for name, inputs, params in (
        ("fig_scatter", scatter_inputs, {"x": "I_pre", "y": "Urel"}),
        ("fig_scatter", scatter_inputs, {"x": "I_pre", "y": "G"}),
        ("fig_stats", {"stats": str(tmp_path / "stats.json")}, None),
        ("fig_heatmaps", {"heads": str(hp)}, None),
        ("fig_pruning", {"pruning": str(pp)}, None),
    ):
        out = tmp_path / f"{name}_{(params or {}).get('y', '')}.png"
        run_script(name, tmp_path, inputs, {"fig": str(out)}, params, wildcards=wc)
        assert_png(out)


def test_fig_summary_script(tmp_path, monkeypatch):
    by_seed = {s: make_heads(s) for s in (1, 2)}
    seed_mean(by_seed).to_csv(tmp_path / "heads_mean.csv", index=False)
    import json

    (tmp_path / "stability.json").write_text(
        json.dumps(rank_stability(by_seed, ["I_pre", "G", "Urel"]))
    )
    (tmp_path / "pair_stats.json").write_text(json.dumps({"degenerate_excluded": [3]}))
    outs = {
        k: str(tmp_path / f"{k}.png")
        for k in ("heatmaps", "stability_fig", "scatter_I_vs_U", "scatter_I_vs_G")
    }
    run_script(
        "fig_summary",
        tmp_path,
        {
            "heads_mean": str(tmp_path / "heads_mean.csv"),
            "stability": str(tmp_path / "stability.json"),
            "pair_stats": str(tmp_path / "pair_stats.json"),
        },
        outs,
        wildcards={"task": "mnli"},
    )
    for p in outs.values():
        assert_png(p)


def test_stats_script_names_bad_file(heads, tmp_path, monkeypatch):
    hp = tmp_path / "heads.csv"
    heads.drop(columns=["G"]).to_csv(hp, index=False)
    with pytest.raises(ArtifactError, match=r"heads\.csv.*\['G'\]"):
        run_script(
            "stats",
            tmp_path,
            {"heads": str(hp)},
            {"stats": str(tmp_path / "stats.json")},
            {"top_k": 5, "n_permutations": 9, "n_bootstrap": 9, "seed": 0},
        )
    assert not (tmp_path / "stats.json").exists()


# --------------------------------------------------------------------------- what the figures show


def _offsets(ax, label_start: str) -> np.ndarray:
    (coll,) = [c for c in ax.collections if str(c.get_label()).startswith(label_start)]
    return np.asarray(coll.get_offsets(), dtype=float)


def test_fig_scatter_scales_and_marked_heads(heads, tmp_path):
    cases = counter_examples(heads, 0.25, 0.5)
    ibs = [(h["layer"], h["head"]) for h in cases["important_but_static"]["heads"]]
    pbu = [(h["layer"], h["head"]) for h in cases["plastic_but_unimportant"]["heads"]]
    assert ibs and pbu
    fig = fig_scatter(heads, "I_pre", "Urel", cases, tmp_path / "s.png", log="auto")
    ax = fig.axes[0]
    # I_pre spans decades and has negatives: symmetric log; Urel spans < 2 decades: linear
    assert heads["I_pre"].min() < 0
    assert (ax.get_xscale(), ax.get_yscale()) == ("symlog", "linear")
    key = heads.set_index(["layer", "head"])
    for label, pts in (("important but static", ibs), ("plastic but unimportant", pbu)):
        want = np.array([[key.loc[p, "I_pre"], key.loc[p, "Urel"]] for p in pts])
        got = _offsets(ax, label)
        assert got.tolist() == want.tolist()
    texts = sorted(t.get_text() for t in ax.texts if t.get_text().startswith("L"))
    assert texts == sorted(f"L{lay}H{hd}" for lay, hd in ibs + pbu)
    # the base layer of points is every head, in frame order
    base = ax.collections[0]
    assert np.asarray(base.get_offsets()).tolist() == heads[["I_pre", "Urel"]].to_numpy().tolist()

    pos = heads.assign(I_pre=heads["I_pre"].abs() + 1e-6)
    fig = fig_scatter(pos, "I_pre", "G", None, tmp_path / "g.png", log=True)
    assert (fig.axes[0].get_xscale(), fig.axes[0].get_yscale()) == ("log", "log")
    assert (
        not [c for c in fig.axes[0].collections if "static" in str(c.get_label())][0]
        .get_offsets()
        .size
    )
    fig = fig_scatter(pos, "I_pre", "G", None, tmp_path / "n.png", log=False)
    assert (fig.axes[0].get_xscale(), fig.axes[0].get_yscale()) == ("linear", "linear")
    fig = fig_scatter(pos, "I_pre", "G", None, tmp_path / "y.png", log="y")
    assert (fig.axes[0].get_xscale(), fig.axes[0].get_yscale()) == ("linear", "log")


def test_fig_heatmap_has_layers_on_y_and_heads_on_x(tmp_path):
    df = make_heads(0, n_layers=4, n_heads=6)  # not square: a transposed image has shape (6, 4)
    df["I_pre"] = 10.0 * df["layer"] + df["head"]  # distinct value per cell
    fig = fig_heatmaps(df, ("I_pre", "G"), tmp_path / "hm.png")
    ax = fig.axes[0]
    image = np.asarray(ax.images[0].get_array())
    assert image.shape == (4, 6)
    assert image.tolist() == [[10.0 * lay + h for h in range(6)] for lay in range(4)]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("head", "layer")
    assert ax.get_ylim() == (3.5, -0.5)  # layer 0 at the top
    assert ax.get_xlim() == (-0.5, 5.5)
    maps = [a for a in fig.axes if a.images]  # the colorbars are axes too
    assert [a.get_title() for a in maps] == [fig_label("I_pre"), fig_label("G")]
    gi = np.asarray(maps[1].images[0].get_array())
    assert gi[2, 5] == df.loc[(df.layer == 2) & (df["head"] == 5), "G"].item()


def test_fig_stats_and_seed_means_return_their_figures(heads, tmp_path):
    stats = pair_statistics(heads, PAIRS, 5, 99, 99, 0)
    fig = fig_stats(stats, tmp_path / "st.png")
    bars = [p.get_width() for p in fig.axes[0].patches[: len(PAIRS)]]
    assert bars == pytest.approx([stats["pairs"][f"{x}~{y}"]["rho"] for x, y in PAIRS])
    mean = seed_mean({s: make_heads(s) for s in (1, 2)})
    fig = fig_seed_mean_scatter(mean, "G", "Urel", tmp_path / "m.png", log=True)
    assert (fig.axes[0].get_xscale(), fig.axes[0].get_yscale()) == ("log", "log")


def test_training_curve_bins_the_log_history():
    from headplast.train.finetune import training_curve

    history = [{"step": i, "epoch": i / 10, "loss": float(i)} for i in range(1, 11)]
    history.insert(5, {"step": 5, "epoch": 0.5, "eval_loss": 0.9, "eval_accuracy": 0.6})
    curve = training_curve(history, {"loss": 1.1, "accuracy": 0.3}, max_points=4)
    # 10 losses in runs of 3 (ceil(10 / 4)): steps 3, 6, 9, 10 with their runs' means
    assert curve["train"] == [
        {"step": 3, "epoch": 0.3, "loss": 2.0},
        {"step": 6, "epoch": 0.6, "loss": 5.0},
        {"step": 9, "epoch": 0.9, "loss": 8.0},
        {"step": 10, "epoch": 1.0, "loss": 10.0},
    ]
    assert curve["eval"] == [
        {"step": 0, "epoch": 0.0, "loss": 1.1, "accuracy": 0.3},
        {"step": 5, "epoch": 0.5, "loss": 0.9, "accuracy": 0.6},
    ]
    assert len(training_curve(history)["train"]) == 10


def test_fig_training_marks_degenerate_seeds(tmp_path):
    from headplast.analysis.figures import fig_training

    def record(seed, acc, degenerate):
        return {
            "degenerate": degenerate,
            "majority_class_rate": 0.4,
            "training_curve": {
                "train": [
                    {"step": s, "epoch": s / 20, "loss": 1.1 - 0.01 * s * acc} for s in range(1, 21)
                ],
                "eval": [
                    {"step": 0, "epoch": 0, "loss": 1.1, "accuracy": 0.33},
                    {"step": 20, "epoch": 1, "loss": 0.8, "accuracy": acc},
                ],
            },
        }

    fig = fig_training({1: record(1, 0.7, False), 2: record(2, 0.4, True)}, tmp_path / "t.png")
    assert_png(tmp_path / "t.png")
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["seed 1", "seed 2 (degenerate)", "majority class (validation)"]
    assert fig.axes[1].get_ylabel() == "validation accuracy"  # records without `selection`
    assert fig.axes[0].get_lines()[1].get_linestyle() == "--"
    # chosen on train rows: the panel names them, theta1's validation accuracy is a star at the
    # step that chose it
    chosen = {
        s: {
            **record(s, acc, bad),
            "selection": {"split": "train"},
            "best_checkpoint_step": 20,
            "validation": {"theta1": {"accuracy": acc - 0.05}},
        }
        for s, acc, bad in ((1, 0.7, False), (2, 0.4, True))
    }
    fig = fig_training(chosen, tmp_path / "sel.png")
    ax = fig.axes[1]
    assert ax.get_ylabel() == "accuracy on the selection rows"
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*" and len(ln.get_xdata())]
    assert [(list(ln.get_xdata()), list(ln.get_ydata())) for ln in stars] == [
        ([20], [pytest.approx(0.65)]),
        ([20], [pytest.approx(0.35)]),
    ]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-1] == "theta1 on the validation split"
    # no curve (an imported theta1): a figure that says why
    msg = fig_training({1: {"validation": {}}}, tmp_path / "none.png")
    assert "No training log" in msg.axes[0].texts[0].get_text()
    assert_png(tmp_path / "none.png", min_bytes=1000)


def test_stats_script_tests_reliability_against_noise_and_uses_cross_half(heads, tmp_path):
    """Issue 27 items 4-5 through the stats rule's script: with per-example sidecars and the
    eval subset's record, each reliability carries its noise test, the subset advice knows the
    split's size, and a pair whose two sides come from the same examples (I_pre~I_post) takes
    its ceiling from the cross-half estimates; a pair with Urel keeps the full-subset one."""
    from headplast.io import write_per_example

    hp = tmp_path / "heads.csv"
    heads.to_csv(hp, index=False)
    pp = tmp_path / "pruning.jsonl"
    pp.write_text(
        "".join(
            json.dumps(
                {"order": "I_pre", "kind": "score", "step": j, "n_removed": j, "fraction": j / 4}
                | {"removed": [], "loss": 1.0, "acc": 0.9 - j * 0.1}
            )
            + "\n"
            for j in range(5)
        )
    )
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(1, 4, 6))
    sidecars = {}
    for name, keys in (("importance_pre", ("d", "kl")), ("importance_post", ("d", "kl"))):
        path = tmp_path / f"{name}.npz"
        write_per_example(path, {k: signal + rng.normal(size=(40, 4, 6)) for k in keys})
        sidecars[name] = str(path)
    (tmp_path / "eval_subset.json").write_text(json.dumps({"size": 40, "n_validation": 50}))
    run_script(
        "stats",
        tmp_path,
        {"heads": str(hp), "pruning": str(pp), **sidecars,
         "eval_subset": str(tmp_path / "eval_subset.json")},
        {"stats": str(tmp_path / "stats.json")},
        {"top_k": 5, "n_permutations": 99, "n_bootstrap": 99, "seed": 0,
         "split_half_repeats": 10},
        {"task": "mnli", "seed": "1"},
    )  # fmt: skip
    stats = read_json(tmp_path / "stats.json")
    rel = stats["reliability"]["I_pre"]
    assert {"noise_p95", "p_noise", "distinguishable_from_noise"} <= set(rel)
    assert stats["subset_advice"]["I_pre"]["n_available"] == 50
    same = stats["pairs"]["I_pre~I_post"]
    assert same["ceiling_method"].startswith("cross-half")
    assert {"rho_cross_half", "rho_same_half", "shared_example_bias"} <= set(same)
    assert stats["pairs"]["I_pre~Urel"]["ceiling_method"].startswith("split-half")
