"""The adapter table's new families on tiny random models: ModernBERT (fused Wqkv, rotary
positions, local attention), Llama, Qwen2 and Mistral (grouped-query attention) and GPT-2 (fused
Conv1D with transposed weights).

References do not share the code under test: the zero gate is checked against the output
projection's columns zeroed by hand, U against slices cut by hand from each family's own
parameter layout, the freeze against the rule of docs/methods.md ("Grouped-query attention")
written out per parameter.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch

from headplast.analysis.freeze_effects import held_urel, seed_effect
from headplast.measure.updates import head_updates
from headplast.model.adapters import UnsupportedModelError, resolve_layout
from headplast.model.gating import head_gates
from headplast.model.tiny import tiny_model
from headplast.train.freeze import HeadFreezer, head_masks
from tests.conftest import random_batches

FAMILIES = ("modernbert", "llama", "qwen2", "mistral", "gpt2")
GQA = ("llama", "qwen2", "mistral")
H, D, HD = 4, 32, 8  # query heads, hidden size, head size of every tiny model


def _inputs(seed: int = 0, batch: int = 5) -> dict[str, torch.Tensor]:
    """One right-padded batch of 12 tokens at most, padded with 0 (the tiny models' pad id)."""
    b = random_batches(1, batch, 12, seed=seed, token_types=False)[0]
    return {k: v for k, v in b.items() if k != "labels"}


def _attention(model, layer: int) -> torch.nn.Module:
    """Layer ``layer``'s attention module, by each family's own module names."""
    base = model.base_model
    if model.config.model_type == "gpt2":
        return base.h[layer].attn
    if model.config.model_type == "modernbert":
        return base.layers[layer].attn
    return base.layers[layer].self_attn


def _output_weight(model, layer: int) -> torch.Tensor:
    """The output projection's weight as [out, in] (GPT-2's Conv1D stores [in, out])."""
    att = _attention(model, layer)
    if model.config.model_type == "gpt2":
        return att.c_proj.weight.T
    return (att.Wo if model.config.model_type == "modernbert" else att.o_proj).weight


def _qkv(model, layer: int) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """{part: (weight [out, in], bias or None)} of query, key and value, cut by hand from each
    family's layout: ModernBERT's Wqkv rows [q | k | v] (view(3, H, d)), GPT-2's c_attn columns
    [q | k | v] (split(hidden)), separate maps otherwise."""
    att = _attention(model, layer)
    kind = model.config.model_type
    if kind in ("modernbert", "gpt2"):
        fused = att.Wqkv if kind == "modernbert" else att.c_attn
        w = fused.weight if kind == "modernbert" else fused.weight.T
        b = fused.bias
        return {
            part: (w[i * D : (i + 1) * D], None if b is None else b[i * D : (i + 1) * D])
            for i, part in enumerate(("query", "key", "value"))
        }
    mods = {"query": att.q_proj, "key": att.k_proj, "value": att.v_proj}
    return {p: (m.weight, m.bias) for p, m in mods.items()}


# ------------------------------------------------------------------------------------- layout


def test_layout_of_each_family():
    """Heads, head size, key/value heads and where each part's slices are, per family."""
    for family in FAMILIES:
        model = tiny_model(family)
        layout = resolve_layout(model)
        kv = 2 if family in GQA else H
        assert (layout.n_layers, layout.n_heads, layout.head_dim, layout.n_kv_heads) == (
            3,
            H,
            HD,
            kv,
        ), family
        assert [layout.kv_group(h) for h in range(H)] == ([0, 0, 1, 1] if kv == 2 else [0, 1, 2, 3])
        proj = layout.projections[1]
        fused = family in ("modernbert", "gpt2")
        assert [proj[p].offset for p in ("query", "key", "value")] == (
            [0, D, 2 * D] if fused else [0, 0, 0]
        )
        assert [proj[p].units for p in ("query", "key", "value", "output")] == [H, kv, kv, H]
        axes = [proj[p].axis for p in ("query", "output")]
        assert axes == ([1, 0] if family == "gpt2" else [0, 1]), family
        assert proj["query"].bias_sliced == (family in ("qwen2", "gpt2")), family
        assert not proj["output"].bias_sliced
        assert layout.layers[1].output is dict(model.named_modules())[proj["output"].module]


# -------------------------------------------------------------------------------------- gates


@pytest.mark.parametrize("family", FAMILIES)
def test_all_ones_gates_reproduce_the_logits_bit_for_bit(family):
    model = tiny_model(family)
    inputs = _inputs()
    with torch.no_grad():
        ref = model(**inputs).logits
        with head_gates(model) as ctrl:
            ctrl.set(torch.ones(5, 3, H))
            gated = model(**inputs).logits
    print(f"[maxdiff] {family} all-ones gates: {float((gated - ref).abs().max()):.3e}")
    assert torch.equal(gated, ref)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_gate_equals_removing_the_heads_columns_by_hand(family):
    """Gate xi[1, 2] = 0 gives the logits of the model whose output projection of layer 1 has
    head 2's input columns zeroed (rows of GPT-2's transposed Conv1D weight), and differs from
    the ungated model; the other examples' gates stay 1 (per-example gates)."""
    model = tiny_model(family)
    inputs = _inputs()
    removed = copy.deepcopy(model)
    with torch.no_grad():
        cols = slice(2 * HD, 3 * HD)
        att = _attention(removed, 1)
        if family == "gpt2":
            att.c_proj.weight[cols, :] = 0
        else:
            (att.Wo if family == "modernbert" else att.o_proj).weight[:, cols] = 0
        by_hand = removed(**inputs).logits
        ref = model(**inputs).logits
        gate = torch.ones(5, 3, H)
        gate[:3, 1, 2] = 0
        with head_gates(model) as ctrl:
            ctrl.set(gate)
            gated = model(**inputs).logits
    diff = float((gated[:3] - by_hand[:3]).abs().max())
    print(f"[maxdiff] {family} zero gate vs columns zeroed by hand: {diff:.3e}")
    assert diff <= 1e-6
    assert torch.equal(gated[3:], ref[3:])
    assert float((gated[:3] - ref[:3]).abs().max()) > 1e-4


def test_modernbert_gates_leave_local_attention_and_rotary_positions_alone():
    """Tiny ModernBERT: layer 1 attends within a window (local attention), layers 0 and 2
    globally. Gating heads of layer 1 off changes nothing before its output projection: the
    attention probabilities of layers 0 and 1 (rotary positions and the window inside them) are
    those of the ungated model, and layer 1's still give 0 to keys outside the window. Hooks sit
    on the output projections only."""
    model = tiny_model("modernbert")
    model.set_attn_implementation("eager")
    assert list(model.config.layer_types) == [
        "full_attention",
        "sliding_attention",
        "full_attention",
    ]
    inputs = {"input_ids": torch.randint(5, 128, (2, 12)), "attention_mask": torch.ones(2, 12)}
    inputs["attention_mask"] = inputs["attention_mask"].long()

    def hooks() -> dict[str, int]:
        return {
            n: len(m._forward_pre_hooks) + len(m._forward_hooks) for n, m in model.named_modules()
        }

    with torch.no_grad():
        ref = model(**inputs, output_attentions=True)
        gate = torch.ones(2, 3, H)
        gate[:, 1, :3] = 0
        before = hooks()
        with head_gates(model) as ctrl:
            added = {n: k - before[n] for n, k in hooks().items() if k != before[n]}
            ctrl.set(gate)
            out = model(**inputs, output_attentions=True)
    assert added == {f"model.layers.{i}.attn.Wo": 1 for i in range(3)}
    for layer in (0, 1):
        assert torch.equal(out.attentions[layer], ref.attentions[layer]), layer
    assert not torch.equal(out.attentions[2], ref.attentions[2])  # its input changed
    window = model.config.sliding_window  # half-window: keys within it of the query
    far = (torch.arange(12)[:, None] - torch.arange(12)[None, :]).abs() > window
    assert (out.attentions[1][..., far] == 0).all() and (out.attentions[0][..., far] > 0).all()
    assert not torch.equal(out.logits, ref.logits)


# ----------------------------------------------------------------------------------- updates


def _perturbed_pair(family: str, tmp_path):
    m0 = tiny_model(family, seed=0)
    m1 = copy.deepcopy(m0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m1.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    m0.save_pretrained(tmp_path / "a", safe_serialization=True)
    m1.save_pretrained(tmp_path / "b", safe_serialization=True)
    return m0, m1


def _double(parts: dict) -> dict:
    """The parts of :func:`_qkv` in float64 (differences taken as the checkpoints' reader does)."""
    return {k: (w.double(), None if b is None else b.double()) for k, (w, b) in parts.items()}


def _norm(w: torch.Tensor, b: torch.Tensor | None) -> float:
    sq = (w.double() ** 2).sum() + (0 if b is None else (b.double() ** 2).sum())
    return math.sqrt(float(sq))


@pytest.mark.parametrize("family", FAMILIES)
def test_update_equals_slices_cut_by_hand(tmp_path, family):
    """Uq/Uk/Uv/Uo, U and Urel of every head against slices cut by hand: query rows of the head,
    key/value rows of its group (head // 2 with grouped-query attention), output columns of the
    head; fused Wqkv/c_attn and GPT-2's transposed weights by each family's own layout."""
    m0, m1 = _perturbed_pair(family, tmp_path)
    rows = head_updates(tmp_path / "a", tmp_path / "b")
    assert len(rows) == 3 * H
    group_size = 2 if family in GQA else 1
    worst = 0.0
    with torch.no_grad():
        for r in rows:
            layer, h = r["layer"], r["head"]
            g = h // group_size
            assert r["kv_group"] == g
            q0, q1 = _double(_qkv(m0, layer)), _double(_qkv(m1, layer))
            parts, init = {}, {}
            for key, part, unit in (("Uq", "query", h), ("Uk", "key", g), ("Uv", "value", g)):
                sl = slice(unit * HD, (unit + 1) * HD)
                (w0, b0), (w1, b1) = q0[part], q1[part]
                parts[key] = _norm(w1[sl] - w0[sl], None if b0 is None else b1[sl] - b0[sl])
                init[key] = _norm(w0[sl], None if b0 is None else b0[sl])
            cols = slice(h * HD, (h + 1) * HD)
            o0, o1 = _output_weight(m0, layer).double(), _output_weight(m1, layer).double()
            parts["Uo"] = _norm(o1[:, cols] - o0[:, cols], None)
            init["Uo"] = _norm(o0[:, cols], None)
            U = math.sqrt(sum(v**2 for v in parts.values()))
            for key, v in parts.items():
                worst = max(worst, abs(r[key] - v))
            worst = max(worst, abs(r["U"] - U), abs(r["Urel"] - U / sum(init.values())))
    print(f"[maxdiff] {family} update vs slices cut by hand: {worst:.3e}")
    assert worst <= 1e-12


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_one_key_value_head_moved_moves_its_group_only(tmp_path, family):
    """Only key/value head 1 of layer 0 changes: with grouped-query attention query heads 2 and 3
    (its group) show the same Uk and nothing else; without it, head 1 alone."""
    m0 = tiny_model(family, seed=0)
    m1 = copy.deepcopy(m0)
    with torch.no_grad():
        if family == "gpt2":  # key columns of c_attn: D + head 1's features
            m1.transformer.h[0].attn.c_attn.weight[:, D + HD : D + 2 * HD] += 1.0
        else:
            m1.model.layers[0].self_attn.k_proj.weight[HD : 2 * HD] += 1.0
    m0.save_pretrained(tmp_path / "a", safe_serialization=True)
    m1.save_pretrained(tmp_path / "b", safe_serialization=True)
    rows = head_updates(tmp_path / "a", tmp_path / "b")
    moved = {(r["layer"], r["head"]): r for r in rows if r["U"] > 0}
    expect = [(0, 2), (0, 3)] if family == "llama" else [(0, 1)]
    assert sorted(moved) == expect
    for r in moved.values():
        assert r["Uk"] == pytest.approx(math.sqrt(HD * D)) and r["U"] == r["Uk"]
        assert r["Uq"] == r["Uv"] == r["Uo"] == 0.0


# ------------------------------------------------------------------------------------ freeze


def _train(model, heads, steps: int = 6):
    """AdamW (weight decay 0.1) with gradient clipping, the heads frozen; theta0's state."""
    model.train()
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    freezer = HeadFreezer(model, heads)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for batch in random_batches(steps, batch=4, seed=3, token_types=False):
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        freezer.restore()
    freezer.remove()
    return theta0


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "modernbert"])
def test_freeze_holds_exactly_the_rule(family):
    """Freezing (0, 0), (0, 1) (for the decoders with grouped-query attention the whole group 0 of
    layer 0) and (1, 2) (half of group 1 of layer 1): after training, the frozen heads' query rows
    and output columns, and the key/value rows of group 0 of layer 0, are torch.equal to theta0;
    the key/value rows of group 1 of layer 1 and the other heads' slices moved. Without grouped
    attention every frozen head's own key/value rows are held (each head is its own group)."""
    frozen = [(0, 0), (0, 1), (1, 2)]
    model = tiny_model(family, seed=0)
    theta0 = _train(model, frozen)
    gqa = family in GQA
    after, before = {}, {}
    for store, m in ((after, model), (before, None)):
        for layer in (0, 1):
            if m is None:  # theta0's values, through a copy with theta0's state
                m = copy.deepcopy(model)
                m.load_state_dict(theta0, strict=False)
            store[layer] = (_qkv(m, layer), _output_weight(m, layer).detach().clone())
    held, moved = [], []
    for layer, head in [(0, 0), (0, 1), (0, 2), (1, 2), (1, 3)]:
        is_frozen = (layer, head) in frozen
        (qkv1, o1), (qkv0, o0) = after[layer], before[layer]
        rows = slice(head * HD, (head + 1) * HD)
        (held if is_frozen else moved).append(
            torch.equal(qkv1["query"][0][rows], qkv0["query"][0][rows])
        )
        (held if is_frozen else moved).append(torch.equal(o1[:, rows], o0[:, rows]))
        group = head // 2 if gqa else head
        group_frozen = all(
            (layer, h) in frozen for h in range(H) if (h // 2 if gqa else h) == group
        )
        g_rows = slice(group * HD, (group + 1) * HD)
        for part in ("key", "value"):
            for t1, t0 in zip(qkv1[part], qkv0[part], strict=True):
                if t1 is None:
                    continue
                same = torch.equal(t1[g_rows], t0[g_rows])
                (held if group_frozen else moved).append(same)
    assert all(held) and len(held) >= 10
    assert not any(moved)
    masks = head_masks(model, frozen)
    n_masked = sum(int((m == 0).sum()) for m in masks.values())
    q_bias = family in ("qwen2", "gpt2")
    per_head = (HD * D + (HD if q_bias else 0)) + D * HD  # query rows (+ bias) and output columns
    kv_groups = 1 if gqa else 3  # groups frozen whole: group 0 of layer 0, or each frozen head
    per_group = 2 * (HD * D + (HD if q_bias else 0))
    assert n_masked == 3 * per_head + kv_groups * per_group


def test_freeze_check_counts_only_the_slices_the_freeze_holds():
    """frozen_Urel_max over held slices: a head of a whole frozen group keeps its Urel; a frozen
    head of a partly frozen group keeps only its query/output share (0 here: only its group's keys
    moved); files without kv_group (each head its own group) are read as before."""
    update = pd.DataFrame(
        {
            "layer": [0, 0, 0, 0],
            "head": [0, 1, 2, 3],
            "kv_group": [0, 0, 1, 1],
            "U": [2.0, 1.0, 3.0, 4.0],
            "Urel": [0.2, 0.1, 0.3, 0.4],
            "Uq": [0.0, 0.0, 0.0, 0.0],
            "Uk": [2.0, 1.0, 3.0, 3.0],
            "Uv": [0.0, 0.0, 0.0, 0.0],
            "Uo": [0.0, 0.0, 0.0, math.sqrt(7.0)],
        }
    )
    frozen = {(0, 0), (0, 1), (0, 2)}
    assert held_urel(update, frozen).tolist() == [0.2, 0.1, 0.0, 0.4]
    assert held_urel(update, {(0, 3)})[3] == pytest.approx(0.4 * math.sqrt(7.0) / 4.0)
    assert held_urel(update.drop(columns="kv_group"), frozen).tolist() == [0.2, 0.1, 0.3, 0.4]
    run = {"validation": {"theta1": {"accuracy": 0.5}}, "frozen_heads": [[0, 2]]}
    assert seed_effect(run, run, update, update)["frozen_Urel_max"] == 0.0


def test_unsupported_layouts_are_named():
    """Query heads that do not split into equal key/value groups, or projections whose widths do
    not make the heads, are refused naming the model type and what was expected."""
    model = tiny_model("llama")
    model.config.num_key_value_heads = 3
    with pytest.raises(UnsupportedModelError, match="'llama'.*4 query heads do not share 3"):
        resolve_layout(model)
    model = tiny_model("gpt2")
    model.config.num_attention_heads = 3
    with pytest.raises(UnsupportedModelError, match="'gpt2', layer 0.*not 3 heads of one size"):
        resolve_layout(model)
