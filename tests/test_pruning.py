"""Pruning curves against models whose output-projection columns are zeroed by state-dict key."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from headplast.analysis.figures import fig_pruning, fig_pruning_mean
from headplast.analysis.pruning_auc import (
    ROW_FIELDS,
    SEED_MEAN_COLUMNS,
    accuracy_auc,
    auc_across_seeds,
    auc_summary,
    curves_of_fit,
    curves_seed_mean,
    read_pruning,
)
from headplast.io import ArtifactError
from headplast.measure.pruning import Order, pruning_curves, removal_orders, step_counts

from .conftest import random_batches, tiny_bert, tiny_deberta
from .pruning_rows import synthetic_curves

OUTPUT_WEIGHT = re.compile(r"encoder\.layer\.(\d+)\.attention\.output\.dense\.weight$")
HEADS = [(layer, head) for layer in range(3) for head in range(4)]  # tiny models: 3 x 4, d = 8


@pytest.fixture(params=["deberta", "bert"])
def model(request):
    """Tiny models with large initial weights, so that removing heads changes loss and accuracy."""
    build = tiny_deberta if request.param == "deberta" else tiny_bert
    return build(initializer_range=0.5)


def _zeroed(model, heads, d=8):
    """A copy of ``model`` with the output-projection columns of ``heads`` zeroed, found by
    state-dict key (not through the adapter table)."""
    state = copy.deepcopy(model.state_dict())
    found = set()
    for key, w in state.items():
        m = OUTPUT_WEIGHT.search(key)
        if m:
            layer = int(m.group(1))
            found.add(layer)
            for la, h in heads:
                if la == layer:
                    w[:, h * d : (h + 1) * d] = 0
    assert found == {0, 1, 2}
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out


def _loss_acc(model, batches):
    """Mean cross-entropy and accuracy of a plain forward pass over all examples."""
    ce, hits, n = 0.0, 0, 0
    with torch.no_grad():
        for b in batches:
            inputs = {k: v for k, v in b.items() if k != "labels"}
            logits = model(**inputs).logits
            ce += float(torch.nn.functional.cross_entropy(logits, b["labels"], reduction="sum"))
            hits += int((logits.argmax(-1) == b["labels"]).sum())
            n += len(b["labels"])
    return ce / n, hits / n


def test_step_counts():
    assert step_counts(144, 0.1) == [0, 14, 29, 43, 58, 72, 86, 101, 115, 130, 144]
    assert step_counts(72, 0.25) == [0, 18, 36, 54, 72]
    assert step_counts(12, 1.0) == [0, 12]
    assert step_counts(12, 0.3) == [0, 4, 7, 11, 12]  # the last step is shorter
    assert step_counts(10, 0.1) == list(range(11))  # 1 / 0.1 steps, each of one head
    assert step_counts(3, 0.5) == [0, 2, 3]  # round(1.5) = 2
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="pruning.step_fraction"):
            step_counts(12, bad)


def test_removing_every_head_equals_all_columns_zeroed(model):
    batches = random_batches(2, batch=4)
    order = Order("all", "score", tuple(HEADS))
    rows = pruning_curves(model, batches, [order], 1.0)
    assert [r["n_removed"] for r in rows] == [0, 12]
    loss_none, acc_none = _loss_acc(model, batches)
    loss_all, acc_all = _loss_acc(_zeroed(model, HEADS), batches)
    assert abs(loss_all - loss_none) > 1e-3  # the heads mattered
    assert rows[0]["loss"] == pytest.approx(loss_none, abs=1e-5)
    assert rows[1]["loss"] == pytest.approx(loss_all, abs=1e-5)
    assert (rows[0]["acc"], rows[1]["acc"]) == (acc_none, acc_all)
    assert rows[1]["removed"] == [list(h) for h in HEADS]


@pytest.mark.parametrize("sweep_tokens", [None, 10_000])
def test_removing_a_set_equals_zeroing_exactly_its_columns(model, sweep_tokens):
    batches = random_batches(3, batch=4, seed=1)
    S = [(2, 1), (0, 3), (1, 0), (0, 0)]
    rest = [h for h in HEADS if h not in S]
    order = Order("S_first", "score", tuple(S + rest))
    # N = 12 heads in steps of 1/3: 0, 4 (= S), 8, 12 heads removed
    rows = pruning_curves(model, batches, [order], 1 / 3, sweep_tokens=sweep_tokens)
    assert [r["n_removed"] for r in rows] == [0, 4, 8, 12]
    assert rows[1]["removed"] == [list(h) for h in S]
    for row, removed in ((rows[1], S), (rows[2], S + rest[:4])):
        loss, acc = _loss_acc(_zeroed(model, removed), batches)
        assert row["loss"] == pytest.approx(loss, abs=1e-5)
        assert row["acc"] == acc
    loss_s, _ = _loss_acc(_zeroed(model, S), batches)
    loss_other, _ = _loss_acc(_zeroed(model, rest[:4]), batches)
    assert abs(loss_s - loss_other) > 1e-4  # a different set gives a different loss


def test_rows_of_several_orders_match_each_order_alone():
    """Two orders evaluated together (their distinct removed sets pooled, ``sweep_tokens`` stacking
    them) give each order the rows it gets alone: the pooled losses are read back for the right
    set. The rows carry exactly the fields pruning.jsonl's reader requires, fraction = n / N."""
    model = tiny_bert(initializer_range=0.5)
    batches = random_batches(2, batch=4, seed=2)
    first = Order("I_pre", "score", tuple(HEADS))
    last = Order("I_post_reverse", "reverse", tuple(HEADS[::-1]))
    rows = pruning_curves(model, batches, [first, last], 0.5, sweep_tokens=10_000)
    assert all(tuple(r) == ROW_FIELDS for r in rows)
    assert [(r["order"], r["kind"], r["step"], r["n_removed"], r["fraction"]) for r in rows] == [
        ("I_pre", "score", 0, 0, 0.0),
        ("I_pre", "score", 1, 6, 0.5),
        ("I_pre", "score", 2, 12, 1.0),
        ("I_post_reverse", "reverse", 0, 0, 0.0),
        ("I_post_reverse", "reverse", 1, 6, 0.5),
        ("I_post_reverse", "reverse", 2, 12, 1.0),
    ]
    assert rows[4]["removed"] == [list(h) for h in HEADS[:5:-1]]
    alone = pruning_curves(model, batches, [last], 0.5)
    for a, b in zip(rows[3:], alone, strict=True):
        assert a["removed"] == b["removed"] and a["acc"] == b["acc"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    assert abs(rows[1]["loss"] - rows[4]["loss"]) > 1e-4  # the two halves differ


def test_orders_share_evaluations_and_stacking_changes_nothing(model):
    batches = random_batches(2, batch=3)
    scores = pd.DataFrame(
        [{"layer": la, "head": h, "s": float((5 * la + 3 * h) % 7)} for la, h in HEADS]
    )
    orders = removal_orders(scores, n_random=3, seed=0, score_names=["s"], reverse="s")
    one = pruning_curves(model, batches, orders, 0.25, sweep_tokens=None)
    stacked = pruning_curves(model, batches, orders, 0.25, sweep_tokens=10_000)
    assert len(one) == 5 * 5
    for a, b in zip(one, stacked, strict=True):
        assert a["removed"] == b["removed"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    firsts = {r["loss"] for r in one if r["step"] == 0}
    lasts = {r["loss"] for r in one if r["n_removed"] == 12}
    assert len(firsts) == 1 and len(lasts) == 1  # shared by every order


def test_removal_orders():
    scores = pd.DataFrame(
        {
            "layer": [0, 0, 1, 1],
            "head": [0, 1, 0, 1],
            "a": [3.0, 1.0, 2.0, 1.0],
            "b": [0.5, 0.1, 0.9, 0.2],
        }
    )
    orders = removal_orders(scores, n_random=4, seed=7, score_names=["a", "b"], reverse="b")
    by_name = {o.name: o for o in orders}
    assert by_name["a"].heads == ((0, 1), (1, 1), (1, 0), (0, 0))  # tie (0,1)=(1,1) by layer
    assert by_name["b"].heads == ((0, 1), (1, 1), (0, 0), (1, 0))
    assert by_name["b_reverse"].heads == ((1, 0), (0, 0), (1, 1), (0, 1))
    assert by_name["b_reverse"].kind == "reverse"
    randoms = [o for o in orders if o.kind == "random"]
    assert [o.name for o in randoms] == ["random_0", "random_1", "random_2", "random_3"]
    assert all(sorted(o.heads) == [(0, 0), (0, 1), (1, 0), (1, 1)] for o in randoms)
    again = removal_orders(scores, n_random=4, seed=7, score_names=["a", "b"], reverse="b")
    assert [o.heads for o in again] == [o.heads for o in orders]
    other = removal_orders(scores, n_random=4, seed=8, score_names=["a", "b"], reverse="b")
    assert [o.heads for o in other if o.kind == "random"] != [o.heads for o in randoms]
    with pytest.raises(ValueError, match="lack the columns"):
        removal_orders(scores, n_random=0, seed=0, score_names=["a", "Urel"])


def test_removal_orders_break_ties_by_layer_then_head_among_many_heads():
    """24 heads in shuffled rows with scores that tie in threes and fours (as G or Ppred do at
    heads that never fire): every score order is ascending with ties by (layer, head), the
    reverse order descending with the same tie rule, and heads are plain ints (they are written
    to pruning.jsonl). 24 heads, because numpy's default sort is only stable below 17."""
    heads = [(la, h) for la in range(6) for h in range(4)]
    score = {(la, h): float((5 * la + 3 * h) % 7) for la, h in heads}
    rng = np.random.default_rng(0)
    rows = [{"layer": la, "head": h, "s": score[la, h]} for la, h in heads]
    scores = pd.DataFrame([rows[i] for i in rng.permutation(len(rows))])
    orders = removal_orders(scores, n_random=2, seed=3, score_names=["s"], reverse="s")
    assert [(o.name, o.kind) for o in orders] == [
        ("s", "score"),
        ("s_reverse", "reverse"),
        ("random_0", "random"),
        ("random_1", "random"),
    ]
    assert orders[0].heads == tuple(sorted(heads, key=lambda k: (score[k], k)))
    assert orders[1].heads == tuple(sorted(heads, key=lambda k: (-score[k], k)))
    # the random orders permute the (layer, head)-sorted list with one generator in turn
    gen = np.random.default_rng(3)
    for o in orders[2:]:
        assert o.heads == tuple(heads[j] for j in gen.permutation(24))
    assert all(type(x) is int for o in orders for h in o.heads for x in h)


def test_removal_orders_without_reverse_and_refusals():
    """``reverse=None`` adds no reverse order; a missing reverse column and a (layer, head) named
    twice are refused."""
    scores = pd.DataFrame({"layer": [0, 0, 1], "head": [0, 1, 0], "a": [2.0, 1.0, 3.0]})
    orders = removal_orders(scores, n_random=0, seed=0, score_names=["a"], reverse=None)
    assert [(o.name, o.heads) for o in orders] == [("a", ((0, 1), (0, 0), (1, 0)))]
    with pytest.raises(ValueError, match=re.escape("lack the columns ['b']")):
        removal_orders(scores, n_random=0, seed=0, score_names=["a"], reverse="b")
    twice = pd.concat([scores, scores.iloc[[1]]])
    with pytest.raises(ValueError, match="name a .layer, head. twice"):
        removal_orders(twice, n_random=0, seed=0, score_names=["a"], reverse=None)


def test_order_must_cover_every_head(model):
    with pytest.raises(ValueError, match="not a permutation"):
        pruning_curves(model, random_batches(1), [Order("x", "score", tuple(HEADS[:-1]))], 0.5)


def test_accuracy_auc_is_the_trapezoid_over_the_removed_fraction():
    rows = [
        {"order": "s", "kind": "score", "fraction": f, "acc": a}
        for f, a in [(0.0, 0.8), (0.25, 0.8), (0.5, 0.6), (0.75, 0.4), (1.0, 0.2)]
    ] + [
        {"order": f"random_{i}", "kind": "random", "fraction": f, "acc": a}
        for i, top in enumerate([0.6, 0.4])
        for f, a in [(0.0, top), (1.0, 0.0)]
    ]
    aucs = accuracy_auc(rows)
    assert list(aucs["order"]) == ["s", "random_0", "random_1"]
    # 0.25 * (0.8 + 0.7 + 0.5 + 0.3) = 0.575
    assert aucs["auc"].tolist() == pytest.approx([0.575, 0.3, 0.2])
    summary = auc_summary(rows)
    assert summary["auc"] == {"s": pytest.approx(0.575)}
    assert summary["random"]["n"] == 2
    assert summary["random"]["mean"] == pytest.approx(0.25)
    assert summary["random"]["sd"] == pytest.approx(np.std([0.3, 0.2], ddof=1))
    with pytest.raises(ValueError, match="does not span"):
        accuracy_auc(rows[1:5])


def test_seed_mean_of_curves_and_aucs():
    by_seed = {1: synthetic_curves(0.0), 2: synthetic_curves(0.1)}
    mean = curves_seed_mean(by_seed)
    assert list(dict.fromkeys(mean["order"])) == ["I_pre", "Urel", "I_post_reverse", "random"]
    mid = mean[(mean["order"] == "random") & (mean["fraction"] == 0.5)].iloc[0]
    # per seed the random orders' mean (0.55, 0.65), then over seeds
    assert mid["acc_mean"] == pytest.approx(0.6)
    assert mid["acc_sd"] == pytest.approx(np.std([0.55, 0.65], ddof=1))
    assert (mean["n_seeds"] == 2).all()
    aucs = auc_across_seeds(by_seed)
    # I_pre: 0.25 * (0.8 + 2 * top + 0.3) with top 0.9, 1.0
    assert aucs["I_pre"]["mean"] == pytest.approx(np.mean([0.725, 0.775]))
    assert aucs["I_pre"]["per_seed"] == {"1": pytest.approx(0.725), "2": pytest.approx(0.775)}
    assert aucs["random"]["mean"] == pytest.approx(0.25 * (1.1 + 2 * 0.6))
    assert auc_across_seeds({1: synthetic_curves(0.0)})["I_pre"]["sd"] is None


def test_read_pruning_returns_the_rows_and_names_a_bad_line(tmp_path):
    """Every line of pruning.jsonl comes back as written; a line without a field is named by file,
    line and field (so the researcher knows which file to delete), an empty file is refused."""
    row = dict(zip(ROW_FIELDS, ["G", "score", 0, 0, 0.0, [], 1.25, 0.5], strict=True))
    path = tmp_path / "pruning.jsonl"
    second = {**row, "step": 1, "n_removed": 1, "removed": [[0, 1]], "acc": 0.25}
    path.write_text(json.dumps(row) + "\n\n" + json.dumps(second) + "\n")
    assert read_pruning(path) == [row, second]
    no_acc = {k: v for k, v in row.items() if k != "acc"}
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n" + json.dumps(no_acc) + "\n")
    with pytest.raises(ArtifactError, match=re.escape(f"{path}:3: no ['acc']; delete the file")):
        read_pruning(path)
    path.write_text("\n")
    with pytest.raises(ArtifactError, match="empty; delete it"):
        read_pruning(path)


def test_accuracy_auc_sorts_by_fraction_and_keeps_first_seen_order():
    """Rows may come in any order: each curve is integrated along increasing removed fraction,
    and the orders keep the order they first appear in (not alphabetical)."""
    rows = [
        {"order": "z", "kind": "reverse", "fraction": f, "acc": a}
        for f, a in [(1.0, 0.0), (0.0, 1.0), (0.5, 0.0)]
    ] + [
        {"order": "a", "kind": "score", "fraction": f, "acc": a}
        for f, a in [(0.5, 1.0), (1.0, 1.0), (0.0, 1.0)]
    ]
    aucs = accuracy_auc(rows)
    assert list(aucs.columns) == ["order", "kind", "auc"]
    assert aucs.to_dict("records") == [
        {"order": "z", "kind": "reverse", "auc": 0.25},
        {"order": "a", "kind": "score", "auc": 1.0},
    ]
    empty = accuracy_auc(pd.DataFrame(columns=list(ROW_FIELDS)))
    assert list(empty.columns) == ["order", "kind", "auc"] and empty.empty


def test_auc_summary_random_band_with_two_one_and_no_random_orders():
    """stats.json's pruning block: the random orders' n, mean, sd (ddof=1), min and max; with one
    random order its sd is None (not 0), with none every figure is None, not NaN."""

    def curve(order, kind, top):  # AUC = 0.5 * top
        return [
            {"order": order, "kind": kind, "fraction": f, "acc": a}
            for f, a in [(0.0, top), (1.0, 0.0)]
        ]

    rows = curve("G", "score", 0.9) + curve("G_reverse", "reverse", 0.5)
    rand = curve("random_0", "random", 0.6) + curve("random_1", "random", 0.2)
    two = auc_summary(rows + rand)
    assert two["auc"] == {"G": pytest.approx(0.45), "G_reverse": pytest.approx(0.25)}
    assert two["random"] == {
        "n": 2,
        "mean": pytest.approx(0.2),
        "sd": pytest.approx(np.std([0.3, 0.1], ddof=1)),
        "min": pytest.approx(0.1),
        "max": pytest.approx(0.3),
    }
    one = auc_summary(rows + rand[:2])
    assert one["random"] == {
        "n": 1,
        "mean": pytest.approx(0.3),
        "sd": None,
        "min": pytest.approx(0.3),
        "max": pytest.approx(0.3),
    }
    none = auc_summary(rows)
    assert none["auc"] == {"G": pytest.approx(0.45), "G_reverse": pytest.approx(0.25)}
    assert none["random"] == {"n": 0, "mean": None, "sd": None, "min": None, "max": None}


def test_curves_seed_mean_rows_columns_and_an_order_missing_in_one_seed():
    """pruning_curves_mean.csv: one row per (order, fraction), orders in first-seen order with the
    random mean last, fractions ascending, exactly SEED_MEAN_COLUMNS on a fresh 0..n-1 index; an
    order only one seed has counts one seed and has NaN sd."""
    second = [r for r in synthetic_curves(0.1) if r["order"] != "Urel"]
    mean = curves_seed_mean({1: synthetic_curves(0.0), 2: second[::-1]})
    assert list(mean.columns) == list(SEED_MEAN_COLUMNS)
    assert list(mean.index) == list(range(12))
    orders = ["I_pre", "Urel", "I_post_reverse", "random"]
    assert list(zip(mean["order"], mean["fraction"], strict=True)) == [
        (o, f) for o in orders for f in (0.0, 0.5, 1.0)
    ]
    assert list(mean["kind"]) == ["score"] * 6 + ["reverse"] * 3 + ["random"] * 3
    assert list(mean["n_seeds"]) == [2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    ipre = mean[mean["order"] == "I_pre"]
    assert ipre["acc_mean"].tolist() == pytest.approx([0.8, 0.95, 0.3])
    assert ipre["acc_sd"].tolist() == pytest.approx([0.0, np.std([0.9, 1.0], ddof=1), 0.0])
    assert ipre["loss_mean"].tolist() == pytest.approx([1.0, 1.5, 2.0])
    assert ipre["loss_sd"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    urel = mean[mean["order"] == "Urel"]
    assert urel["acc_mean"].tolist() == pytest.approx([0.8, 0.7, 0.3])
    assert urel["acc_sd"].isna().all() and urel["loss_sd"].isna().all()
    with pytest.raises(ValueError, match="no seeds given"):
        curves_seed_mean({})


def test_auc_across_seeds_names_each_order_once_and_the_random_mean():
    """Per order the seeds' AUCs, their mean and sd (ddof=1); the random orders enter only as
    each seed's mean random AUC under ``random``; a seed without random orders adds none."""
    no_random = [r for r in synthetic_curves(0.1) if r["kind"] != "random"]
    aucs = auc_across_seeds({1: synthetic_curves(0.0), 2: synthetic_curves(0.1), 3: no_random})
    assert list(aucs) == ["I_pre", "Urel", "I_post_reverse", "random"]
    # 0.25 * (0.8 + 2 * top + 0.3) with top 0.7 (seed 1) and 0.8 (seeds 2, 3)
    assert aucs["Urel"]["per_seed"] == {
        "1": pytest.approx(0.625),
        "2": pytest.approx(0.675),
        "3": pytest.approx(0.675),
    }
    assert aucs["Urel"]["mean"] == pytest.approx(np.mean([0.625, 0.675, 0.675]))
    assert aucs["Urel"]["sd"] == pytest.approx(np.std([0.625, 0.675, 0.675], ddof=1))
    # random: (0.575 + 0.525) / 2 in seed 1, (0.625 + 0.575) / 2 in seed 2, none in seed 3
    assert aucs["random"]["per_seed"] == {"1": pytest.approx(0.55), "2": pytest.approx(0.6)}
    assert aucs["random"]["mean"] == pytest.approx(0.575)
    assert aucs["random"]["sd"] == pytest.approx(np.std([0.55, 0.6], ddof=1))


def test_pruning_figures_are_written(tmp_path):
    rows = synthetic_curves(0.0)
    auc = dict(zip(accuracy_auc(rows)["order"], accuracy_auc(rows)["auc"], strict=True))
    one = fig_pruning(rows, auc, tmp_path / "p.png")
    by_seed = {1: rows, 2: synthetic_curves(0.1)}
    mean = fig_pruning_mean(
        curves_seed_mean(by_seed), auc_across_seeds(by_seed), tmp_path / "m.png"
    )
    for name in ("p.png", "m.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    # the legends say which heads go first in each order, and name the random band
    labels = [t.get_text() for t in one.axes[0].get_legend().get_texts()]
    assert labels[0] == "2 random orders: mean (band: min to max), AUC 0.550"  # (0.575+0.525)/2
    assert "I_pre, smallest removed first, AUC 0.725" in labels
    assert any(t.startswith("I_post, largest removed first") for t in labels)
    labels = [t.get_text() for t in mean.axes[0].get_legend().get_texts()]
    assert any(t.startswith("Urel, smallest removed first") for t in labels)
    assert any(t.startswith("random orders, mean") for t in labels)


def test_readers_use_the_cross_fitted_curves_and_carry_the_in_sample_areas():
    """With both fits in the rows, every summary (per-seed areas, the random band, seed means,
    areas across seeds) is that of the cross-fitted rows alone; the in-sample areas come beside
    them (stats.json's ``in_sample_auc``, pruning_auc.json's ``in_sample_*``)."""
    plain = {1: synthetic_curves(0.0), 2: synthetic_curves(0.1)}
    both = {1: synthetic_curves(0.0, in_sample=0.04), 2: synthetic_curves(0.1, in_sample=0.04)}
    assert accuracy_auc(both[1]).equals(accuracy_auc(plain[1]))
    summary = auc_summary(both[1])
    assert {k: summary[k] for k in ("auc", "random")} == auc_summary(plain[1])
    # in-sample: 0.25 * (0.8 + 2 * (top + 0.04) + 0.3), I_pre top 0.9; random tops 0.6, 0.5
    assert summary["in_sample_auc"] == {
        "I_pre": pytest.approx(0.745),
        "Urel": pytest.approx(0.645),
        "I_post_reverse": pytest.approx(0.495),
        "random": pytest.approx(0.57),
    }
    assert "in_sample_auc" not in auc_summary(plain[1])
    pd.testing.assert_frame_equal(curves_seed_mean(both), curves_seed_mean(plain))
    aucs, ref = auc_across_seeds(both), auc_across_seeds(plain)
    assert list(aucs) == list(ref) == ["I_pre", "Urel", "I_post_reverse", "random"]
    for order, a in aucs.items():
        assert {k: a[k] for k in ("mean", "sd", "per_seed")} == ref[order]
        assert a["in_sample_mean"] == pytest.approx(ref[order]["mean"] + 0.02)
        assert a["in_sample_sd"] == pytest.approx(ref[order]["sd"])
        assert list(a["in_sample_per_seed"]) == ["1", "2"]
    assert "in_sample_mean" not in auc_across_seeds(plain)["I_pre"]


def test_curves_of_fit_selects_one_fit_and_refuses_mixed_or_unknown_fits(tmp_path):
    rows = synthetic_curves(0.0, in_sample=0.1)
    cross, inside = curves_of_fit(rows), curves_of_fit(rows, "in_sample")
    assert len(cross) == len(inside) == 15 and "fit" not in cross
    assert cross["acc"].tolist() == [r["acc"] for r in rows[:15]]
    assert inside["acc"].tolist() == [r["acc"] for r in rows[15:]]
    legacy = synthetic_curves(0.0)  # rows without `fit`: the only curves there are
    assert len(curves_of_fit(legacy)) == 15 and curves_of_fit(legacy, "in_sample").empty
    assert accuracy_auc(legacy, "in_sample").empty
    with pytest.raises(ValueError, match="some pruning rows have a `fit` and some do not"):
        curves_of_fit(rows[:15] + legacy)
    with pytest.raises(ValueError, match="fit 'halves' is none of"):
        curves_of_fit(rows, "halves")
    path = tmp_path / "pruning.jsonl"
    full = [{**r, "n_removed": r["step"], "removed": []} for r in rows]
    path.write_text("".join(json.dumps(r) + "\n" for r in full))
    assert read_pruning(path) == full
    bad = [*full[:3], {**full[3], "fit": "in-sample"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(ArtifactError, match=re.escape(f"{path}:4: fit 'in-sample' is none of")):
        read_pruning(path)


def test_figure_of_one_seed_draws_the_cross_fitted_curves(tmp_path):
    """Rows of both fits: the figure draws each order once, the cross-fitted curve."""
    rows = synthetic_curves(0.0, in_sample=0.1)
    aucs = accuracy_auc(rows)
    fig = fig_pruning(rows, dict(zip(aucs["order"], aucs["auc"], strict=True)), tmp_path / "p.png")
    acc = fig.axes[0]
    lines = {line.get_label(): line for line in acc.get_lines()}
    assert len(lines) == 4  # the random mean and the three named orders, once each
    ipre = lines["I_pre, smallest removed first, AUC 0.725"]
    assert list(ipre.get_ydata()) == [0.8, 0.9, 0.3]  # the cross-fitted accuracy, not 1.0


def test_bf16_autocast_curve_is_close_to_fp32():
    """bf16 autocast (CPU autocast here) gives the fp32 curve up to bf16 rounding."""
    model = tiny_bert(initializer_range=0.5)
    batches = random_batches(2, batch=4)
    order = [Order("all", "score", tuple(HEADS))]
    ref = pruning_curves(model, batches, order, 0.5)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        low = pruning_curves(model, batches, order, 0.5)
    for a, b in zip(ref, low, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.05)
