"""Exact head gates: a multiplier xi[b, l, h] on head h's context in layer l, example b.

The gate multiplies columns h*d:(h+1)*d of the input of layer l's attention output projection,
i.e. head h's slice of the concatenated per-head contexts. A gate of 1 multiplies by exactly 1.0,
so the all-ones gate reproduces the unmodified model's logits bit for bit; a gate of 0 switches the
head off. The gate is given per example ([B, L, H]) so that ablation sweeps (different heads off for
different copies of a batch) and per-example gate gradients use this one mechanism.
``head_mask`` is not used: transformers 5 removed it and silently ignores it.

The same holds for every family of the adapter table: the output projection's input is the query
heads' contexts whether the projections are separate, fused (ModernBERT, GPT-2) or ``Conv1D``
(GPT-2), and with grouped-query attention a gate switches off one query head, not the key/value head
its group shares. Everything before the output projection (rotary positions, local attention, causal
masks) is computed as without gates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from headplast.model.adapters import ModelLayout, resolve_layout


class GateController:
    """Holds the gate the installed hooks apply. ``gate`` is [B, L, H] or None (no gating).

    ``active`` restricts which layers' hooks apply the gate (None = all); a sweep that ablates one
    layer gates only that layer and leaves the others untouched.
    """

    def __init__(self, layout: ModelLayout) -> None:
        self.layout = layout
        self.gate: torch.Tensor | None = None
        self.active: frozenset[int] | None = None

    def set(self, gate: torch.Tensor | None, active: frozenset[int] | None = None) -> None:
        """Use ``gate`` ([B, L, H]) for the next forward passes, on ``active`` layers only."""
        if gate is not None:
            L, H = self.layout.n_layers, self.layout.n_heads
            if gate.dim() != 3 or tuple(gate.shape[1:]) != (L, H):
                raise ValueError(f"gate must have shape [B, {L}, {H}], got {tuple(gate.shape)}")
        self.gate = gate
        self.active = active

    def _hook(self, layer: int):
        H, d = self.layout.n_heads, self.layout.head_dim

        def pre_hook(module: nn.Module, args: tuple) -> tuple | None:
            gate = self.gate
            if gate is None or (self.active is not None and layer not in self.active):
                return None
            x = args[0]  # [B, T, H*d]
            if x.shape[0] != gate.shape[0]:
                raise ValueError(
                    f"gate batch {gate.shape[0]} != activation batch {x.shape[0]} in layer {layer}"
                )
            g = gate[:, layer, :].to(x.dtype)  # [B, H]
            shape = x.shape
            x = (x.reshape(shape[0], -1, H, d) * g[:, None, :, None]).reshape(shape)
            return (x, *args[1:])

        return pre_hook


@contextlib.contextmanager
def head_gates(model: nn.Module, layout: ModelLayout | None = None) -> Iterator[GateController]:
    """Install gate pre-hooks on every layer's attention output projection; always remove them.

    Yields a :class:`GateController`; with no gate set the model is unchanged.
    """
    layout = layout or resolve_layout(model)
    controller = GateController(layout)
    handles = []
    try:
        for i, mods in enumerate(layout.layers):
            handles.append(mods.output.register_forward_pre_hook(controller._hook(i)))
        yield controller
    finally:
        for h in handles:
            h.remove()
        controller.set(None)
