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

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from headplast.data.batching import inputs_and_labels_on, model_device
from headplast.io import finite_or_none
from headplast.measure.checks import check_finite
from headplast.measure.prefix_cache import prefix_cached_passes
from headplast.measure.uncertainty import standard_error, t_quantile
from headplast.model.adapters import resolve_layout
from headplast.model.gating import head_gates
from headplast.model.precision import autocast_context


@dataclass(frozen=True)
class SweepResult:
    """Per-example outcomes of one sweep over ``n`` eval examples and L x H heads.

    Everything per head is a mean (or its standard error) over these examples (docs/methods.md,
    "Importance"): ``d_i = L_i(xi[l,h] = 0) - L_i(all gates 1)``, ``I = mean_i d_i``,
    ``I_se = sd_i(d_i) / sqrt(n)`` (sd with ddof 1), the same for the accuracy change, and the
    label-free ``I_kl = mean_i KL(p_i || q_i)`` (natural log). Build it with :meth:`from_logits`.
    Examples are in the order the sweep saw them.
    """

    loss_base_i: np.ndarray  # [n] float64: cross-entropy with all gates 1
    correct_base_i: np.ndarray  # [n] bool
    loss_ablate_i: np.ndarray  # [n, L, H] float64: cross-entropy with head (l, h) off
    correct_ablate_i: np.ndarray  # [n, L, H] bool
    kl_i: np.ndarray  # [n, L, H] float64: KL(p_i || q_i) in nats, >= 0

    @classmethod
    def from_logits(
        cls, base_logits: torch.Tensor, ablate_logits: torch.Tensor, labels: torch.Tensor
    ) -> SweepResult:
        """From base logits [n, C] (all gates 1), ablated logits [L, H, n, C] (head (l, h) off)
        and labels [n]. Computed in float64 on the CPU; identical logits give KL exactly 0."""
        base = base_logits.detach().to("cpu", torch.float64)
        abl = ablate_logits.detach().to("cpu", torch.float64)
        labels = labels.detach().to("cpu", torch.long)
        n, C = base.shape
        if abl.dim() != 4 or tuple(abl.shape[2:]) != (n, C) or tuple(labels.shape) != (n,):
            raise ValueError(
                f"shapes: base_logits [n, C] = {tuple(base.shape)}, ablate_logits must be "
                f"[L, H, {n}, {C}] (got {tuple(abl.shape)}), labels [{n}] "
                f"(got {tuple(labels.shape)})"
            )
        L, H = abl.shape[:2]
        logp = F.log_softmax(base, dim=-1)  # [n, C]
        logq = F.log_softmax(abl, dim=-1)  # [L, H, n, C]
        idx = labels[:, None]
        loss_base = -logp.gather(1, idx)[:, 0]
        loss_abl = -logq.gather(3, idx.expand(L, H, n, 1))[..., 0]  # [L, H, n]
        kl = (logp.exp() * (logp - logq)).sum(-1)  # [L, H, n]
        return cls(
            loss_base_i=loss_base.numpy(),
            correct_base_i=(base.argmax(-1) == labels).numpy(),
            loss_ablate_i=loss_abl.permute(2, 0, 1).numpy().copy(),
            correct_ablate_i=(abl.argmax(-1) == labels).permute(2, 0, 1).numpy().copy(),
            kl_i=kl.permute(2, 0, 1).numpy().copy(),
        )

    @classmethod
    def concat(cls, parts: Sequence[SweepResult]) -> SweepResult:
        """One result over the examples of all ``parts`` (same heads), in the given order."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    # ------------------------------------------------------------------ per example
    @property
    def n_examples(self) -> int:
        return int(self.loss_base_i.shape[0])

    @property
    def d_i(self) -> np.ndarray:
        """Per-example loss differences d_i = L_i(ablated) - L_i(base), [n, L, H]."""
        return self.loss_ablate_i - self.loss_base_i[:, None, None]

    @property
    def acc_d_i(self) -> np.ndarray:
        """Per-example accuracy change (-1, 0 or +1), [n, L, H] int8."""
        return self.correct_ablate_i.astype(np.int8) - self.correct_base_i[:, None, None]

    # ------------------------------------------------------------------ per head
    @property
    def loss_base(self) -> float:
        return float(self.loss_base_i.mean())

    @property
    def acc_base(self) -> float:
        return float(self.correct_base_i.mean())

    @property
    def loss_ablate(self) -> np.ndarray:
        """Mean cross-entropy with head (l, h) off, [L, H]."""
        return self.loss_ablate_i.mean(0)

    @property
    def acc_ablate(self) -> np.ndarray:
        return self.correct_ablate_i.mean(0)

    @property
    def importance(self) -> np.ndarray:
        """I = loss_ablate - loss_base = mean_i d_i, [L, H]."""
        return self.d_i.mean(0)

    @property
    def importance_se(self) -> np.ndarray:
        """I_se = sd_i(d_i) / sqrt(n), [L, H] (NaN with one example)."""
        return standard_error(self.d_i)

    @property
    def importance_ci(self) -> tuple[np.ndarray, np.ndarray]:
        """95% t-interval of I: I -+ t_(n-1, 0.975) * I_se, each [L, H]."""
        half = t_quantile(self.n_examples) * self.importance_se
        return self.importance - half, self.importance + half

    @property
    def acc_delta(self) -> np.ndarray:
        """acc_ablate - acc_base, [L, H]."""
        return self.acc_d_i.mean(0, dtype=np.float64)

    @property
    def acc_delta_se(self) -> np.ndarray:
        return standard_error(self.acc_d_i.astype(np.float64))

    @property
    def importance_kl(self) -> np.ndarray:
        """I_kl = mean_i KL(p_i || q_i), [L, H] (nats; label-free)."""
        return self.kl_i.mean(0)

    @property
    def importance_kl_se(self) -> np.ndarray:
        return standard_error(self.kl_i)

    def per_example(self) -> dict[str, np.ndarray]:
        """The per-example values the reliability needs, [n, L, H] each: ``d`` (loss change),
        ``kl`` (KL(p || q)) and ``acc_d`` (accuracy change)."""
        return {"d": self.d_i, "kl": self.kl_i, "acc_d": self.acc_d_i}

    def rows(self) -> list[dict]:
        """One dict per head in (layer, head) order with the field names of docs/methods.md."""
        L, H = self.loss_ablate_i.shape[1:]
        imp, se, (lo, hi) = self.importance, self.importance_se, self.importance_ci
        la, aa, ad, ad_se = self.loss_ablate, self.acc_ablate, self.acc_delta, self.acc_delta_se
        kl, kl_se = self.importance_kl, self.importance_kl_se
        lb, ab = self.loss_base, self.acc_base
        return [
            {
                "layer": layer,
                "head": head,
                "I": float(imp[layer, head]),
                "loss_base": lb,
                "loss_ablate": float(la[layer, head]),
                "acc_base": ab,
                "acc_ablate": float(aa[layer, head]),
                "I_se": finite_or_none(se[layer, head]),
                "I_ci_low": finite_or_none(lo[layer, head]),
                "I_ci_high": finite_or_none(hi[layer, head]),
                "acc_delta": float(ad[layer, head]),
                "acc_delta_se": finite_or_none(ad_se[layer, head]),
                "I_kl": float(kl[layer, head]),
                "I_kl_se": finite_or_none(kl_se[layer, head]),
            }
            for layer in range(L)
            for head in range(H)
        ]


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
    data = [inputs_and_labels_on(b, device) for b in batches]
    logits_store = _Logits(data, L, H, device)
    with head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for bi, (inputs, labels) in enumerate(data):
            logits_store.add_base(bi, model(**inputs).logits, labels)
        for layer in tqdm(range(L), desc="naive sweep (layers)", disable=not progress):
            for head in range(H):
                for bi, (inputs, labels) in enumerate(data):
                    gate = torch.ones(labels.shape[0], L, H, device=device)
                    gate[:, layer, head] = 0
                    ctrl.set(gate, frozenset({layer}))
                    logits = model(**inputs).logits
                    logits_store.add(bi, layer, slice(head, head + 1), logits, labels)
                ctrl.set(None)
    return logits_store.result()


class _Logits:
    """Device-side logits of the base pass [n, C] and of every ablation [L, H, n, C], with
    per-batch non-finite flags; read back once, at the end (no host sync inside the loop), and
    turned into a :class:`SweepResult` by :meth:`SweepResult.from_logits`."""

    def __init__(self, data: Sequence[tuple[dict, torch.Tensor]], L: int, H: int, device) -> None:
        sizes = [labels.shape[0] for _, labels in data]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.n, self.L, self.H, self.device = sum(sizes), L, H, device
        self.labels = torch.cat([labels for _, labels in data]) if data else None
        self.base: torch.Tensor | None = None
        self.ablate: torch.Tensor | None = None
        self.base_bad = torch.zeros(len(data), dtype=torch.bool, device=device)
        self.bad = torch.zeros(len(data), L, H, dtype=torch.bool, device=device)

    def _rows(self, bi: int, B: int) -> slice:
        return slice(self.offsets[bi], self.offsets[bi] + B)

    def add_base(self, bi: int, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits = logits.float()
        if self.base is None:
            C = logits.shape[-1]
            f32 = {"dtype": torch.float32, "device": self.device}
            self.base = torch.zeros(self.n, C, **f32)
            self.ablate = torch.zeros(self.L, self.H, self.n, C, **f32)
        self.base[self._rows(bi, labels.shape[0])] = logits
        self.base_bad[bi] = ~torch.isfinite(logits).all()

    def add(self, bi: int, layer: int, heads: slice, logits: torch.Tensor, labels: torch.Tensor):
        """``logits`` [k*B, C] of k stacked copies of a batch, copy j with head heads[j] off."""
        k, B = heads.stop - heads.start, labels.shape[0]
        logits = logits.float().view(k, B, -1)
        self.ablate[layer, heads, self._rows(bi, B)] = logits
        self.bad[bi, layer, heads] = ~torch.isfinite(logits).flatten(1).all(1)

    def result(self) -> SweepResult:
        check_finite(self.base_bad, "loss with all gates 1")
        check_finite(self.bad, "loss with the head ablated")
        return SweepResult.from_logits(self.base, self.ablate, self.labels)


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
    No host synchronisation happens inside the loop; logits stay on the device until the end.
    """
    layout = resolve_layout(model)
    L, H = layout.n_layers, layout.n_heads
    device = model_device(model)
    model.eval()
    data = [inputs_and_labels_on(b, device) for b in batches]
    logits_store = _Logits(data, L, H, device)
    bar = tqdm(total=len(data) * L * H, desc="ablation sweep (head x batch)", disable=not progress)
    with head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for bi, (inputs, labels) in enumerate(data):
            for layer, heads, logits in prefix_cached_passes(
                model, layout, ctrl, inputs, sweep_tokens
            ):
                if layer is None:
                    logits_store.add_base(bi, logits, labels)
                else:
                    logits_store.add(bi, layer, heads, logits, labels)
                    bar.update(heads.stop - heads.start)
    bar.close()
    return logits_store.result()
