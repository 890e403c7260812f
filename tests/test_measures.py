"""Equivalence tests of the measurement core against independent computations."""

from __future__ import annotations

import copy
import math
import statistics

import numpy as np
import pytest
import torch
from scipy import stats as sps
from transformers import GPTNeoXConfig, GPTNeoXForSequenceClassification

from headplast.data.batching import inputs_and_labels_on
from headplast.io import finite_or_none
from headplast.measure.checks import NonFiniteError, check_finite
from headplast.measure.gradients import gate_gradients, per_example_gate_grads, per_example_loop
from headplast.measure.importance import SweepResult, ablation_sweep, naive_sweep
from headplast.measure.uncertainty import standard_error
from headplast.model.adapters import UnsupportedModelError, resolve_layout
from headplast.model.gating import head_gates
from headplast.model.precision import autocast_context

from .conftest import random_batches, tiny_bert, tiny_deberta
from .nan_hooks import nan_gate_gradient, nan_when_ablated

MAXDIFF: dict[str, float] = {}


def _record(name: str, diff: float) -> None:
    MAXDIFF[name] = max(MAXDIFF.get(name, 0.0), diff)
    print(f"[maxdiff] {name}: {diff:.3e}")


def _logits(model, batch):
    inputs, _ = inputs_and_labels_on(batch, torch.device("cpu"))
    with torch.no_grad():
        return model(**inputs).logits


def test_layout_resolves_both_families(tiny_model):
    layout = resolve_layout(tiny_model)
    assert (layout.n_layers, layout.n_heads, layout.head_dim) == (3, 4, 8)
    assert layout.family in ("deberta-v2", "bert")
    assert layout.names[1]["output"].endswith("encoder.layer.1.attention.output.dense")


def test_gate_all_ones_is_exact(tiny_model):
    batch = random_batches(1)[0]
    ref = _logits(tiny_model, batch)
    layout = resolve_layout(tiny_model)
    with head_gates(tiny_model, layout) as ctrl:
        ctrl.set(torch.ones(batch["labels"].shape[0], 3, 4))
        gated = _logits(tiny_model, batch)
    _record("gate ones vs unhooked", float((gated - ref).abs().max()))
    assert torch.equal(gated, ref)


@pytest.mark.parametrize("layer,head", [(0, 0), (1, 2), (2, 3)])
def test_gate_zero_equals_zeroed_output_columns(tiny_model, layer, head):
    batch = random_batches(1)[0]
    layout = resolve_layout(tiny_model)
    d = layout.head_dim
    zeroed = copy.deepcopy(tiny_model)
    with torch.no_grad():
        resolve_layout(zeroed).layers[layer].output.weight[:, head * d : (head + 1) * d] = 0
    ref = _logits(zeroed, batch)
    gate = torch.ones(batch["labels"].shape[0], 3, 4)
    gate[:, layer, head] = 0
    with head_gates(tiny_model, layout) as ctrl:
        ctrl.set(gate)
        gated = _logits(tiny_model, batch)
    diff = float((gated - ref).abs().max())
    _record("gate zero vs zeroed columns", diff)
    assert diff <= 1e-6
    assert not torch.allclose(gated, _logits(tiny_model, batch))  # the head mattered


def test_hooks_removed_after_exception(tiny_model):
    layout = resolve_layout(tiny_model)
    with pytest.raises(RuntimeError, match="boom"), head_gates(tiny_model, layout):
        assert len(layout.layers[0].output._forward_pre_hooks) == 1
        raise RuntimeError("boom")
    assert all(len(m.output._forward_pre_hooks) == 0 for m in layout.layers)


def test_unsupported_model_names_type_and_modules():
    config = GPTNeoXConfig(
        num_hidden_layers=1,
        num_attention_heads=2,
        hidden_size=8,
        intermediate_size=16,
        vocab_size=16,
    )
    model = GPTNeoXForSequenceClassification(config)  # q, k, v interleaved per head
    with pytest.raises(
        UnsupportedModelError,
        match="model type 'gpt_neox'.*query_proj.*attention.self.query.*attn.Wqkv.*c_attn",
    ):
        resolve_layout(model)


# Batches of 4 x 12 tokens: 96 tokens stack k = 2 ablations (chunks 2, 2), 144 stack k = 3
# (chunks 3, 1), 10_000 all H = 4 of a layer.
@pytest.mark.parametrize("sweep_tokens", [None, 96, 144, 10_000])
def test_cached_sweep_equals_naive(tiny_model, sweep_tokens):
    batches = random_batches(3, batch=4)
    assert all(b["input_ids"].shape == (4, 12) for b in batches)
    naive = naive_sweep(tiny_model, batches)
    fast = ablation_sweep(tiny_model, batches, sweep_tokens=sweep_tokens)
    rel = float(abs(fast.loss_ablate - naive.loss_ablate).max() / abs(naive.loss_ablate).max())
    _record(f"cached vs naive sweep (relative, sweep_tokens={sweep_tokens})", rel)
    assert rel <= 1e-5
    assert fast.loss_base == pytest.approx(naive.loss_base, rel=1e-6)
    assert (fast.acc_ablate == naive.acc_ablate).all()
    assert fast.importance.std() > 0
    rows = fast.rows()
    expected = [(layer, h) for layer in range(3) for h in range(4)]
    assert [(r["layer"], r["head"]) for r in rows] == expected
    assert rows[5]["I"] == pytest.approx(rows[5]["loss_ablate"] - rows[5]["loss_base"])


def test_sweep_equals_direct_model_ablation():
    """Independent of the gate: zero the output-projection columns and take the mean loss."""
    model = tiny_bert()
    batches = random_batches(2, batch=4)
    fast = ablation_sweep(model, batches, sweep_tokens=10_000)
    d = resolve_layout(model).head_dim
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        resolve_layout(zeroed).layers[1].output.weight[:, 2 * d : 3 * d] = 0
    losses = [
        torch.nn.functional.cross_entropy(_logits(zeroed, b), b["labels"], reduction="sum")
        for b in batches
    ]
    direct = float(sum(losses)) / 8
    assert fast.loss_ablate[1, 2] == pytest.approx(direct, rel=1e-5)


def test_sweep_with_deberta_conv_layer():
    """DeBERTa-v2 xlarge-style conv after layer 0 is applied outside the layers: still exact."""
    model = tiny_deberta(conv_kernel_size=3)
    batches = random_batches(2, batch=3)
    naive = naive_sweep(model, batches)
    fast = ablation_sweep(model, batches, sweep_tokens=10_000)
    assert abs(fast.loss_ablate - naive.loss_ablate).max() <= 1e-5 * abs(naive.loss_ablate).max()


def test_one_backward_gradients_equal_per_example_autograd(tiny_model):
    batches = random_batches(2, batch=4)
    fast = gate_gradients(tiny_model, batches)
    ref = per_example_loop(tiny_model, batches).double()  # [N, L, H], unpadded single examples
    diff = max(
        float(abs(fast.G - ref.abs().mean(0).numpy()).max()),
        float(abs(fast.F - (ref**2).mean(0).numpy()).max()),
        float(abs(fast.G_signed - ref.mean(0).numpy()).max()),
    )
    _record("one-backward vs per-example autograd", diff)
    assert diff <= 1e-6
    assert fast.n_examples == 8
    assert ((fast.Ppred >= 0) & (fast.Ppred <= 1 + 1e-9)).all()


def test_gate_gradient_matches_finite_difference():
    model = tiny_deberta().double()
    batch = random_batches(1, batch=3)[0]
    inputs, labels = inputs_and_labels_on(batch, torch.device("cpu"))
    layout = resolve_layout(model)
    with head_gates(model, layout) as ctrl:
        grad, _ = per_example_gate_grads(model, inputs, labels, layout, ctrl)
        eps = 1e-6
        worst = 0.0
        for i, lay, h in [(0, 0, 1), (1, 2, 3), (2, 1, 0)]:
            losses = []
            for s in (+1, -1):
                gate = torch.ones(3, 3, 4, dtype=torch.float64)
                gate[i, lay, h] += s * eps
                ctrl.set(gate)
                with torch.no_grad():
                    ce = torch.nn.functional.cross_entropy(
                        model(**inputs).logits, labels, reduction="none"
                    )
                losses.append(float(ce[i]))
            fd = (losses[0] - losses[1]) / (2 * eps)
            worst = max(worst, abs(fd - float(grad[i, lay, h])))
    _record("gate gradient vs finite difference (fp64)", worst)
    assert worst <= 1e-6


def test_gate_gradient_lets_parameters_untouched(tiny_model):
    batches = random_batches(1)
    before = [p.requires_grad for p in tiny_model.parameters()]
    gate_gradients(tiny_model, batches)
    assert [p.requires_grad for p in tiny_model.parameters()] == before
    assert all(p.grad is None for p in tiny_model.parameters())


# The query projection of layer i, and how often one forward pass calls it: DeBERTa with shared
# keys also projects the relative-position embeddings with it.
QUERY_PROJECTION = {
    "bert": ("bert.encoder.layer.{}.attention.self.query", 1),
    "deberta-v2": ("deberta.encoder.layer.{}.attention.self.query_proj", 2),
}


def test_cached_sweep_runs_only_layers_at_and_above_the_ablation(tiny_model):
    """Per batch, layer i's output projection really runs 1 + H*(i+1) times (base pass and the
    ablations in layers <= i), its query projection 1 + H*i times: the ablated layer's attention
    core is not recomputed, its cached head contexts are gated instead."""
    layout = resolve_layout(tiny_model)
    calls = [0] * layout.n_layers
    queries = [0] * layout.n_layers

    def count(store, i):
        def hook(*_):
            store[i] += 1

        return hook

    hooks = [
        mods.output.register_forward_hook(count(calls, i)) for i, mods in enumerate(layout.layers)
    ]
    for i in range(layout.n_layers):
        query = tiny_model.get_submodule(QUERY_PROJECTION[layout.family][0].format(i))
        hooks.append(query.register_forward_hook(count(queries, i)))
    try:
        ablation_sweep(tiny_model, random_batches(2, batch=3))
    finally:
        for h in hooks:
            h.remove()
    assert calls == [2 * (1 + 4 * (i + 1)) for i in range(3)]
    per_pass = QUERY_PROJECTION[layout.family][1]
    assert queries == [2 * per_pass * (1 + 4 * i) for i in range(3)]


# ------------------------------------------------------------------- per-example uncertainty


def test_from_logits_se_and_ci_equal_direct_computation_on_known_losses():
    """Logits built so that every per-example loss is known in closed form: logits (log w, 0)
    and label 0 give L = log(1 + 1/w), and the label is predicted iff w > 1 (no ties here)."""
    w_base = [0.9, 2.0, 3.0, 4.0, 5.0]
    w_abl = [[0.5, 1.1, 3.0, 0.7, 0.25], [2.0, 2.0, 2.0, 2.0, 2.0]]  # two "heads" (L=1, H=2)
    base = torch.tensor([[math.log(w), 0.0] for w in w_base])
    abl = torch.tensor([[[[math.log(w), 0.0] for w in row] for row in w_abl]])
    res = SweepResult.from_logits(base, abl, torch.zeros(5, dtype=torch.long))
    for h, row in enumerate(w_abl):
        d = [
            math.log(1 + 1 / wa) - math.log(1 + 1 / wb) for wa, wb in zip(row, w_base, strict=True)
        ]
        se = statistics.stdev(d) / math.sqrt(5)
        assert res.importance[0, h] == pytest.approx(statistics.fmean(d), abs=1e-7)
        assert res.importance_se[0, h] == pytest.approx(se, abs=1e-7)
        lo, hi = res.importance_ci
        assert hi[0, h] - res.importance[0, h] == pytest.approx(sps.t.ppf(0.975, 4) * se, abs=1e-7)
        assert lo[0, h] == pytest.approx(2 * res.importance[0, h] - hi[0, h])
    hits_base = [w > 1 for w in w_base]
    dacc = [float(wa > 1) - float(b) for wa, b in zip(w_abl[0], hits_base, strict=True)]
    assert res.acc_delta[0, 0] == pytest.approx(statistics.fmean(dacc))
    assert res.acc_delta_se[0, 0] == pytest.approx(statistics.stdev(dacc) / math.sqrt(5))
    row = res.rows()[0]
    assert row["acc_delta"] == pytest.approx(row["acc_ablate"] - row["acc_base"])
    assert {"I_se", "I_ci_low", "I_ci_high", "acc_delta_se", "I_kl", "I_kl_se"} <= set(row)


def test_sweep_I_se_and_I_kl_equal_zeroed_columns_model():
    """Per-example losses and softmaxes of the unhooked model and of a copy with head (1, 2)'s
    output-projection columns zeroed, in plain torch: I, I_se and I_kl of the cached sweep."""
    model = tiny_bert()
    batches = random_batches(2, batch=4)
    fast = ablation_sweep(model, batches, sweep_tokens=10_000)
    d = resolve_layout(model).head_dim
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        resolve_layout(zeroed).layers[1].output.weight[:, 2 * d : 3 * d] = 0
    labels = torch.cat([b["labels"] for b in batches])
    p_logits = torch.cat([_logits(model, b) for b in batches]).double()
    q_logits = torch.cat([_logits(zeroed, b) for b in batches]).double()
    ce = torch.nn.functional.cross_entropy
    diff = ce(q_logits, labels, reduction="none") - ce(p_logits, labels, reduction="none")
    p, q = p_logits.softmax(-1), q_logits.softmax(-1)
    kl = (p * (p / q).log()).sum(-1)
    assert fast.importance_se[1, 2] == pytest.approx(float(diff.std() / 8**0.5), abs=1e-6)
    assert fast.importance_kl[1, 2] == pytest.approx(float(kl.mean()), abs=1e-6)
    assert fast.importance_kl_se[1, 2] == pytest.approx(float(kl.std() / 8**0.5), abs=1e-6)
    assert (fast.kl_i >= 0).all() and fast.importance_kl.min() > 0


def test_I_kl_is_exactly_zero_for_all_ones_gates(tiny_model):
    batch = random_batches(1)[0]
    layout = resolve_layout(tiny_model)
    base = _logits(tiny_model, batch)
    with head_gates(tiny_model, layout) as ctrl:
        ctrl.set(torch.ones(batch["labels"].shape[0], 3, 4))
        gated = _logits(tiny_model, batch)
    res = SweepResult.from_logits(base, gated.expand(3, 4, *gated.shape), batch["labels"])
    assert (res.importance_kl == 0).all() and (res.importance == 0).all()


def test_ppred_uses_the_eps_it_is_given():
    """Ppred = G^2 / (F + eps) with the caller's eps (a large one, so it shows)."""
    batches = random_batches(2, batch=3)
    ref = per_example_loop(tiny_bert(), batches).double()
    G, F = ref.abs().mean(0), (ref**2).mean(0)
    res = gate_gradients(tiny_bert(), batches, eps=0.5)
    assert res.eps == 0.5
    assert abs(res.Ppred - (G**2 / (F + 0.5)).numpy()).max() <= 1e-7


def test_gradient_standard_errors_equal_per_example_autograd():
    model = tiny_bert()
    batches = random_batches(2, batch=4)
    fast = gate_gradients(model, batches)
    ref = per_example_loop(model, batches).double()
    n = ref.shape[0]
    assert abs(fast.G_se - (ref.abs().std(0) / n**0.5).numpy()).max() <= 1e-6
    assert abs(fast.F_se - ((ref**2).std(0) / n**0.5).numpy()).max() <= 1e-6
    assert {"G_se", "F_se"} <= set(fast.rows()[0])


# ------------------------------------------------------------------ non-finite values, gates


@pytest.mark.parametrize("sweep", ["naive", "cached", "cached_stacked"])
def test_sweep_names_the_first_head_whose_ablation_is_not_finite(sweep):
    """Only examples with head (1, 2) switched off turn NaN, in both batches: 2 cases."""
    model = tiny_bert()
    batches = random_batches(2, batch=3)
    nan_when_ablated(model, 1, 2)
    run = {
        "naive": lambda: naive_sweep(model, batches),
        "cached": lambda: ablation_sweep(model, batches),
        "cached_stacked": lambda: ablation_sweep(model, batches, sweep_tokens=10_000),
    }[sweep]
    with pytest.raises(
        NonFiniteError,
        match=r"^non-finite loss with the head ablated at batch 0, layer 1, head 2 \(2 cases\); ",
    ):
        run()


def test_gradients_name_the_first_head_whose_gate_gradient_is_not_finite():
    model = tiny_bert()
    nan_gate_gradient(model, 0, 3)
    with pytest.raises(
        NonFiniteError, match=r"^non-finite gate gradient at batch 0, layer 0, head 3 \(3 cases\); "
    ):
        gate_gradients(model, random_batches(3, batch=2))


def test_non_finite_base_loss_is_named_before_any_head():
    """A NaN weight makes every loss NaN: the error is the base pass's, one case per batch."""
    model = tiny_bert()
    with torch.no_grad():
        model.bert.encoder.layer[1].attention.self.value.weight[0, 0] = float("nan")
    batches = random_batches(2, batch=3)
    want = r"^non-finite loss with all gates 1 at batch 0 \(2 cases\); "
    for run in (ablation_sweep, naive_sweep, gate_gradients):
        with pytest.raises(NonFiniteError, match=want):
            run(model, batches)


def test_check_finite_names_the_first_case_in_batch_layer_head_order():
    bad = torch.zeros(3, 2, 4, dtype=torch.bool)
    check_finite(bad, "x")  # nothing bad: no error
    bad[2, 0, 0] = bad[1, 1, 3] = True
    with pytest.raises(
        NonFiniteError, match=r"^non-finite x at batch 1, layer 1, head 3 \(2 cases\)"
    ):
        check_finite(bad, "x")
    with pytest.raises(NonFiniteError, match=r"^non-finite y at batch 2 \(1 cases\); "):
        check_finite(torch.tensor([False, False, True]), "y")


def test_gate_applies_only_on_active_layers_and_checks_its_shape(tiny_model):
    batch = random_batches(1, batch=3)[0]
    ref = _logits(tiny_model, batch)
    layout = resolve_layout(tiny_model)
    gate = torch.ones(3, 3, 4)
    gate[:, 0, 1] = 0
    with head_gates(tiny_model, layout) as ctrl:
        ctrl.set(gate, frozenset({1, 2}))  # layer 0 is not active: its zero does nothing
        assert torch.equal(_logits(tiny_model, batch), ref)
        ctrl.set(gate, frozenset({0}))
        assert not torch.allclose(_logits(tiny_model, batch), ref)
        for shape in [(3, 3, 5), (3, 4, 4), (3, 12)]:
            with pytest.raises(ValueError, match=r"gate must have shape \[B, 3, 4\]"):
                ctrl.set(torch.ones(shape))


def test_standard_error_and_finite_or_none():
    v = np.array([[1.0, 4.0], [3.0, 4.0]])  # n = 2: |a - b| / 2
    assert standard_error(v).tolist() == [1.0, 0.0]
    one = standard_error(np.ones((1, 3, 4)))  # one example: undefined, per head
    assert one.shape == (3, 4) and np.isnan(one).all()
    assert [finite_or_none(x) for x in (math.nan, math.inf, -math.inf)] == [None, None, None]
    assert finite_or_none(np.float32(1.5)) == 1.5 and type(finite_or_none(np.float32(1.5))) is float


def test_autocast_context_refuses_an_unresolved_precision():
    """Only resolved precisions reach the measuring code; anything else (a typo, "auto") is a
    programming error, not a silent fp32 run."""
    for ok in ("fp32", "bf16", "fp16"):
        with autocast_context("cpu", ok):
            pass
    for bad in ("auto", "FP32", "fp23", None):
        with pytest.raises(ValueError, match="resolved precision"):
            autocast_context("cpu", bad)


def test_from_logits_refuses_each_mismatched_shape():
    base, labels = torch.zeros(5, 3), torch.zeros(5, dtype=torch.long)
    SweepResult.from_logits(base, torch.zeros(2, 4, 5, 3), labels)  # consistent: fine
    for abl, lab in [
        (torch.zeros(2, 4, 5, 3), torch.zeros(4, dtype=torch.long)),  # labels only
        (torch.zeros(2, 4, 6, 3), labels),  # ablated examples only
        (torch.zeros(2, 4, 5, 2), labels),  # ablated classes only
        (torch.zeros(8, 5, 3), labels),  # no [L, H] grid
    ]:
        with pytest.raises(ValueError, match=r"^shapes: base_logits \[n, C\] = \(5, 3\)"):
            SweepResult.from_logits(base, abl, lab)
