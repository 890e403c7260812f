"""The freeze intervention's mechanics (headplast.train.freeze) on tiny DeBERTa-v2 and BERT models:
which heads, and that they end bit for bit at theta0 while everything else trains."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from scipy import stats as sps

from headplast.analysis.freeze_effects import COLUMNS, freeze_table, order_kind, seed_effect
from headplast.model.adapters import resolve_layout
from headplast.model.loading import load_model
from headplast.train.finetune import finetune
from headplast.train.freeze import (
    HeadFreezer,
    freeze_callback,
    head_masks,
    heads_by_score,
    n_frozen,
    random_heads,
)
from headplast.train.theta0 import init_checkpoint
from tests.conftest import random_batches, tiny_bert, tiny_deberta
from tests.make_tiny_model import make_tiny_model

FROZEN = [(0, 1), (1, 3), (2, 0)]


def test_heads_by_score_takes_the_largest_and_breaks_ties_by_position():
    scores = pd.DataFrame(
        {"layer": [0, 0, 1, 1, 2, 2], "head": [0, 1, 0, 1, 0, 1], "Urel": [1, 5, 5, 2, 5, 0.5]}
    )
    assert n_frozen(6, 0.5) == 3 and n_frozen(144, 0.25) == 36 and n_frozen(10, 0.01) == 1
    assert heads_by_score(scores, "Urel", 0.5) == [(0, 1), (1, 0), (2, 0)]  # three tied at 5
    assert heads_by_score(scores, "Urel", 0.67) == [(0, 1), (1, 0), (2, 0), (1, 1)]
    with pytest.raises(ValueError, match="lack the columns"):
        heads_by_score(scores, "G", 0.5)
    with pytest.raises(ValueError, match=r"interventions.fraction must be in \(0, 1\]"):
        heads_by_score(scores, "Urel", 0.0)


def test_random_draws_are_shared_by_seeds_and_differ_between_draws():
    a = random_heads(12, 12, 0.25, seed=0, draw=0)
    assert a == random_heads(12, 12, 0.25, seed=0, draw=0)  # no training seed in the draw
    assert len(a) == 36 == len(set(a)) and a == sorted(a)
    assert all(0 <= la < 12 and 0 <= h < 12 for la, h in a)
    assert a != random_heads(12, 12, 0.25, seed=0, draw=1)
    assert a != random_heads(12, 12, 0.25, seed=1, draw=0)


def _slices(model, heads):
    """{param name: the frozen entries' values} (masked where the mask is 0)."""
    masks = head_masks(model, heads)
    params = dict(model.named_parameters())
    return {n: params[n].detach()[m == 0].clone() for n, m in masks.items()}


@pytest.mark.parametrize("build", [tiny_deberta, tiny_bert], ids=["deberta", "bert"])
def test_frozen_slices_end_equal_to_theta0_and_the_rest_trains(build):
    """AdamW with weight decay 0.1 for 10 steps: the frozen heads' q/k/v rows (weights and biases)
    and output-projection columns are torch.equal to theta0; the same projections' other rows
    and at least one other parameter moved. Without the restore step, decay moves them."""
    layout_model = build()
    layout = resolve_layout(layout_model)
    masks = head_masks(layout_model, FROZEN)
    d = layout.head_dim
    q = f"{layout.names[1]['query']}.weight"
    assert (masks[q][3 * d : 4 * d] == 0).all() and (masks[q][: 3 * d] == 1).all()
    o = f"{layout.names[0]['output']}.weight"
    assert (masks[o][:, d : 2 * d] == 0).all() and (masks[o][:, :d] == 1).all()

    def train(restore: bool):
        model = build()
        model.train()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        frozen0 = _slices(model, FROZEN)
        freezer = HeadFreezer(model, FROZEN)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        for batch in random_batches(10, batch=4):
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            if restore:
                freezer.restore()
        freezer.remove()
        return model, before, frozen0

    model, before, frozen0 = train(restore=True)
    after = _slices(model, FROZEN)
    # three heads in three layers: q, k, v weights and biases and the output weight, per layer
    assert frozen0.keys() == after.keys() and len(after) == 3 * 7
    for name in frozen0:
        assert torch.equal(frozen0[name], after[name]), name
    params = dict(model.named_parameters())
    assert not torch.equal(before[q][: 3 * d], params[q].detach()[: 3 * d])  # head 0-2 rows moved
    moved = [n for n, p in params.items() if n not in frozen0 and not torch.equal(before[n], p)]
    assert len(moved) > 10
    unrestored, _, frozen0b = train(restore=False)
    changed = _slices(unrestored, FROZEN)
    assert any(not torch.equal(frozen0b[n], changed[n]) for n in frozen0b)  # decay moves them


@pytest.mark.training
def test_finetune_with_frozen_heads_keeps_them_at_theta0(tmp_path):
    """The Trainer path: finetune with the freeze callback and weight decay 0.1 saves a theta1
    whose frozen slices equal theta0's bit for bit, while the model learned (other tensors
    moved)."""
    src = make_tiny_model(str(tmp_path / "src"))
    init_dir = tmp_path / "ckpt_init"
    init_checkpoint(src, 2, 0, init_dir)
    rng = random.Random(0)
    for name, n in (("train", 48), ("validation", 16)):
        with open(tmp_path / f"{name}.jsonl", "w") as fh:
            for _ in range(n):
                label = rng.randint(0, 1)
                row = {"premise": ("yes " if label else "no ") + "a cat", "hypothesis": "a dog"}
                fh.write(json.dumps({**row, "label": label}) + "\n")
    hp = {
        "learning_rate": 1e-2,
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "weight_decay": 0.1,
    }
    heads = [(0, 0), (1, 2)]
    finetune(
        init_dir, tmp_path / "train.jsonl", tmp_path / "validation.jsonl", tmp_path / "final",
        tmp_path / "trainer_out", hp, seed=0, max_length=32, callbacks=[freeze_callback(heads)],
    )  # fmt: skip
    theta0 = load_file(init_dir / "model.safetensors")
    theta1 = load_file(tmp_path / "final" / "model.safetensors")
    masks = head_masks(load_model(init_dir), heads)
    assert len(masks) == 2 * 7
    for name, m in masks.items():
        assert torch.equal(theta0[name][m == 0], theta1[name][m == 0]), name
        assert not torch.equal(theta0[name][m == 1], theta1[name][m == 1]), name


# ------------------------------------------------------------------------- across seeds


def _update(seed: int, frozen=(), scale: float = 1.0) -> pd.DataFrame:
    """An update.jsonl frame of 3 x 4 heads: U grows with the head index; frozen heads 0."""
    rows = []
    for la in range(3):
        for h in range(4):
            u = 0.0 if (la, h) in frozen else scale * (1 + h + la + seed / 10)
            rows.append({"layer": la, "head": h, "U": u, "Urel": u / 10})
    return pd.DataFrame(rows)


def _rc(acc: float, heads=()) -> dict:
    return {"validation": {"theta1": {"accuracy": acc}}, "frozen_heads": [list(h) for h in heads]}


def test_freeze_table_effects_band_and_verdicts():
    heads = [(0, 0), (1, 1), (2, 3)]
    base = {1: (_rc(0.80), _update(1)), 2: (_rc(0.70), _update(2))}
    accs = {
        "Urel": (0.60, 0.56),
        "G": (0.81, 0.73),
        "random_0": (0.76, 0.68),
        "random_1": (0.75, 0.65),
    }
    effects = {
        order: {
            s: seed_effect(base[s][0], _rc(acc, heads), _update(s, heads, 1.5), base[s][1])
            for s, acc in zip((1, 2), pair, strict=True)
        }
        for order, pair in accs.items()
    }
    e = effects["Urel"][1]
    assert e["delta_acc"] == pytest.approx(-0.20) and e["frozen_Urel_max"] == 0.0
    assert e["other_U_ratio"] == pytest.approx(1.5)  # the other heads moved 1.5x as far
    table = freeze_table(effects)
    assert list(table["order"]) == ["Urel", "G", "random_0", "random_1"]  # score orders first
    row = table.set_index("order")
    assert row.loc["Urel", "delta_acc_mean"] == pytest.approx(-0.17)  # (-0.20 - 0.14) / 2
    half = sps.t.ppf(0.975, 1) * np.std([-0.20, -0.14], ddof=1) / np.sqrt(2)
    assert row.loc["Urel", "ci_low"] == pytest.approx(-0.17 - half)
    # random band: mean effects -0.03 (draw 0) and -0.05 (draw 1)
    assert row.loc["Urel", "random_band_low"] == pytest.approx(-0.05)
    assert row.loc["Urel", "random_band_high"] == pytest.approx(-0.03)
    assert row.loc["Urel", "verdict"] == "below" and row.loc["G", "verdict"] == "above"
    assert pd.isna(row.loc["random_0", "verdict"])
    assert row.loc["G", "per_seed"] == "1:0.010000;2:0.030000"


def _effects(*deltas, urel=0.0, ratio=1.0) -> dict:
    """``effects[order]``: one seed_effect dict per seed (1, 2, ...) with these delta_acc."""
    return {
        s: {"delta_acc": d, "frozen_Urel_max": urel, "other_U_ratio": ratio}
        for s, d in enumerate(deltas, 1)
    }


def test_freeze_table_verdict_boundaries_order_and_columns():
    """A mean exactly at the band's low or high end is ``within`` (only strictly outside is below
    or above); score orders come first in their given order even when the draws are listed
    first; the table has exactly COLUMNS on a fresh 0..n-1 index."""
    table = freeze_table(
        {
            "random_0": _effects(-0.25, -0.25),
            "I_pre": _effects(-0.25, -0.25, urel=0.5, ratio=2.0),
            "random_1": _effects(-0.125, -0.125),
            "G": _effects(-0.125, -0.125),
            "U": _effects(-0.1875, -0.1875),
            "Urel": _effects(-0.5, -0.25),
            "Ppred": _effects(0.0, 0.0),
        }
    )
    assert list(table.columns) == COLUMNS and list(table.index) == list(range(7))
    assert list(table["order"]) == ["I_pre", "G", "U", "Urel", "Ppred", "random_0", "random_1"]
    assert list(table["kind"]) == ["score"] * 5 + ["random"] * 2
    assert list(table["verdict"][:5]) == ["within", "within", "within", "below", "above"]
    assert table["verdict"][5:].isna().all()
    assert (table["random_band_low"] == -0.25).all() and (table["random_band_high"] == -0.125).all()
    first = table.iloc[0]
    assert (first["frozen_Urel_max"], first["other_U_ratio_mean"], first["n_seeds"]) == (0.5, 2, 2)
    assert first["per_seed"] == "1:-0.250000;2:-0.250000"


def test_freeze_table_without_random_draws_has_no_band_and_no_verdict():
    """Score orders only: no band to compare with, so the band and every verdict are empty
    (not NaN bounds that would read as ``within``); one seed gives no sd or interval."""
    table = freeze_table({"Urel": _effects(-0.2), "G": _effects(0.1, 0.3)})
    assert list(table["order"]) == ["Urel", "G"]
    assert table["random_band_low"].isna().all() and table["random_band_high"].isna().all()
    assert table["verdict"].isna().all()
    urel = table.iloc[0]
    assert urel["delta_acc_mean"] == -0.2 and urel["n_seeds"] == 1
    assert pd.isna(urel["delta_acc_sd"]) and pd.isna(urel["ci_low"]) and pd.isna(urel["ci_high"])
    assert table.iloc[1]["delta_acc_mean"] == pytest.approx(0.2)
    assert order_kind("random_12") == "random" and order_kind("randomized") == "score"


def test_seed_effect_refuses_heads_missing_from_the_update():
    with pytest.raises(ValueError, match="not all in the update table"):
        seed_effect(_rc(0.8), _rc(0.7, [(5, 0)]), _update(1), _update(1))


def test_freeze_summary_and_figure_scripts(tmp_path):
    from headplast.io import write_head_jsonl, write_json
    from tests.script_runner import run_script

    heads = [(0, 0), (1, 1), (2, 3)]
    files = {"run_config": [], "base_update": [], "frozen_run_config": [], "frozen_update": []}
    for s, acc in ((1, 0.8), (2, 0.7)):
        write_json(tmp_path / f"rc{s}.json", {**_rc(acc), "degenerate": False})
        write_head_jsonl(tmp_path / f"u{s}.jsonl", _update(s).to_dict("records"))
        files["run_config"].append(str(tmp_path / f"rc{s}.json"))
        files["base_update"].append(str(tmp_path / f"u{s}.jsonl"))
    for order, delta in (("Urel", -0.1), ("random_0", -0.01)):
        for s, acc in ((1, 0.8), (2, 0.7)):
            write_json(tmp_path / f"{order}{s}.json", _rc(acc + delta, heads))
            write_head_jsonl(tmp_path / f"{order}u{s}.jsonl", _update(s, heads).to_dict("records"))
            files["frozen_run_config"].append(str(tmp_path / f"{order}{s}.json"))
            files["frozen_update"].append(str(tmp_path / f"{order}u{s}.jsonl"))
    out = str(tmp_path / "freeze.csv")
    params = {"seeds": [1, 2], "orders": ["Urel", "random_0"], "keep_degenerate": False}
    run_script("freeze_summary", tmp_path, input=files, output={"table": out}, params=params)
    table = pd.read_csv(out).set_index("order")
    assert table.loc["Urel", "delta_acc_mean"] == pytest.approx(-0.1)
    assert table.loc["Urel", "verdict"] == "below" and table.loc["Urel", "frozen_Urel_max"] == 0
    fig = str(tmp_path / "fig_freeze.png")
    run_script("fig_freeze", tmp_path, input={"table": out}, output={"fig": fig},
               wildcards={"task": "t", "start": "probe"})  # fmt: skip
    assert open(fig, "rb").read()[:4] == b"\x89PNG"


def test_seed_effect_names_heads_the_unconstrained_run_lacks():
    """Update tables of two different models (the frozen run has a head the unconstrained one
    lacks) are refused with the heads named, not a bare KeyError."""
    frozen_update = pd.DataFrame(
        {"layer": [0, 0, 1], "head": [0, 1, 0], "U": [1.0, 2, 3], "Urel": [0.1, 0.2, 0.3]}
    )
    base_update = frozen_update.iloc[:2]
    run = {"validation": {"theta1": {"accuracy": 0.5}}}
    with pytest.raises(ValueError, match=r"lacks the heads \[\(1, 0\)\] of the frozen run"):
        seed_effect(run, {**run, "frozen_heads": [[0, 0]]}, frozen_update, base_update)
