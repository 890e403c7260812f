"""headplast.analysis.starts: the starts side by side, from hand-written stability and pair
summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from headplast.analysis.figures import fig_starts
from headplast.analysis.starts import COLUMNS, compare_starts


def _stability(mean: float, lo: float, hi: float, n: int = 3) -> dict:
    return {"mean": mean, "min": lo, "max": hi, "n_pairs": n}


def _pair(mean, ci, n, informative=True, overlap=2.5, expected=0.75, method="fisher_z") -> dict:
    return {
        "rho": {"mean": mean, "ci": ci, "n": n, "informative": informative, "method": method},
        "overlap": {"mean": overlap, "expected": expected},
    }


RUNS = {
    ("m", "t", "random"): (
        {"I_pre": _stability(0.1, -0.2, 0.3), "Urel": _stability(0.7, 0.6, 0.8)},
        {"ci_level": 0.95, "pairs": {"I_pre~Urel": _pair(0.2, [-0.5, 0.7], 3)}},
    ),
    ("m", "t", "probe"): (
        {"I_pre": _stability(0.9, 0.85, 0.95), "Urel": _stability(0.6, 0.5, 0.7)},
        {"ci_level": 0.9, "pairs": {"I_pre~Urel": _pair(0.4, [-0.9, 0.95], 2, False)}},
    ),
}


def test_rows_read_side_by_side():
    table = compare_starts(RUNS)
    assert list(table.columns) == COLUMNS
    # sorted by model, task, section, item, then start: the two starts of one item adjacent
    assert table[["section", "item", "start"]].values.tolist() == [
        ["pair", "I_pre~Urel", "probe"],
        ["pair", "I_pre~Urel", "random"],
        ["stability", "I_pre", "probe"],
        ["stability", "I_pre", "random"],
        ["stability", "Urel", "probe"],
        ["stability", "Urel", "random"],
    ]
    row = table[(table["item"] == "I_pre~Urel") & (table["start"] == "random")].iloc[0]
    assert (row["rho"], row["rho_low"], row["rho_high"], row["n"]) == (0.2, -0.5, 0.7, 3)
    assert (row["overlap"], row["overlap_chance"]) == (2.5, 0.75)
    assert row["interval"] == "95% interval over seeds on Fisher's z"
    probe = table[(table["item"] == "I_pre~Urel") & (table["start"] == "probe")].iloc[0]
    assert probe["interval"] == "90% interval over seeds on Fisher's z (not informative: 2 seeds)"
    stab = table[(table["item"] == "Urel") & (table["start"] == "probe")].iloc[0]
    assert (stab["rho"], stab["rho_low"], stab["rho_high"], stab["n"]) == (0.6, 0.5, 0.7, 3)
    assert stab["interval"] == "min..max over seed pairs"
    assert math.isnan(stab["overlap"]) and math.isnan(stab["overlap_chance"])
    for col in ("rho", "rho_low", "rho_high", "overlap", "overlap_chance", "n"):
        assert pd.api.types.is_numeric_dtype(table[col]), col


def test_older_summaries_and_missing_intervals():
    """A pair summary without a method (a raw t-interval) is named so; one seed (no interval)
    gives NaN bounds, not an error."""
    runs = {
        ("m", "t", "random"): (
            {},
            {"pairs": {"G~Urel": _pair(0.3, None, 1, method=None)}},
        )
    }
    row = compare_starts(runs).iloc[0]
    assert row["interval"] == "95% t-interval over seeds"
    assert math.isnan(row["rho_low"]) and math.isnan(row["rho_high"]) and row["rho"] == 0.3


def test_fig_starts_draws_every_run(tmp_path):
    runs = {**RUNS, ("m", "t2", "random"): RUNS[("m", "t", "random")]}
    out = tmp_path / "fig_starts.png"
    fig_starts(compare_starts(runs), out, title="starts")
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    h, w = imread(out).shape[:2]
    assert w == pytest.approx(13 * 110, abs=2) and h == pytest.approx(2 * 3.6 * 110, abs=2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    assert np.isfinite(compare_starts(runs)["rho"]).all()


def test_fig_starts_tick_labels_do_not_overlap(tmp_path):
    """At the rendered size, no two x tick labels of a panel overlap (the stability panel's
    measure names used to print on top of each other)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["I_pre", "I_post", "G", "F", "Ppred", "U", "Urel", "A_js", "C_rel", "I_kl_pre"]
    runs = {("m", "t", s): ({n: _stability(0.5, 0.4, 0.6) for n in names}, {"pairs": {}})
            for s in ("random", "probe")}  # fmt: skip
    captured = {}
    real_close = plt.close
    plt.close = lambda fig=None: captured.setdefault("fig", fig)
    try:
        fig_starts(compare_starts(runs), tmp_path / "s.png")
    finally:
        plt.close = real_close
    fig = captured["fig"]
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    assert len(boxes) == len(names)
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert not a.overlaps(b), (a, b)
    real_close(fig)


def test_runs_without_pairs_and_across_models_and_tasks():
    """A run whose pair summary has no pairs yet (or no ``pairs`` key at all) contributes its
    stability rows only; rows sort by model, then task, then section, item and start, with the
    numbers of each row its own."""
    runs = {
        ("m2", "t", "random"): ({"G": _stability(0.5, 0.4, 0.6, 1)}, {}),
        ("m1", "t2", "random"): ({"G": _stability(0.3, 0.2, 0.4)}, {"ci_level": 0.95}),
        ("m1", "t1", "probe"): ({"G": _stability(0.8, 0.7, 0.9, 6)}, {"pairs": {}}),
    }
    table = compare_starts(runs)
    assert table[["model", "task", "section", "item", "start"]].values.tolist() == [
        ["m1", "t1", "stability", "G", "probe"],
        ["m1", "t2", "stability", "G", "random"],
        ["m2", "t", "stability", "G", "random"],
    ]
    assert table[["rho", "rho_low", "rho_high", "n"]].values.tolist() == [
        [0.8, 0.7, 0.9, 6],
        [0.3, 0.2, 0.4, 3],
        [0.5, 0.4, 0.6, 1],
    ]
    assert (table["interval"] == "min..max over seed pairs").all()
    assert table["overlap"].isna().all() and table["overlap_chance"].isna().all()


NO_USABLE = {
    "n_seeds": 0,
    "pairs": {},
    "no_usable_seed": "no usable seed: every seed [1, 2] is degenerate",
}


def test_a_start_without_usable_seed_is_one_row_saying_why():
    runs = {**RUNS, ("m", "t", "frozen"): ({}, NO_USABLE)}
    table = compare_starts(runs)
    skipped = table[table["section"] == "not_compared"]
    assert list(skipped["start"]) == ["frozen"] and list(skipped["item"]) == [""]
    assert (
        skipped["note"].iloc[0] == "not compared: no usable seed: every seed [1, 2] is degenerate"
    )
    assert skipped[["rho", "rho_low", "rho_high", "n"]].isna().all().all()
    assert table.loc[table["section"] != "not_compared", "note"].isna().all()
    assert len(table) == len(compare_starts(RUNS)) + 1


def test_fig_starts_says_in_words_when_no_start_is_comparable(tmp_path):
    """Every start without a usable seed: one row each, and a figure of words (it used to fail in
    matplotlib with 'Number of rows must be a positive integer, not 0')."""
    runs = {("m", "t", s): ({}, NO_USABLE) for s in ("random", "probe")}
    table = compare_starts(runs)
    assert list(table["section"]) == ["not_compared"] * 2
    out = tmp_path / "fig_starts.png"
    fig = fig_starts(table, out, title="starts")
    assert out.read_bytes()[:4] == b"\x89PNG"
    words = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert words.startswith("Nothing to compare.")
    assert "m / t / probe start: not compared: no usable seed" in words.replace("\n", " ")
    # one comparable start beside one without: the bars are drawn, the other named in the title
    mixed = compare_starts({**RUNS, ("m", "t", "frozen"): ({}, NO_USABLE)})
    fig = fig_starts(mixed, tmp_path / "mixed.png", title="starts")
    assert "m / t / frozen start: not compared" in fig._suptitle.get_text()
    assert len(fig.axes) == 2
