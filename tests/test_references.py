"""Measures against references that share no code with what they test.

No reference here goes through headplast.model.adapters, headplast.model.gating or the measures'
own helpers: module names and state-dict keys are spelled out per family, losses come from the
unhooked model, gate gradients from parameter gradients, and the join is checked value by value.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)

from headplast.measure.gradients import gate_gradients
from headplast.measure.heads import join_heads
from headplast.measure.importance import ablation_sweep, naive_sweep
from headplast.measure.updates import head_updates
from headplast.model.adapters import resolve_layout

from .conftest import random_batches, tiny_bert, tiny_deberta

EPS = 1e-20  # Ppred = G^2 / (F + eps), the package's default eps, spelled out

SMALL = {
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "num_labels": 3,
}

#: family -> (model class and config, base prefix, q, k, v, o relative to encoder.layer.N), literal.
FAMILIES = {
    "bert": (
        BertForSequenceClassification,
        BertConfig,
        "bert",
        ("attention.self.query", "attention.self.key", "attention.self.value"),
    ),
    "roberta": (
        RobertaForSequenceClassification,
        RobertaConfig,
        "roberta",
        ("attention.self.query", "attention.self.key", "attention.self.value"),
    ),
    "electra": (
        ElectraForSequenceClassification,
        ElectraConfig,
        "electra",
        ("attention.self.query", "attention.self.key", "attention.self.value"),
    ),
    "xlm-roberta": (
        XLMRobertaForSequenceClassification,
        XLMRobertaConfig,
        "roberta",
        ("attention.self.query", "attention.self.key", "attention.self.value"),
    ),
    "deberta-v2": (
        DebertaV2ForSequenceClassification,
        DebertaV2Config,
        "deberta",
        ("attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj"),
    ),
}


def _small(family: str, seed: int = 0, n_layers: int = 2, **overrides):
    """A tiny model of ``family`` (:data:`FAMILIES`), built from its literal classes."""
    cls, config_cls, _, _ = FAMILIES[family]
    extra = {"embedding_size": 16} if family == "electra" else {}
    torch.manual_seed(seed)
    config = config_cls(**{**SMALL, "num_hidden_layers": n_layers, **extra, **overrides})
    return cls(config).eval()


def _three_layers(family: str):
    return lambda seed=0: _small(family, seed, n_layers=3)


BERT_QKV = ("query", "key", "value")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_layout_names_are_the_literal_modules_of_each_family(family):
    _, _, prefix, (q, k, v) = FAMILIES[family]
    model = _small(family)
    layout = resolve_layout(model)
    assert (layout.n_layers, layout.n_heads, layout.head_dim) == (2, 4, 8)
    for i in range(2):
        expected = {
            "query": f"{prefix}.encoder.layer.{i}.{q}",
            "key": f"{prefix}.encoder.layer.{i}.{k}",
            "value": f"{prefix}.encoder.layer.{i}.{v}",
            "output": f"{prefix}.encoder.layer.{i}.attention.output.dense",
        }
        assert layout.names[i] == expected
        mods = layout.layers[i]
        for part, name in expected.items():
            assert getattr(mods, part) is model.get_submodule(name), (family, i, part)
        assert mods.layer is model.get_submodule(f"{prefix}.encoder.layer.{i}")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gates_against_output_columns_zeroed_by_name(family):
    """All-ones gates give the model's logits bit for bit; gate xi[1, 2] = 0 of the first three
    examples gives the logits of the model whose `<prefix>.encoder.layer.1.attention.output.dense`
    has head 2's input columns zeroed (the name spelled out per family), the other examples'
    logits unchanged."""
    from headplast.model.gating import head_gates

    _, _, prefix, _ = FAMILIES[family]
    model = _small(family, initializer_range=0.2)  # a head that changes the logits visibly
    (batch,) = random_batches(1, 5, 12, token_types=False)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    removed = _small(family, initializer_range=0.2)
    with torch.no_grad():
        dense = removed.get_submodule(f"{prefix}.encoder.layer.1.attention.output.dense")
        dense.weight[:, 2 * 8 : 3 * 8] = 0
        by_hand = removed(**inputs).logits
        ref = model(**inputs).logits
        with head_gates(model) as ctrl:
            ctrl.set(torch.ones(5, 2, 4))
            ones = model(**inputs).logits
            gate = torch.ones(5, 2, 4)
            gate[:3, 1, 2] = 0
            ctrl.set(gate)
            gated = model(**inputs).logits
    assert torch.equal(ones, ref)
    diff = float((gated[:3] - by_hand[:3]).abs().max())
    print(f"[maxdiff] {family} zero gate vs output columns zeroed by name: {diff:.3e}")
    assert diff <= 1e-6
    assert torch.equal(gated[3:], ref[3:])
    assert float((gated[:3] - ref[:3]).abs().max()) > 1e-4


# --------------------------------------------------------------------------- update, by key


def _perturbed_pair(make, tmp_path):
    m0, m1 = make(seed=0), make(seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p0, p1 in zip(m0.parameters(), m1.parameters(), strict=True):
            base = 0.1 * torch.randn(p0.shape, generator=g)  # no zero biases at theta0
            p0.add_(base)
            p1.add_(base + 0.01 * torch.randn(p0.shape, generator=g))  # its own change each
    m0.save_pretrained(tmp_path / "a", safe_serialization=True)
    m1.save_pretrained(tmp_path / "b", safe_serialization=True)
    return tmp_path / "a", tmp_path / "b"


@pytest.mark.parametrize(
    "make,prefix,proj",
    [
        (tiny_bert, "bert", BERT_QKV),
        (tiny_deberta, "deberta", ("query_proj", "key_proj", "value_proj")),
        (_three_layers("roberta"), "roberta", BERT_QKV),
        (_three_layers("electra"), "electra", BERT_QKV),
        (_three_layers("xlm-roberta"), "roberta", BERT_QKV),
    ],
    ids=["bert", "deberta-v2", "roberta", "electra", "xlm-roberta"],
)
def test_update_equals_slices_taken_by_state_dict_key(tmp_path, make, prefix, proj):
    a, b = _perturbed_pair(make, tmp_path)
    rows = head_updates(a, b)
    s0, s1 = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    H, d = 4, 8
    assert [(r["layer"], r["head"]) for r in rows] == [(i, h) for i in range(3) for h in range(H)]
    for r in rows:
        i, h = r["layer"], r["head"]
        rows_h = slice(h * d, (h + 1) * d)
        key = f"{prefix}.encoder.layer.{i}.attention"
        delta, init = {}, {}
        for field, name in zip(("Uq", "Uk", "Uv"), proj, strict=True):
            w0, w1 = (
                s0[f"{key}.self.{name}.weight"].double(),
                s1[f"{key}.self.{name}.weight"].double(),
            )
            b0, b1 = s0[f"{key}.self.{name}.bias"].double(), s1[f"{key}.self.{name}.bias"].double()
            delta[field] = math.sqrt(
                float(((w1 - w0)[rows_h] ** 2).sum() + ((b1 - b0)[rows_h] ** 2).sum())
            )
            init[field] = math.sqrt(float((w0[rows_h] ** 2).sum() + (b0[rows_h] ** 2).sum()))
        o0 = s0[f"{key}.output.dense.weight"].double()
        o1 = s1[f"{key}.output.dense.weight"].double()
        delta["Uo"] = float((o1 - o0)[:, rows_h].norm())
        init["Uo"] = float(o0[:, rows_h].norm())
        U = math.sqrt(sum(v * v for v in delta.values()))
        for field, v in delta.items():
            assert r[field] == pytest.approx(v, rel=1e-9), (i, h, field)
        assert r["U"] == pytest.approx(U, rel=1e-9)
        assert r["Urel"] == pytest.approx(U / sum(init.values()), rel=1e-9)
    assert len({r["Uk"] for r in rows} & {r["Uv"] for r in rows}) == 0  # the fields differ
    # checkpoints of the bare encoder name their tensors without "<prefix>.": the same rows
    for ckpt in (a, b):
        shutil.copytree(ckpt, tmp_path / f"bare_{ckpt.name}")
        tensors = load_file(ckpt / "model.safetensors")
        bare = {k.removeprefix(f"{prefix}."): v for k, v in tensors.items()}
        assert len(bare) == len(tensors) and bare.keys() != tensors.keys()
        save_file(bare, tmp_path / f"bare_{ckpt.name}" / "model.safetensors", {"format": "pt"})
    assert head_updates(tmp_path / "bare_a", tmp_path / "bare_b") == rows


# --------------------------------------------------------------------------- importance


def _plain_loss_acc(model, batches):
    """Mean cross-entropy (in float64, from the float32 logits) and accuracy of the unhooked
    model over all examples."""
    losses, hits = [], []
    with torch.no_grad():
        for b in batches:
            inputs = {k: v for k, v in b.items() if k != "labels"}
            logits = model(**inputs).logits
            losses.append(F.cross_entropy(logits.double(), b["labels"], reduction="none"))
            hits.append((logits.argmax(-1) == b["labels"]).double())
    return float(torch.cat(losses).mean()), float(torch.cat(hits).mean())


@pytest.mark.parametrize("sweep", ["cached", "naive"])
def test_importance_base_and_ablation_from_the_plain_model(sweep):
    model = tiny_bert(seed=3)
    batches = random_batches(2, batch=5, seed=2)
    res = (
        ablation_sweep(model, batches, sweep_tokens=10_000)
        if sweep == "cached"
        else naive_sweep(model, batches)
    )
    loss, acc = _plain_loss_acc(model, batches)
    assert res.loss_base == pytest.approx(loss, rel=1e-6)
    assert res.acc_base == acc
    assert res.n_examples == 10
    rows = res.rows()
    for layer, head in [(0, 1), (2, 3)]:
        zeroed = tiny_bert(seed=3)
        with torch.no_grad():
            w = zeroed.get_submodule(f"bert.encoder.layer.{layer}.attention.output.dense").weight
            w[:, head * 8 : (head + 1) * 8] = 0
        loss_a, acc_a = _plain_loss_acc(zeroed, batches)
        row = rows[layer * 4 + head]
        assert (row["layer"], row["head"]) == (layer, head)
        assert row["loss_ablate"] == pytest.approx(loss_a, rel=1e-5)
        assert row["acc_ablate"] == acc_a
        assert row["loss_base"] == pytest.approx(loss, rel=1e-6)
        assert row["acc_base"] == acc
        assert row["I"] == pytest.approx(loss_a - loss, rel=1e-4, abs=1e-7)


# --------------------------------------------------------------------------- gradients


def _gate_grads_from_parameter_grads(model, batches, prefix):
    """dL_i/dxi[l, h] for every example, without gates: the gate scales head h's input columns of
    the output projection, so dL/dxi = sum(W[:, cols] * dL/dW[:, cols]) at xi = 1. One example at
    a time, padding removed. -> [N, L, H] float64."""
    names = [f"{prefix}.encoder.layer.{i}.attention.output.dense" for i in range(3)]
    weights = [model.get_submodule(n).weight for n in names]
    out = []
    for b in batches:
        for i in range(b["labels"].shape[0]):
            mask = b["attention_mask"][i].bool()
            inputs = {k: v[i : i + 1, mask] for k, v in b.items() if k != "labels"}
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(**inputs).logits, b["labels"][i : i + 1])
            grads = torch.autograd.grad(loss, weights)
            g = torch.stack(
                [
                    (w.detach() * gw).double().reshape(w.shape[0], 4, 8).sum((0, 2))
                    for w, gw in zip(weights, grads, strict=True)
                ]
            )
            out.append(g)
    return torch.stack(out)


@pytest.mark.parametrize("make,prefix", [(tiny_bert, "bert"), (tiny_deberta, "deberta")])
def test_gradients_G_F_Ppred_from_parameter_gradients(make, prefix):
    model = make(seed=4)
    batches = random_batches(2, batch=4, seed=5)
    res = gate_gradients(model, batches)
    assert res.eps == EPS and res.n_examples == 8
    g = _gate_grads_from_parameter_grads(model, batches, prefix).numpy()
    G, Fi, S = np.abs(g).mean(0), (g**2).mean(0), g.mean(0)
    scale = np.abs(G).max()
    assert np.abs(res.G - G).max() <= 1e-5 * scale
    assert np.abs(res.F - Fi).max() <= 1e-5 * (Fi.max())
    assert np.abs(res.G_signed - S).max() <= 1e-5 * scale
    # Ppred from the test's own G and F, and from the G and F written on the same row
    assert res.Ppred == pytest.approx(G**2 / (Fi + EPS), rel=1e-4)
    rows = res.rows()
    for r in rows:
        i, h = r["layer"], r["head"]
        assert r["G"] == res.G[i, h] and r["F"] == res.F[i, h]
        assert r["G_signed"] == res.G_signed[i, h]
        assert r["Ppred"] == pytest.approx(r["G"] ** 2 / (r["F"] + EPS), rel=1e-12)
    # not a case where G^2/F and G/sqrt(F) agree: Ppred < 1 somewhere and G != 1
    assert (np.abs(res.Ppred - res.G / np.sqrt(res.F)) > 1e-3).any()


# --------------------------------------------------------------------------- join


def _importance_source(when: str) -> dict[str, str]:
    """importance_<when>.jsonl field -> heads.csv column, spelled out."""
    return {
        "I": f"I_{when}",
        "loss_base": f"loss_base_{when}",
        "loss_ablate": f"loss_ablate_{when}",
        "acc_base": f"acc_base_{when}",
        "acc_ablate": f"acc_ablate_{when}",
        "I_se": f"I_{when}_se",
        "I_ci_low": f"I_{when}_ci_low",
        "I_ci_high": f"I_{when}_ci_high",
        "acc_delta": f"acc_delta_{when}",
        "acc_delta_se": f"acc_delta_se_{when}",
        "I_kl": f"I_kl_{when}",
        "I_kl_se": f"I_kl_{when}_se",
    }


JOIN_SOURCES = {
    "importance_pre": _importance_source("pre"),
    "importance_post": _importance_source("post"),
    "gradfisher_pre": {
        "G": "G",
        "F": "F",
        "Ppred": "Ppred",
        "G_signed": "G_signed",
        "G_se": "G_se",
        "F_se": "F_se",
    },
    "update": {"U": "U", "Urel": "Urel", "Uq": "Uq", "Uk": "Uk", "Uv": "Uv", "Uo": "Uo"},
    "function_change": {"A_js": "A_js", "C_rel": "C_rel"},
}


def test_join_puts_every_value_in_its_own_cell(tmp_path):
    """Every (file, field, layer, head) has its own value; each file has its own line order."""
    L, H = 3, 2
    expected: dict[tuple[int, int], dict[str, float]] = {
        (i, h): {} for i in range(L) for h in range(H)
    }
    paths = {}
    rng = np.random.default_rng(0)
    for fi, (name, fields) in enumerate(JOIN_SOURCES.items()):
        lines = []
        for i in range(L):
            for h in range(H):
                row = {"layer": i, "head": h}
                for ki, (field, column) in enumerate(fields.items()):
                    value = 1000 * (fi + 1) + 100 * ki + 10 * i + h + 0.5
                    row[field] = value
                    expected[(i, h)][column] = value
                lines.append(json.dumps(row))
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("\n".join(lines[j] for j in rng.permutation(len(lines))) + "\n")
    df = join_heads(*(paths[n] for n in JOIN_SOURCES))
    # the pruning orders join the four other files only: same cells, no A_js / C_rel
    four = join_heads(*(paths[n] for n in list(JOIN_SOURCES)[:4]))
    assert list(four.columns) == [c for c in df.columns if c not in ("A_js", "C_rel")]
    assert four.equals(df[list(four.columns)])
    # heads.csv's column order: the required columns, A_js and C_rel, G_signed, the uncertainty
    # columns, then the losses and accuracies in the order the importance files give them
    assert list(df.columns) == [
        *("layer", "head", "I_pre", "I_post", "G", "F", "Ppred"),
        *("U", "Urel", "Uq", "Uk", "Uv", "Uo", "A_js", "C_rel", "G_signed"),
        *("I_pre_se", "I_pre_ci_low", "I_pre_ci_high", "I_post_se", "I_post_ci_low"),
        *("I_post_ci_high", "I_kl_pre", "I_kl_pre_se", "I_kl_post", "I_kl_post_se"),
        *("G_se", "F_se"),
        *("loss_base_pre", "loss_ablate_pre", "acc_base_pre", "acc_ablate_pre"),
        *("acc_delta_pre", "acc_delta_se_pre", "loss_base_post", "loss_ablate_post"),
        *("acc_base_post", "acc_ablate_post", "acc_delta_post", "acc_delta_se_post"),
        "kv_group",  # last; an update file without it: each head its own key/value group
    ]
    assert df["kv_group"].tolist() == df["head"].tolist()
    columns = {c for fields in JOIN_SOURCES.values() for c in fields.values()}
    assert set(df.columns) == {"layer", "head", "kv_group"} | columns
    assert [(r.layer, r.head) for r in df.itertuples()] == sorted(expected)
    for r in df.to_dict("records"):
        cells = expected[(r["layer"], r["head"])]
        for column, value in cells.items():
            assert r[column] == value, (r["layer"], r["head"], column)
    # grouped-query attention: the update file's kv_group, whatever its line order
    lines = [json.loads(x) for x in paths["update"].read_text().splitlines()]
    paths["update"].write_text(
        "".join(
            json.dumps(r | {"kv_group": 10 * r["layer"] + r["head"] // 2}) + "\n" for r in lines
        )
    )
    grouped = join_heads(*(paths[n] for n in JOIN_SOURCES))
    assert grouped.drop(columns="kv_group").equals(df.drop(columns="kv_group"))
    assert grouped["kv_group"].tolist() == [10 * la + h // 2 for la in range(L) for h in range(H)]
