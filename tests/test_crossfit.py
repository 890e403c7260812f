"""Cross-fitted pruning curves: halves, per-half scores, and curves checked against a by-hand
evaluation on a tiny model (docs/methods.md, "Pruning curves")."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from headplast.analysis.pruning_auc import ROW_FIELDS, accuracy_auc
from headplast.io import ArtifactError, write_per_example
from headplast.measure.crossfit import (
    PerExampleScores,
    check_against_heads,
    crossfit_halves,
    read_per_example_scores,
    with_scores,
)
from headplast.measure.gradients import gate_gradients
from headplast.measure.importance import ablation_sweep
from headplast.measure.pruning import (
    batch_rows,
    crossfit_curves,
    crossfit_pruning,
    evaluation_count,
    pruning_curves,
    removal_losses,
    removal_orders,
    subset_labels,
)

from .conftest import random_batches, tiny_bert, tiny_deberta

HEADS = [(layer, head) for layer in range(3) for head in range(4)]  # tiny models: 3 x 4
EPS = 1e-20
COUNTS = [0, 3, 6, 9, 12]  # step_fraction 0.25 of 12 heads
EXAMPLE_ORDERS = ("I_pre", "I_post", "G", "Ppred", "I_post_reverse")
SCORE_ORDERS = ("I_pre", "I_post", "G", "Ppred", "U", "Urel")
N = 17  # examples of the curve tests (the `setup` fixture)


# --------------------------------------------------------------------------- halves


def test_halves_are_stratified_disjoint_cover_the_subset_and_are_deterministic():
    labels = np.random.default_rng(5).integers(0, 3, size=57)
    a, b = crossfit_halves(labels, seed=0)
    assert a.dtype == b.dtype == np.int64
    assert list(a) == sorted(a) and list(b) == sorted(b)
    assert not set(a) & set(b)
    assert sorted([*a, *b]) == list(range(57))
    for label in range(3):
        na, nb = int((labels[a] == label).sum()), int((labels[b] == label).sum())
        assert abs(na - nb) <= 1 and na + nb == int((labels == label).sum())
    assert abs(len(a) - len(b)) <= 1
    again = crossfit_halves(labels.tolist(), seed=0)
    assert [list(x) for x in again] == [list(a), list(b)]
    other = crossfit_halves(labels, seed=1)
    assert list(other[0]) != list(a)
    # pinned: the halves, and so every cross-fitted curve, do not change silently. Label 0
    # (positions 0, 1, 9) gives its odd example to half a (a tie so far); 1 and 2 split evenly.
    got = crossfit_halves([0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 1], 0)
    assert [x.tolist() for x in got] == [[0, 4, 6, 8, 9, 10], [1, 2, 3, 5, 7]]
    # three odd labels: the extra examples go to the smaller half in turn (5 and 4, not 6 and 3)
    got = crossfit_halves([2, 2, 2, 1, 1, 1, 0, 0, 0], 3)
    assert [x.tolist() for x in got] == [[0, 1, 3, 7, 8], [2, 4, 5, 6]]
    for bad in ([], [1]):
        with pytest.raises(ValueError, match="at least 2 eval examples"):
            crossfit_halves(bad, 0)


# --------------------------------------------------------------------------- per-half scores


def _scores_by_hand(pe: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    """I = mean d, G = mean |g|, F = mean g^2, Ppred = G^2 / (F + eps) over examples ``idx``."""
    g = pe["g"][idx]
    G, F = np.abs(g).mean(0), (g**2).mean(0)
    return {
        "I_pre": pe["d_pre"][idx].mean(0),
        "I_post": pe["d_post"][idx].mean(0),
        "G": G,
        "Ppred": G**2 / (F + EPS),
    }


def test_half_scores_over_all_examples_reproduce_the_per_head_values(tmp_path):
    """I_pre, I_post, G and Ppred over the full index set equal the per-head rows of the sweep
    and of the gate gradients: exactly from the float64 arrays, up to float32 rounding from the
    .npz sidecars; the consistency check passes on them and names the file when they differ."""
    pre, post = tiny_bert(initializer_range=0.5), tiny_bert(seed=1, initializer_range=0.5)
    batches = random_batches(2, batch=5, seed=3)
    sweep_pre, sweep_post = ablation_sweep(pre, batches), ablation_sweep(post, batches)
    grads = gate_gradients(pre, batches, eps=EPS)
    rows = {
        "I_pre": sweep_pre.rows(),
        "I_post": sweep_post.rows(),
        "G": grads.rows(),
        "Ppred": grads.rows(),
    }
    heads = pd.DataFrame(
        [
            {"layer": la, "head": h, **{k: r[i][k.split("_")[0]] for k, r in rows.items()}}
            for i, (la, h) in enumerate(HEADS)
        ]
    )
    assert heads["I_pre"].tolist() == [r["I"] for r in sweep_pre.rows()]
    exact = PerExampleScores(sweep_pre.d_i, sweep_post.d_i, grads.g_i, EPS).scores(np.arange(10))
    for name in ("I_pre", "I_post", "G", "Ppred"):
        assert exact[name][tuple(np.array(HEADS).T)].tolist() == heads[name].tolist(), name
    files = {k: tmp_path / f"{k}.npz" for k in ("importance_pre", "importance_post")}
    files["gradfisher_pre"] = tmp_path / "gradfisher_pre.npz"
    write_per_example(files["importance_pre"], sweep_pre.per_example())
    write_per_example(files["importance_post"], sweep_post.per_example())
    write_per_example(files["gradfisher_pre"], {"g": grads.g_i})
    pe = read_per_example_scores(files, 10, (3, 4), EPS)
    full = pe.scores(np.arange(10))
    for name in ("I_pre", "I_post", "G", "Ppred"):
        got = full[name][tuple(np.array(HEADS).T)]
        assert got == pytest.approx(heads[name].to_numpy(), rel=1e-5, abs=1e-7), name
    check_against_heads(pe, heads, files)
    wrong = heads.copy()
    wrong.loc[5, "G"] *= 1.5  # per-head G of another run
    with pytest.raises(ArtifactError, match=re.escape(f"{files['gradfisher_pre']}: ")) as err:
        check_against_heads(pe, wrong, files)
    assert "layer 1 head 1" in str(err.value) and "rerun the rule gradfisher_pre" in str(err.value)
    half = pe.scores([0, 2, 4])
    assert half["I_post"] == pytest.approx(pe.d_post[[0, 2, 4]].mean(0))
    assert not np.allclose(half["I_post"], full["I_post"])  # a half is not the whole subset


def test_per_example_files_of_another_subset_or_model_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    files = {k: tmp_path / f"{k}.npz" for k in ("importance_pre", "importance_post")}
    files["gradfisher_pre"] = tmp_path / "gradfisher_pre.npz"
    write_per_example(files["importance_pre"], {"d": rng.normal(size=(18, 3, 4))})
    write_per_example(files["importance_post"], {"d": rng.normal(size=(17, 3, 4))})
    write_per_example(files["gradfisher_pre"], {"g": rng.normal(size=(18, 3, 4))})
    with pytest.raises(ArtifactError) as err:
        read_per_example_scores(files, 18, (3, 4))
    text = str(err.value)
    assert text.startswith(f"{files['importance_post']}: array 'd' has shape (17, 3, 4)")
    assert "the eval subset has 18 examples" in text
    assert text.endswith("delete it and rerun the rule importance_post")
    write_per_example(files["importance_post"], {"d": rng.normal(size=(18, 3, 4))})
    assert read_per_example_scores(files, 18, (3, 4)).n_examples == 18
    with pytest.raises(ArtifactError, match=r"of 2 x 6 heads .*rerun the rule importance_pre"):
        read_per_example_scores(files, 18, (2, 6))
    write_per_example(files["gradfisher_pre"], {"d": rng.normal(size=(18, 3, 4))})
    with pytest.raises(ArtifactError, match=r"gradfisher_pre.npz: no array 'g'"):
        read_per_example_scores(files, 18, (3, 4))
    only_pre = {"importance_pre": files["importance_pre"]}
    missing = "no per-example file given for ['importance_post', 'gradfisher_pre']"
    with pytest.raises(ValueError, match=re.escape(missing)):
        read_per_example_scores(only_pre, 18, (3, 4))
    # the values of another subset given to the curves: refused before any evaluation
    pe = PerExampleScores(*(rng.normal(size=(17, 3, 4)) for _ in range(3)))
    with pytest.raises(ValueError, match="17 examples, the batches 18"):
        crossfit_pruning(
            tiny_bert(),
            random_batches(3, batch=6),
            np.arange(18),
            _heads(
                _scores_by_hand({"d_pre": pe.d_pre, "d_post": pe.d_post, "g": pe.g}, np.arange(17))
            ),
            pe,
            n_random=0,
            seed=0,
            step_fraction=0.5,
        )


# --------------------------------------------------------------------------- curves


def _heads(scores: dict[str, np.ndarray], seed: int = 9) -> pd.DataFrame:
    """A per-head frame with the example-based ``scores`` ([L, H]) and random U, Urel."""
    rng = np.random.default_rng(seed)
    u = rng.random((2, 3, 4))
    return pd.DataFrame(
        [
            {
                "layer": la,
                "head": h,
                **{k: float(v[la, h]) for k, v in scores.items()},
                "U": u[0, la, h],
                "Urel": u[1, la, h],
            }
            for la, h in HEADS
        ]
    )


def _orders_by_hand(scores: dict[str, np.ndarray], heads: pd.DataFrame, seed: int) -> dict:
    """Every order's heads, first removed first: ascending (ties by layer, head), the reverse of
    I_post descending, two random permutations of the (layer, head)-sorted heads."""
    u = {(r.layer, r.head): (r.U, r.Urel) for r in heads.itertuples()}
    value = {name: {k: float(scores[name][k]) for k in HEADS} for name in scores}
    value["U"] = {k: u[k][0] for k in HEADS}
    value["Urel"] = {k: u[k][1] for k in HEADS}
    out = {n: sorted(HEADS, key=lambda k, n=n: (value[n][k], k)) for n in value}
    out["I_post_reverse"] = sorted(HEADS, key=lambda k: (-value["I_post"][k], k))
    gen = np.random.default_rng(seed)
    for i in range(2):
        out[f"random_{i}"] = [HEADS[j] for j in gen.permutation(12)]
    return out


def _rows_by_hand(batches, positions, keep) -> list[dict]:
    """The batches cut to the examples at eval-subset positions ``keep``, padding kept."""
    out, j = [], 0
    for b in batches:
        rows = [r for r in range(len(b["labels"])) if positions[j + r] in set(keep)]
        j += len(b["labels"])
        if rows:
            out.append({k: v[rows] for k, v in b.items()})
    return out


@pytest.fixture(params=["bert", "deberta"])
def setup(request):
    """A tiny model, 17 examples in 3 batches (6, 6, 5) held in a shuffled (length-sorted-like)
    order, synthetic per-example values and the per-head frame of their full-subset scores. An
    odd count: the halves differ in size, so a mean of the halves is not the whole subset."""
    build = tiny_deberta if request.param == "deberta" else tiny_bert
    model = build(initializer_range=0.5)
    batches = random_batches(3, batch=6, seed=4)
    batches[-1] = {k: v[:5] for k, v in batches[-1].items()}
    positions = np.random.default_rng(1).permutation(N)
    rng = np.random.default_rng(2)
    pe = {k: rng.normal(size=(N, 3, 4)) for k in ("d_pre", "d_post", "g")}
    heads = _heads(_scores_by_hand(pe, np.arange(N)))
    return model, batches, positions, pe, heads


def test_crossfit_curve_is_the_mean_of_the_two_half_curves_by_hand(setup):
    """Each order's cross-fitted curve is exactly the mean of its two half curves: on half a the
    order fitted on half b's per-example values, on half b the one fitted on half a's (U, Urel
    and random: the same order on both), each half curve evaluated here with removal_losses on
    that half's examples alone."""
    model, batches, positions, pe, heads = setup
    rows, cost = crossfit_pruning(
        model,
        batches,
        positions,
        heads,
        PerExampleScores(pe["d_pre"], pe["d_post"], pe["g"], EPS),
        n_random=2,
        seed=0,
        step_fraction=0.25,
    )
    labels = np.empty(N, dtype=np.int64)
    labels[positions] = np.concatenate([b["labels"].numpy() for b in batches])
    halves = crossfit_halves(labels, 0)
    assert cost["halves"] == [len(halves[0]), len(halves[1])] and sorted(cost["halves"]) == [8, 9]
    fitted = [_orders_by_hand(_scores_by_hand(pe, idx), heads, 0) for idx in halves]
    by_hand = {"a": fitted[1], "b": fitted[0]}  # the order scored on a is fitted on b
    for name in EXAMPLE_ORDERS:  # the halves disagree, so a swap would be seen
        assert by_hand["a"][name] != by_hand["b"][name], name
    half_batches = {
        h: _rows_by_hand(batches, positions, idx) for h, idx in zip("ab", halves, strict=True)
    }
    cross = [r for r in rows if r["fit"] == "crossfit"]
    names = [*SCORE_ORDERS, "I_post_reverse", "random_0", "random_1"]
    assert [r["order"] for r in cross[::5]] == names
    for name in names:
        curve = {}
        for h in "ab":
            order = by_hand[h][name]
            sets = [frozenset(order[:c]) for c in COUNTS]
            curve[h] = removal_losses(model, half_batches[h], sets)
        got = [r for r in cross if r["order"] == name]
        assert [r["n_removed"] for r in got] == COUNTS
        for j, r in enumerate(got):
            assert r["loss"] == (curve["a"][0][j] + curve["b"][0][j]) / 2, (name, j)
            assert r["acc"] == (curve["a"][1][j] + curve["b"][1][j]) / 2, (name, j)
            assert r["loss_halves"] == [curve["a"][0][j], curve["b"][0][j]]
            assert r["acc_halves"] == [curve["a"][1][j], curve["b"][1][j]]
            want = [[list(k) for k in by_hand[h][name][: COUNTS[j]]] for h in "ab"]
            assert r["removed_halves"] == want and r["removed"] == want[0]
            assert r["n_halves"] == cost["halves"] and r["fraction"] == COUNTS[j] / 12
    inside = {r["order"]: r for r in rows if r["fit"] == "in_sample" and r["n_removed"] == 3}
    mid = {r["order"]: r for r in cross if r["n_removed"] == 3}
    assert inside["I_pre"]["loss"] != mid["I_pre"]["loss"]  # cross-fitting changed the curve


def test_in_sample_curve_from_the_halves_equals_the_whole_subset(setup):
    """The in_sample rows (orders fitted on the whole subset, the two halves' sums added) are
    what pruning_curves gives on all the batches at once; the rows carry every reader field."""
    model, batches, positions, pe, heads = setup
    per_example = PerExampleScores(pe["d_pre"], pe["d_post"], pe["g"], EPS)
    rows, _ = crossfit_pruning(
        model,
        batches,
        positions,
        heads,
        per_example,
        n_random=2,
        seed=0,
        step_fraction=0.25,
        sweep_tokens=10_000,  # several sets per pass
    )
    assert all(set(ROW_FIELDS) <= set(r) for r in rows)
    assert [r["fit"] for r in rows] == ["crossfit"] * 45 + ["in_sample"] * 45
    inside = [r for r in rows if r["fit"] == "in_sample"]
    direct = pruning_curves(model, batches, removal_orders(heads, 2, 0), 0.25, sweep_tokens=10_000)
    assert len(inside) == len(direct) == 45
    for a, b in zip(inside, direct, strict=True):
        assert (a["order"], a["kind"], a["step"], a["removed"]) == (
            b["order"],
            b["kind"],
            b["step"],
            b["removed"],
        )
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
        assert a["acc"] == b["acc"]
        assert a["removed_halves"] == [a["removed"], a["removed"]]
        # the whole subset: the halves' means weighted by their example counts
        assert a["loss"] == pytest.approx(np.dot(a["n_halves"], a["loss_halves"]) / N)
    # the readers take the cross-fitted rows unless told otherwise
    assert accuracy_auc(rows)["auc"].tolist() == accuracy_auc(rows[:45], "crossfit")["auc"].tolist()
    assert accuracy_auc(rows, "in_sample")["auc"].tolist() == pytest.approx(
        accuracy_auc(direct)["auc"].tolist()
    )


def test_each_half_is_evaluated_once_with_the_union_of_its_sets():
    """The cost: per half its distinct removed sets (cross-fitted and in-sample) times its
    examples; the in-sample-only evaluation of before, for comparison (at most 2 shared + 9 x 3
    + 5 x 3 in-sample sets per half, against 2 + 9 x 3 before)."""
    rng = np.random.default_rng(3)
    pe = {k: rng.normal(size=(18, 3, 4)) for k in ("d_pre", "d_post", "g")}
    heads = _heads(_scores_by_hand(pe, np.arange(18)))
    in_sample = removal_orders(heads, 2, 0)
    halves = [np.arange(0, 18, 2), np.arange(1, 18, 2)]
    half_orders = [
        removal_orders(with_scores(heads, _scores_by_hand(pe, idx)), 2, 0) for idx in halves[::-1]
    ]
    cost = evaluation_count(half_orders, in_sample, [9, 9], 12, 0.25)

    def distinct(orders) -> int:
        return len({frozenset(o.heads[:c]) for o in orders for c in COUNTS})

    want = 9 * (distinct(half_orders[0] + in_sample) + distinct(half_orders[1] + in_sample))
    assert cost == {"crossfit": want, "in_sample_only": 18 * distinct(in_sample)}
    # at most the bound (12 heads make some sets coincide, e.g. the reverse order's first 9 and
    # the complement of an ascending order's first 3)
    assert distinct(in_sample) <= 2 + 9 * 3 and cost["crossfit"] <= 2 * 9 * (2 + 14 * 3)
    assert distinct(half_orders[0] + in_sample) > distinct(in_sample)


def test_curves_refuse_mismatched_orders_and_positions(setup):
    model, batches, positions, pe, heads = setup
    orders = removal_orders(heads, 1, 0)
    halves = [
        batch_rows(batches, positions, range(9)),
        batch_rows(batches, positions, range(9, N)),
    ]
    with pytest.raises(ValueError, match="the halves' and the in-sample orders differ"):
        crossfit_curves(model, halves, [orders, orders[:-1]], orders, 0.5)
    with pytest.raises(ValueError, match="exactly two halves"):
        crossfit_curves(model, halves[:1], [orders], orders, 0.5)
    with pytest.raises(ValueError, match="permutation of the 17 examples"):
        subset_labels(batches, np.zeros(N, dtype=int))
    with pytest.raises(ValueError, match="16 positions for the 17 examples"):
        batch_rows(batches, positions[:16], range(9))
    assert sum(len(b["labels"]) for b in halves[0]) == 9
