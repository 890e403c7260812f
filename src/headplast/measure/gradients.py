"""Gate gradients and Fisher information at theta0, from per-example gradients.

g_i[l, h] = dL_i / dxi[l, h] at xi = 1, with L_i the cross-entropy of example i. Because the gate
is per example ([B, L, H]) and examples do not interact in eval mode, ONE backward pass of the
summed batch loss gives every example's gradient: d(sum_j L_j)/dxi_i = dL_i/dxi_i.

G = mean_i |g_i| (expected gradient magnitude), F = mean_i g_i^2 (empirical Fisher of the gate),
Ppred = G^2 / (F + eps) (in [0, 1]: 1 when |g_i| is the same for every example, small when a few
examples dominate), G_signed = mean_i g_i (the gradient of the mean loss).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from headplast.data.batching import inputs_and_labels_on, model_device
from headplast.io import finite_or_none
from headplast.measure.checks import check_finite
from headplast.measure.uncertainty import standard_error
from headplast.model.adapters import ModelLayout, resolve_layout
from headplast.model.gating import head_gates
from headplast.model.precision import autocast_context

DEFAULT_EPS = 1e-20


@dataclass(frozen=True)
class GradFisher:
    """Per-example gate gradients g_i = dL_i/dxi[l, h] at xi = 1 of ``n`` examples, [n, L, H]
    (float64), and the per-head means over examples with their standard errors, each [L, H]."""

    g_i: np.ndarray  # [n, L, H]
    eps: float = DEFAULT_EPS

    @property
    def n_examples(self) -> int:
        return int(self.g_i.shape[0])

    @property
    def G(self) -> np.ndarray:
        """G = mean_i |g_i|."""
        return np.abs(self.g_i).mean(0)

    @property
    def F(self) -> np.ndarray:
        """F = mean_i g_i^2."""
        return (self.g_i**2).mean(0)

    @property
    def G_signed(self) -> np.ndarray:
        """mean_i g_i (the gradient of the mean loss)."""
        return self.g_i.mean(0)

    @property
    def G_se(self) -> np.ndarray:
        """Standard error over examples of G: sd_i(|g_i|) / sqrt(n)."""
        return standard_error(np.abs(self.g_i))

    @property
    def F_se(self) -> np.ndarray:
        """Standard error over examples of F: sd_i(g_i^2) / sqrt(n)."""
        return standard_error(self.g_i**2)

    @property
    def Ppred(self) -> np.ndarray:
        return self.G**2 / (self.F + self.eps)

    def rows(self) -> list[dict]:
        """One dict per head in (layer, head) order with the field names of docs/methods.md."""
        L, H = self.g_i.shape[1:]
        G, F_, P, S = self.G, self.F, self.Ppred, self.G_signed
        G_se, F_se = self.G_se, self.F_se
        return [
            {
                "layer": layer,
                "head": head,
                "G": float(G[layer, head]),
                "F": float(F_[layer, head]),
                "Ppred": float(P[layer, head]),
                "G_signed": float(S[layer, head]),
                "G_se": finite_or_none(G_se[layer, head]),
                "F_se": finite_or_none(F_se[layer, head]),
            }
            for layer in range(L)
            for head in range(H)
        ]


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """No parameter gradients (only the gate's are needed), restored afterwards."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def per_example_gate_grads(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    layout: ModelLayout,
    ctrl,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL_i/dxi [B, L, H], per-example loss [B]) from one backward pass of the summed loss."""
    gate = torch.ones(
        labels.shape[0], layout.n_layers, layout.n_heads, device=labels.device, requires_grad=True
    )
    ctrl.set(gate)
    try:
        ce = F.cross_entropy(model(**inputs).logits.float(), labels, reduction="none")
        (grad,) = torch.autograd.grad(ce.sum(), gate)
    finally:
        ctrl.set(None)
    return grad, ce.detach()


def gate_gradients(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    precision: str = "fp32",
    eps: float = DEFAULT_EPS,
    progress: bool = False,
) -> GradFisher:
    """G, F, Ppred and the signed mean over all examples of ``batches``, one backward per batch."""
    layout = resolve_layout(model)
    L, H = layout.n_layers, layout.n_heads
    device = model_device(model)
    model.eval()
    grads: list[torch.Tensor] = []
    bad = torch.zeros(len(batches), L, H, dtype=torch.bool, device=device)
    loss_bad = torch.zeros(len(batches), dtype=torch.bool, device=device)
    with _frozen(model), head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for bi, batch in enumerate(tqdm(batches, desc="gate gradients", disable=not progress)):
            inputs, labels = inputs_and_labels_on(batch, device)
            grad, ce = per_example_gate_grads(model, inputs, labels, layout, ctrl)
            grads.append(grad.float())
            bad[bi] = ~torch.isfinite(grad).all(0)
            loss_bad[bi] = ~torch.isfinite(ce).all()
    check_finite(loss_bad, "loss with all gates 1")  # then every gradient is non-finite too
    check_finite(bad, "gate gradient")
    return GradFisher(g_i=torch.cat(grads).to("cpu", torch.float64).numpy(), eps=eps)


def per_example_loop(
    model: nn.Module, batches: Sequence[dict[str, torch.Tensor]], precision: str = "fp32"
) -> torch.Tensor:
    """Reference: dL_i/dxi [N, L, H] from one forward+backward per example (for tests and the
    benchmark; equal to the one-backward path up to float rounding)."""
    layout = resolve_layout(model)
    device = model_device(model)
    model.eval()
    out = []
    with _frozen(model), head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for batch in batches:
            inputs, labels = inputs_and_labels_on(batch, device)
            for i in range(labels.shape[0]):
                mask = inputs["attention_mask"][i].bool()
                one = {k: v[i : i + 1, mask] for k, v in inputs.items()}
                grad, _ = per_example_gate_grads(model, one, labels[i : i + 1], layout, ctrl)
                out.append(grad[0])
    return torch.stack(out)
