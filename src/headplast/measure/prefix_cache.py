"""The layer outputs a prefix-cached ablation sweep reuses.

One unmodified pass records every layer's output and every attention core's output (the head
contexts the gate multiplies, [B, T, H*d]); a pass that ablates a head of layer l then runs with
the layers below l stubbed to return their cached outputs (k stacked copies for k ablations at
once) and, where the core's output feeds the output projection unchanged, layer l's own attention
core stubbed too: only the output projection and what follows run again. Hooks and stubs are
always removed in ``finally``. Used by :mod:`headplast.measure.importance` and
:mod:`headplast.measure.shared_sweep`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from headplast.model.adapters import ModelLayout


def _returning(out):
    return lambda *args, **kwargs: out


@contextlib.contextmanager
def stubbed(modules: Sequence[tuple[nn.Module, object]]) -> Iterator[None]:
    """Replace each module's forward by a stub returning the given (cached) output."""
    stubbed = []
    try:
        for module, out in modules:
            module.forward = _returning(out)
            stubbed.append(module)
        yield
    finally:
        for module in stubbed:
            del module.forward


def repeat_output(out, k: int):
    """Stack k copies of a layer output (tensor, or tuple holding tensors and None) on dim 0."""
    if k == 1:
        return out
    if isinstance(out, torch.Tensor):
        return out.repeat(k, *([1] * (out.dim() - 1)))
    if isinstance(out, tuple):
        return tuple(repeat_output(o, k) for o in out)
    return out


def first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def repeat_first_output(out, k: int):
    """Stack k copies of the first tensor of a module output; the rest (attention weights when
    asked for, None otherwise) is passed through unchanged (it is not used downstream)."""
    if k == 1 or isinstance(out, torch.Tensor):
        return repeat_output(out, k)
    return (repeat_output(out[0], k), *out[1:])


def attention_core(model: nn.Module, layout: ModelLayout, layer: int) -> nn.Module:
    """The module that holds the query projection of ``layer`` (BERT's ``attention.self``,
    DeBERTa's ``DisentangledSelfAttention``): its output is the concatenated head contexts. In
    ModernBERT, the decoders and GPT-2 it applies the output projection itself, so its output is
    not what the projection gets, and :func:`forward_capturing` keeps nothing of it."""
    return model.get_submodule(layout.names[layer]["query"].rsplit(".", 1)[0])


def forward_capturing(model: nn.Module, layout: ModelLayout, inputs: dict) -> tuple:
    """(logits, per-layer outputs, per-layer attention-core outputs) of one unmodified pass.

    The attention core's output of layer l (the head contexts before the gate) is kept only when
    its first tensor *is* the tensor fed to the output projection (checked by identity, so a
    model that transforms it in between is run in full instead); else its entry is None.
    """
    L = layout.n_layers
    cached: list = [None] * L
    core: list = [None] * L
    fed: list = [None] * L

    def keep(store: list, i: int):
        def hook(module, args, out):
            store[i] = out

        return hook

    def keep_input(i: int):
        def pre_hook(module, args):
            fed[i] = args[0] if args else None

        return pre_hook

    hooks = []
    for i, mods in enumerate(layout.layers):
        hooks.append(mods.layer.register_forward_hook(keep(cached, i)))
        hooks.append(attention_core(model, layout, i).register_forward_hook(keep(core, i)))
        hooks.append(mods.output.register_forward_pre_hook(keep_input(i)))
    try:
        logits = model(**inputs).logits
    finally:
        for h in hooks:
            h.remove()
    core = [
        c if fed[i] is not None and first_tensor(c) is fed[i] else None for i, c in enumerate(core)
    ]
    return logits, cached, core


def ablation_gates(
    k: int, batch: int, layout: ModelLayout, layer: int, start: int, device: torch.device
) -> torch.Tensor:
    """Gates [k*B, L, H] of k stacked copies of a batch of B: all 1, except that copy j has head
    ``start + j`` of ``layer`` off."""
    L, H = layout.n_layers, layout.n_heads
    gate = torch.ones(k, batch, L, H, device=device)
    heads = start + torch.arange(k, device=device)
    gate[torch.arange(k, device=device), :, layer, heads] = 0
    return gate.view(k * batch, L, H)


def prefix_cached_passes(
    model: nn.Module,
    layout: ModelLayout,
    ctrl: Any,
    inputs: dict[str, torch.Tensor],
    sweep_tokens: int | None,
) -> Iterator[tuple[int | None, slice, torch.Tensor]]:
    """The passes of a prefix-cached sweep over one batch, under the head-gate controller
    ``ctrl`` (:func:`headplast.model.gating.head_gates`): first the unmodified pass, yielded as
    ``(None, slice(0, 0), logits)``; then for each layer, the heads in runs of
    k = sweep_tokens // (B*T) (at least 1, at most H; 1 without ``sweep_tokens``), one pass of k
    stacked copies of the batch, copy j with head start + j off, yielded as
    ``(layer, slice(start, start + k), logits [k*B, C])``. The layers below ``layer`` return
    their cached outputs, and so does the layer's own attention core where
    :func:`forward_capturing` kept it. A consumer that hooks a module sees every pass in this
    order."""
    H = layout.n_heads
    logits, cached, core = forward_capturing(model, layout, inputs)
    yield None, slice(0, 0), logits
    B, width = inputs["input_ids"].shape
    k_max = 1 if not sweep_tokens else max(1, min(H, sweep_tokens // (B * width)))
    stacked: dict[int, dict] = {}
    device = inputs["input_ids"].device
    for layer in range(layout.n_layers):
        # What the stubs return, per stacking k: below `layer` its input (the output of
        # layer - 1; lower stubs' outputs are overwritten, so they return the same tensor), and
        # the ablated layer's attention core its cached head contexts.
        stubs_for: dict[int, list] = {}
        for start in range(0, H, k_max):
            k = min(k_max, H - start)
            if k not in stacked:
                stacked[k] = {n: repeat_output(t, k) for n, t in inputs.items()}
            if k not in stubs_for:
                below = repeat_output(cached[layer - 1], k) if layer else None
                stubs = [(layout.layers[i].layer, below) for i in range(layer)]
                if core[layer] is not None:
                    stubs.append(
                        (attention_core(model, layout, layer), repeat_first_output(core[layer], k))
                    )
                stubs_for[k] = stubs
            ctrl.set(ablation_gates(k, B, layout, layer, start, device), frozenset({layer}))
            try:
                with stubbed(stubs_for[k]):
                    out = model(**stacked[k]).logits
            finally:
                ctrl.set(None)
            yield layer, slice(start, start + k), out
        del stubs_for
