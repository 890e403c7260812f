"""Functional plasticity per head between two checkpoints (theta0, theta1) on the eval subset.

A_js[l, h]: the Jensen-Shannon divergence (base 2, in [0, 1]) between head h's attention
distribution over the keys at theta0 and at theta1, for one query position of one example,
averaged over every non-padding query position of every example (a pooled mean: long examples
weigh more). Padding keys carry no probability (their ~0 weights are set to exactly 0); padding
query positions are left out.

C_rel[l, h] = ||c1 - c0|| / ||c0||: c the head's context, the slice h*d:(h+1)*d of the input of
layer l's attention output projection (the slice the head gate multiplies), Frobenius norms over
all non-padding tokens of the subset. 0 means the head's output is unchanged.

Both are exactly 0 for identical checkpoints. Attention probabilities come from the model's own
``output_attentions`` (eager attention is switched on for the measurement where the family
defaults to SDPA, which does not return them); contexts from a forward pre-hook on the output
projection that the adapter table names.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from headplast.data.batching import inputs_and_labels_on, model_device
from headplast.measure.checks import NonFiniteError
from headplast.model.adapters import ModelLayout, resolve_layout
from headplast.model.precision import autocast_context


def js_divergence(p: torch.Tensor, q: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Jensen-Shannon divergence in bits between distributions ``p`` and ``q`` along ``dim``
    (0 log 0 = 0); in [0, 1] for normalised inputs. Computed in float64."""
    p, q = p.double(), q.double()
    m = (p + q) / 2
    kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(dim)
    kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(dim)
    return ((kl_pm + kl_qm) / (2 * math.log(2))).clamp_min(0)


def attention_js_sum(
    p: torch.Tensor, q: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Per head [H]: the sum over examples and non-padding query positions of the JS divergence
    of attention ``p`` and ``q`` [B, H, T, T] (query, key); ``attention_mask`` [B, T] is 1 on real
    tokens. Padding keys' probabilities are set to 0, padding queries contribute nothing."""
    keys = attention_mask[:, None, None, :].to(torch.float64)
    js = js_divergence(p.double() * keys, q.double() * keys)  # [B, H, T]
    return (js * attention_mask[:, None, :].to(torch.float64)).sum((0, 2))


@dataclass(frozen=True)
class FunctionChange:
    """A_js and C_rel, each [L, H], over ``n_queries`` non-padding tokens of ``n_examples``."""

    A_js: np.ndarray
    C_rel: np.ndarray
    n_examples: int
    n_queries: int

    def rows(self) -> list[dict]:
        """One dict per head in (layer, head) order: ``layer, head, A_js, C_rel``."""
        L, H = self.A_js.shape
        return [
            {
                "layer": la,
                "head": h,
                "A_js": float(self.A_js[la, h]),
                "C_rel": float(self.C_rel[la, h]),
            }
            for la in range(L)
            for h in range(H)
        ]


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run ``model`` with eager attention (which returns the probabilities); restore after."""
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    switch = before not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


@contextlib.contextmanager
def captured_contexts(layout: ModelLayout) -> Iterator[list]:
    """Yield a list whose entry l holds, after a forward pass, the input of layer l's attention
    output projection ([B, T, H*d], the concatenated head contexts)."""
    store: list = [None] * layout.n_layers

    def keep(i: int):
        def pre_hook(module, args):
            store[i] = args[0]

        return pre_hook

    handles = [m.output.register_forward_pre_hook(keep(i)) for i, m in enumerate(layout.layers)]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def _attentions_and_contexts(model, layout, store, inputs) -> tuple[list, list]:
    out = model(**inputs, output_attentions=True)
    att = getattr(out, "attentions", None)
    if att is None or len(att) != layout.n_layers or any(a is None for a in att):
        raise NotImplementedError(
            f"model type '{layout.model_type}' did not return its attention probabilities with "
            "output_attentions=True (eager attention); A_js cannot be measured for it"
        )
    return list(att), list(store)


@torch.no_grad()
def function_change(
    model0: nn.Module,
    model1: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    precision: str = "fp32",
    progress: bool = False,
) -> FunctionChange:
    """A_js and C_rel of every head between ``model0`` (theta0) and ``model1`` (theta1), two
    models of one architecture on one device, over the examples of ``batches`` (right-padded,
    with ``attention_mask``). Raises :class:`~headplast.measure.checks.NonFiniteError` if a number
    is not finite."""
    layout0, layout1 = resolve_layout(model0), resolve_layout(model1)
    shape = (layout0.n_layers, layout0.n_heads, layout0.head_dim)
    if shape != (layout1.n_layers, layout1.n_heads, layout1.head_dim):
        raise ValueError(
            f"theta0 has {shape} (layers, heads, head size), theta1 "
            f"{(layout1.n_layers, layout1.n_heads, layout1.head_dim)}: not one architecture"
        )
    L, H, d = shape
    device = model_device(model0)
    model0.eval()
    model1.eval()
    f64 = {"dtype": torch.float64, "device": device}
    js_sum, diff_sq, base_sq = (
        torch.zeros(L, H, **f64),
        torch.zeros(L, H, **f64),
        torch.zeros(L, H, **f64),
    )
    n_examples, n_queries = 0, torch.zeros((), **f64)
    with (
        eager_attention(model0),
        eager_attention(model1),
        captured_contexts(layout0) as store0,
        captured_contexts(layout1) as store1,
        autocast_context(device, precision),
    ):
        for batch in tqdm(batches, desc="function change (batches)", disable=not progress):
            inputs, _ = inputs_and_labels_on(batch, device)
            mask = inputs["attention_mask"]
            tokens = mask.to(torch.float64)[:, :, None, None]  # [B, T, 1, 1]
            att0, ctx0 = _attentions_and_contexts(model0, layout0, store0, inputs)
            att1, ctx1 = _attentions_and_contexts(model1, layout1, store1, inputs)
            for la in range(L):
                js_sum[la] += attention_js_sum(att0[la], att1[la], mask)
                B, T = mask.shape
                c0 = ctx0[la].double().reshape(B, T, H, d) * tokens
                c1 = ctx1[la].double().reshape(B, T, H, d) * tokens
                diff_sq[la] += (c1 - c0).pow(2).sum((0, 1, 3))
                base_sq[la] += c0.pow(2).sum((0, 1, 3))
            n_examples += mask.shape[0]
            n_queries += mask.sum()
            del att0, att1, ctx0, ctx1
    A_js = (js_sum / n_queries).cpu().numpy()
    C_rel = (diff_sq.sqrt() / base_sq.sqrt()).cpu().numpy()
    if not (np.isfinite(A_js).all() and np.isfinite(C_rel).all()):
        raise NonFiniteError(
            "non-finite A_js or C_rel (a head with an all-zero context at theta0, or a diverged "
            "checkpoint); nothing was written. Check the checkpoints or run with precision fp32."
        )
    return FunctionChange(A_js, C_rel, n_examples, int(n_queries))
