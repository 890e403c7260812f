"""A_js and C_rel: zero where nothing changed, located where one head changed, scipy's JS."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from headplast.measure.function_change import (
    FunctionChange,
    _attentions_and_contexts,
    attention_js_sum,
    captured_contexts,
    function_change,
    js_divergence,
)
from headplast.model.adapters import resolve_layout

from .conftest import random_batches, tiny_bert, tiny_deberta

LAYER, HEAD, D = 1, 2, 8  # the changed head of the 3-layer, 4-head, d = 8 tiny models


@pytest.fixture(params=["deberta", "bert"])
def model(request):
    build = tiny_deberta if request.param == "deberta" else tiny_bert
    return build(initializer_range=0.2)


def _changed(model, part: str, change) -> torch.nn.Module:
    """A copy whose head (LAYER, HEAD) rows of the ``part`` projection (weight and bias) are
    ``change``d, set through the state dict."""
    name = resolve_layout(model).names[LAYER][part]
    state = copy.deepcopy(model.state_dict())
    rows = slice(HEAD * D, (HEAD + 1) * D)
    for suffix in (".weight", ".bias"):
        state[name + suffix][rows] = change(state[name + suffix][rows])
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out


def _others_of(grid: np.ndarray) -> np.ndarray:
    """Values of every head below LAYER and of the other heads of LAYER."""
    mask = np.zeros_like(grid, dtype=bool)
    mask[:LAYER] = True
    mask[LAYER] = True
    mask[LAYER, HEAD] = False
    return grid[mask]


def test_identical_checkpoints_give_zero(model):
    fc = function_change(model, copy.deepcopy(model), random_batches(2, batch=4))
    assert fc.A_js.shape == fc.C_rel.shape == (3, 4)
    assert (fc.A_js == 0).all() and (fc.C_rel == 0).all()
    assert fc.n_examples == 8
    assert [(r["layer"], r["head"]) for r in fc.rows()][:5] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 0),
    ]


def test_changed_query_rows_change_only_that_head_at_its_layer(model):
    g = torch.Generator().manual_seed(3)
    model1 = _changed(model, "query", lambda w: w + 0.5 * torch.randn(w.shape, generator=g))
    fc = function_change(model, model1, random_batches(2, batch=4))
    assert (_others_of(fc.A_js) == 0).all()
    assert (_others_of(fc.C_rel) == 0).all()
    assert fc.A_js[LAYER, HEAD] > 1e-4
    assert fc.C_rel[LAYER, HEAD] > 1e-3
    assert (fc.A_js[LAYER + 1 :] > 0).all()  # later layers see a changed input
    assert ((fc.A_js >= 0) & (fc.A_js <= 1)).all()


def test_scaled_value_rows_scale_the_context_but_not_the_attention(model):
    """Values scaled by 1.5 (weight and bias): the head's context is 1.5 times c0, so C_rel = 0.5,
    while its attention, which values do not enter, is unchanged."""
    fc = function_change(model, _changed(model, "value", lambda w: 1.5 * w), random_batches(2))
    assert fc.C_rel[LAYER, HEAD] == pytest.approx(0.5, rel=1e-5)
    assert fc.A_js[LAYER, HEAD] == 0
    assert (_others_of(fc.C_rel) == 0).all()


def test_padding_is_excluded(model):
    """The same examples padded to a longer width give the same A_js and C_rel."""
    g = torch.Generator().manual_seed(5)
    model1 = copy.deepcopy(model)
    with torch.no_grad():
        for p in model1.base_model.encoder.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    batch = random_batches(1, batch=4, max_len=10)[0]
    wide = {k: v for k, v in batch.items()}
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        wide[k] = torch.nn.functional.pad(batch[k], (0, 6))
    narrow, padded = function_change(model, model1, [batch]), function_change(model, model1, [wide])
    assert narrow.n_queries == padded.n_queries == int(batch["attention_mask"].sum())
    assert padded.A_js == pytest.approx(narrow.A_js, rel=1e-4, abs=1e-9)
    assert padded.C_rel == pytest.approx(narrow.C_rel, rel=1e-4)
    assert (narrow.A_js > 0).all()


def test_js_divergence_equals_scipy_squared_base_2():
    rng = np.random.default_rng(0)
    cases = [
        (np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.1, 0.9])),
        (np.array([1.0, 0.0]), np.array([0.0, 1.0])),  # disjoint: exactly 1 bit
        (np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])),
    ]
    cases += [tuple(rng.dirichlet(np.ones(7), size=2)) for _ in range(5)]
    for p, q in cases:
        ours = float(js_divergence(torch.tensor(p), torch.tensor(q)))
        assert ours == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)
    assert float(js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))) == 1.0


def test_attention_js_sum_over_non_padding_queries_and_keys():
    """Hand-built attention [B=2, H=2, T=3, T=3]; example 1 has a padding token (position 2):
    its row is left out and its column carries only ~0 probability."""
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), size=(2, 2, 3))
    q = rng.dirichlet(np.ones(3), size=(2, 2, 3))
    for a in (p, q):
        a[1, :, :, 2] = 1e-12
        a[1] /= a[1].sum(-1, keepdims=True)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    expected = np.zeros(2)
    for h in range(2):
        for b, n in ((0, 3), (1, 2)):
            for t in range(n):
                pk, qk = p[b, h, t, :n], q[b, h, t, :n]
                expected[h] += jensenshannon(pk, qk, base=2) ** 2
    ours = attention_js_sum(torch.tensor(p), torch.tensor(q), mask).numpy()
    assert ours == pytest.approx(expected, abs=1e-9)


def test_bf16_autocast_keeps_zeros_and_locality():
    """Under bf16 autocast (CPU autocast here; CUDA autocast on a GPU) the attention and contexts
    arrive in bf16: identical checkpoints still give exactly 0 and a change stays local."""
    model = tiny_deberta(initializer_range=0.2)
    g = torch.Generator().manual_seed(3)
    model1 = _changed(model, "query", lambda w: w + 0.5 * torch.randn(w.shape, generator=g))
    batches = random_batches(2, batch=4)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        same = function_change(model, copy.deepcopy(model), batches)
        fc = function_change(model, model1, batches)
    assert (same.A_js == 0).all() and (same.C_rel == 0).all()
    assert (_others_of(fc.A_js) == 0).all() and (_others_of(fc.C_rel) == 0).all()
    assert fc.A_js[LAYER, HEAD] > 1e-4 and fc.C_rel[LAYER, HEAD] > 1e-3


def test_rows_name_every_head_with_its_two_measures():
    """function_change.jsonl's rows: one per head in (layer, head) order with exactly the keys
    ``layer, head, A_js, C_rel`` and plain floats."""
    fc = FunctionChange(
        A_js=np.array([[0.1, 0.2], [0.3, 0.4]]),
        C_rel=np.array([[1.0, 2.0], [3.0, 4.5]]),
        n_examples=2,
        n_queries=7,
    )
    assert fc.rows() == [
        {"layer": 0, "head": 0, "A_js": 0.1, "C_rel": 1.0},
        {"layer": 0, "head": 1, "A_js": 0.2, "C_rel": 2.0},
        {"layer": 1, "head": 0, "A_js": 0.3, "C_rel": 3.0},
        {"layer": 1, "head": 1, "A_js": 0.4, "C_rel": 4.5},
    ]
    assert all(type(r["A_js"]) is float and type(r["C_rel"]) is float for r in fc.rows())


def test_a_model_that_returns_no_attention_is_refused():
    """BERT under SDPA answers output_attentions=True with an empty tuple: without the eager
    switch, A_js would have nothing to average, so the measurement stops and names the model."""
    model = tiny_bert()
    assert model.config._attn_implementation == "sdpa"
    layout = resolve_layout(model)
    inputs = {k: v for k, v in random_batches(1, batch=2)[0].items() if k != "labels"}
    with (
        captured_contexts(layout) as store,
        pytest.raises(
            NotImplementedError,
            match="model type 'bert' did not return its attention probabilities",
        ),
    ):
        _attentions_and_contexts(model, layout, store, inputs)
