"""Head importance by gate ablation: I[l, h] = loss_ablate[l, h] - loss_base.

loss_base is the mean cross-entropy over the eval examples with every gate 1; loss_ablate[l, h]
the mean with xi[l, h] = 0 (all other gates 1). Accuracies alongside. Eval mode, no dropout.

Two implementations that must agree: :func:`naive_sweep` (one full forward per ablated head) and
:func:`ablation_sweep` (prefix-cached: ablating a head of layer l changes nothing below layer l, so
per batch the output of every layer is computed once, and an ablation in layer l re-runs only
layers l..L-1; several ablations share one pass by stacking copies of the batch with different
per-example gates). Layers below l are replaced by stubs that return their cached outputs, so the
model's own code still builds masks, relative positions, pooling and the classifier.
The FLOP floor of re-running whole layers, relative to the naive sweep, is (L + 1) / (2 L).
The gate acts after the attention of layer l (on the input of its output projection), so the
ablated layer's queries, keys, values and attention (DeBERTa's relative c2p/p2c terms included)
are also unchanged: the attention core (the module holding the query projection) is stubbed with
its cached head contexts too, wherever its output is the very tensor the output projection gets.
That takes the sweep below the layer floor (only the output projection and feed-forward part of
layer l run).
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

from .adapters import ModelLayout, resolve_layout
from .gating import head_gates
from .precision import autocast_context


class NonFiniteError(FloatingPointError):
    """A loss or gradient was NaN or infinite."""


@dataclass(frozen=True)
class SweepResult:
    """Mean losses/accuracies over ``n_examples``: base scalars and [L, H] ablation arrays."""

    loss_base: float
    acc_base: float
    loss_ablate: np.ndarray  # [L, H]
    acc_ablate: np.ndarray  # [L, H]
    n_examples: int

    @classmethod
    def from_logits(
        cls, base_logits: torch.Tensor, ablate_logits: torch.Tensor, labels: torch.Tensor
    ) -> SweepResult:
        """From per-example logits: ``base_logits`` [n, C] (all gates 1), ``ablate_logits``
        [L, H, n, C] (xi[l, h] = 0) and ``labels`` [n]. Means as the sweeps compute them
        (float32 per-example cross-entropy, float64 sums)."""
        L, H, n, C = ablate_logits.shape
        ce, ok = _per_example(base_logits, labels)
        check_finite(~torch.isfinite(ce).all()[None], "loss with all gates 1")
        ce_a, ok_a = _per_example(ablate_logits.reshape(-1, C), labels.repeat(L * H))
        check_finite(
            ~torch.isfinite(ce_a.view(L, H, n)).all(-1)[None], "loss with the head ablated"
        )
        return cls(
            loss_base=float(ce.double().sum()) / n,
            acc_base=float(ok.double().sum()) / n,
            loss_ablate=(ce_a.view(L, H, n).double().sum(-1) / n).cpu().numpy(),
            acc_ablate=(ok_a.view(L, H, n).double().sum(-1) / n).cpu().numpy(),
            n_examples=n,
        )

    @property
    def importance(self) -> np.ndarray:
        """I = loss_ablate - loss_base, [L, H]."""
        return self.loss_ablate - self.loss_base

    def rows(self) -> list[dict]:
        """One dict per head in (layer, head) order with the SPEC field names."""
        L, H = self.loss_ablate.shape
        return [
            {
                "layer": layer,
                "head": head,
                "I": float(self.loss_ablate[layer, head] - self.loss_base),
                "loss_base": self.loss_base,
                "loss_ablate": float(self.loss_ablate[layer, head]),
                "acc_base": self.acc_base,
                "acc_ablate": float(self.acc_ablate[layer, head]),
            }
            for layer in range(L)
            for head in range(H)
        ]


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def split_batch(batch: dict[str, torch.Tensor], device: torch.device):
    """(model inputs on device, labels on device)."""
    inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "labels"}
    return inputs, batch["labels"].to(device, non_blocking=True)


def _per_example(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy [N] (float32) and correctness [N] of ``logits`` [N, C]."""
    logits = logits.float()
    return F.cross_entropy(logits, labels, reduction="none"), logits.argmax(-1) == labels


def check_finite(bad: torch.Tensor, what: str) -> None:
    """Raise naming the first (batch, layer, head) whose ``what`` was not finite; ``bad`` is
    [n_batches, L, H] (or [n_batches] for the base pass, reported as head -)."""
    if bool(bad.any()):
        idx = [int(i) for i in bad.nonzero()[0].tolist()]
        where = f"batch {idx[0]}" + (f", layer {idx[1]}, head {idx[2]}" if len(idx) == 3 else "")
        raise NonFiniteError(
            f"non-finite {what} at {where} ({int(bad.sum())} cases); nothing was written. "
            "Check the checkpoint (diverged training?) or run with precision fp32."
        )


def _returning(out):
    return lambda *args, **kwargs: out


@contextlib.contextmanager
def _stubbed(modules: Sequence[tuple[nn.Module, object]]) -> Iterator[None]:
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


def _repeat(out, k: int):
    """Stack k copies of a layer output (tensor, or tuple holding tensors and None) on dim 0."""
    if k == 1:
        return out
    if isinstance(out, torch.Tensor):
        return out.repeat(k, *([1] * (out.dim() - 1)))
    if isinstance(out, tuple):
        return tuple(_repeat(o, k) for o in out)
    return out


def _first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _repeat_first(out, k: int):
    """Stack k copies of the first tensor of a module output; the rest (attention weights when
    asked for, None otherwise) is passed through unchanged (it is not used downstream)."""
    if k == 1 or isinstance(out, torch.Tensor):
        return _repeat(out, k)
    return (_repeat(out[0], k), *out[1:])


def attention_core(model: nn.Module, layout: ModelLayout, layer: int) -> nn.Module:
    """The module that holds the query projection of ``layer`` (BERT's ``attention.self``,
    DeBERTa's ``DisentangledSelfAttention``): its output is the concatenated head contexts."""
    return model.get_submodule(layout.names[layer]["query"].rsplit(".", 1)[0])


@torch.no_grad()
def naive_sweep(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    precision: str = "fp32",
    progress: bool = False,
) -> SweepResult:
    """Reference sweep: one full forward pass per (head, batch) with that head's gate 0."""
    layout = resolve_layout(model)
    L, H = layout.n_layers, layout.n_heads
    device = model_device(model)
    model.eval()
    data = [split_batch(b, device) for b in batches]
    sums = _Sums(len(data), L, H, device)
    with head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for bi, (inputs, labels) in enumerate(data):
            sums.add_base(bi, model(**inputs).logits, labels)
        for layer in tqdm(range(L), desc="naive sweep (layers)", disable=not progress):
            for head in range(H):
                for bi, (inputs, labels) in enumerate(data):
                    gate = torch.ones(labels.shape[0], L, H, device=device)
                    gate[:, layer, head] = 0
                    ctrl.set(gate, frozenset({layer}))
                    sums.add(bi, layer, slice(head, head + 1), model(**inputs).logits, labels)
                ctrl.set(None)
    return sums.result()


class _Sums:
    """Device-side sums of per-example losses and hits: base pass and [L, H] ablations, with
    per-batch non-finite flags; read back once, at the end (no host sync inside the loop)."""

    def __init__(self, n_batches: int, L: int, H: int, device: torch.device) -> None:
        f64 = {"dtype": torch.float64, "device": device}
        self.base_loss, self.base_correct = torch.zeros((), **f64), torch.zeros((), **f64)
        self.base_bad = torch.zeros(n_batches, dtype=torch.bool, device=device)
        self.loss, self.correct = torch.zeros(L, H, **f64), torch.zeros(L, H, **f64)
        self.bad = torch.zeros(n_batches, L, H, dtype=torch.bool, device=device)
        self.n = 0

    def add_base(self, bi: int, logits: torch.Tensor, labels: torch.Tensor) -> None:
        ce, ok = _per_example(logits, labels)
        self.base_loss += ce.sum()
        self.base_correct += ok.sum()
        self.base_bad[bi] = ~torch.isfinite(ce).all()
        self.n += labels.shape[0]

    def add(self, bi: int, layer: int, heads: slice, logits: torch.Tensor, labels: torch.Tensor):
        """``logits`` [k*B, C] of k stacked copies of a batch, copy j with head heads[j] off."""
        k = heads.stop - heads.start
        ce, ok = _per_example(logits, labels.repeat(k))
        ce, ok = ce.view(k, -1), ok.view(k, -1)
        self.loss[layer, heads] += ce.sum(1)
        self.correct[layer, heads] += ok.sum(1)
        self.bad[bi, layer, heads] = ~torch.isfinite(ce).all(1)

    def result(self) -> SweepResult:
        check_finite(self.base_bad, "loss with all gates 1")
        check_finite(self.bad, "loss with the head ablated")
        n = self.n
        return SweepResult(
            loss_base=float(self.base_loss) / n,
            acc_base=float(self.base_correct) / n,
            loss_ablate=(self.loss / n).cpu().numpy(),
            acc_ablate=(self.correct / n).cpu().numpy(),
            n_examples=n,
        )


def _forward_capturing(model: nn.Module, layout: ModelLayout, inputs: dict) -> tuple:
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
        c if fed[i] is not None and _first_tensor(c) is fed[i] else None for i, c in enumerate(core)
    ]
    return logits, cached, core


@torch.no_grad()
def ablation_sweep(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> SweepResult:
    """Prefix-cached sweep over all L*H heads; equal to :func:`naive_sweep` up to float rounding.

    ``sweep_tokens`` bounds the padded tokens of one stacked pass: k = sweep_tokens // (B*T)
    ablations of the same layer run together (at least 1, at most H). None: one at a time.
    No host synchronisation happens inside the loop; sums stay on the device until the end.
    """
    layout = resolve_layout(model)
    L, H = layout.n_layers, layout.n_heads
    device = model_device(model)
    model.eval()
    data = [split_batch(b, device) for b in batches]
    sums = _Sums(len(data), L, H, device)
    bar = tqdm(total=len(data) * L * H, desc="ablation sweep (head x batch)", disable=not progress)
    with head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for bi, (inputs, labels) in enumerate(data):
            B = labels.shape[0]
            logits, cached, core = _forward_capturing(model, layout, inputs)
            sums.add_base(bi, logits, labels)
            width = inputs["input_ids"].shape[1]
            k_max = 1 if not sweep_tokens else max(1, min(H, sweep_tokens // (B * width)))
            stacked_inputs: dict[int, dict] = {}
            for layer in range(L):
                # What the stubs return, per stacking k: below layer `layer` its input (the
                # output of layer-1; lower stubs' outputs are overwritten, so they return the
                # same tensor), and the ablated layer's attention core its cached head contexts.
                stubs_for: dict[int, list] = {}
                for start in range(0, H, k_max):
                    k = min(k_max, H - start)
                    if k not in stacked_inputs:
                        stacked_inputs[k] = {
                            n: t.repeat(k, *([1] * (t.dim() - 1))) if k > 1 else t
                            for n, t in inputs.items()
                        }
                    if k not in stubs_for:
                        below = _repeat(cached[layer - 1], k) if layer else None
                        stubs = [(layout.layers[i].layer, below) for i in range(layer)]
                        if core[layer] is not None:
                            stubs.append(
                                (
                                    attention_core(model, layout, layer),
                                    _repeat_first(core[layer], k),
                                )
                            )
                        stubs_for[k] = stubs
                    gate = torch.ones(k, B, L, H, device=device)
                    gate[
                        torch.arange(k, device=device),
                        :,
                        layer,
                        start + torch.arange(k, device=device),
                    ] = 0
                    ctrl.set(gate.view(k * B, L, H), frozenset({layer}))
                    with _stubbed(stubs_for[k]):
                        logits = model(**stacked_inputs[k]).logits
                    sums.add(bi, layer, slice(start, start + k), logits, labels)
                    ctrl.set(None)
                    bar.update(k)
                del stubs_for
            del cached, core, stacked_inputs
    bar.close()
    return sums.result()
