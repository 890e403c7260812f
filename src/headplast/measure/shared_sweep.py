"""The theta0 ablation sweep, done once per (model, task) and shared by every seed and start.

Every theta0 of a model (each seed's random start, each probe start) holds the same pre-trained
encoder and differs only in the classifier (task head), which reads nothing but one pooled vector
of the last hidden state (first token, last non-padding token or masked mean: ``pooling`` in
:mod:`headplast.model.adapters`, :func:`headplast.model.classifier.pool`). So the expensive part
of the sweep, the encoder passes with each head ablated, is the same for all of them:
:func:`theta0_hidden_sweep` records, for the eval subset, that pooled vector with all gates 1
(``base`` [n, D]) and with each head's gate 0 (``ablate`` [L, H, n, D]), prefix-cached as
:func:`headplast.measure.importance.ablation_sweep` (its helpers, the same passes). Each seed's and
start's importance at theta0 is then its own classifier applied to those states
(:func:`importance_from_theta0_sweep`): the same numbers as its full sweep, in seconds.

The artifact carries a fingerprint of the encoder it was computed with and the pooling; applying it
to a theta0 whose encoder differs (another model, a retrained encoder) or whose head pools
otherwise is refused.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from headplast.data.batching import inputs_and_labels_on, model_device
from headplast.io import ArtifactError, load_tensors, save_tensors
from headplast.measure.checks import check_finite
from headplast.measure.importance import SweepResult
from headplast.measure.prefix_cache import prefix_cached_passes
from headplast.model.adapters import resolve_classifier, resolve_layout
from headplast.model.classifier import (
    EncoderMismatchError,
    classifier_logits,
    encoder_fingerprint,
    first_output,
    pool,
    require_pooling,
)
from headplast.model.gating import head_gates
from headplast.model.precision import autocast_context


@dataclass(frozen=True)
class Theta0Sweep:
    """Pooled last hidden states (what the task head reads, ``pooling``) of the eval subset
    (batch order), float32: ``base`` [n, D] with all gates 1, ``ablate`` [L, H, n, D] with
    xi[l, h] = 0; ``labels`` [n]; ``order`` [n]: the eval-subset position of each example (the
    batches are length-sorted). A file written before the pooling was recorded is ``first``."""

    base: torch.Tensor
    ablate: torch.Tensor
    labels: torch.Tensor
    order: torch.Tensor
    encoder_sha256: str
    precision: str
    pooling: str = "first"

    TENSORS = ("base", "ablate", "labels", "order")

    def save(self, path: str | os.PathLike) -> None:
        """One safetensors file (written atomically), fingerprint, precision and pooling as
        metadata."""
        tensors = {k: getattr(self, k) for k in self.TENSORS}
        meta = {
            "encoder_sha256": self.encoder_sha256,
            "precision": self.precision,
            "pooling": self.pooling,
        }
        save_tensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Theta0Sweep:
        t, meta = load_tensors(path, cls.TENSORS, "a theta0 sweep", ["encoder_sha256"])
        n, d = t["base"].shape
        if (
            t["ablate"].dim() != 4
            or t["ablate"].shape[2:] != (n, d)
            or t["labels"].shape != (n,)
            or t["order"].shape != (n,)
        ):
            raise ArtifactError(f"{path}: inconsistent shapes; delete it and rerun")
        return cls(
            **t,
            encoder_sha256=meta["encoder_sha256"],
            precision=meta.get("precision", ""),
            pooling=meta.get("pooling", "first"),
        )


@torch.no_grad()
def theta0_hidden_sweep(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> Theta0Sweep:
    """The prefix-cached ablation sweep of :func:`headplast.measure.importance.ablation_sweep` (same
    passes, same stacking by ``sweep_tokens``), keeping the pooled last hidden state of every pass
    (what the task head reads) instead of the loss."""
    layout = resolve_layout(model)
    classifier = resolve_classifier(model)
    pooling = require_pooling(classifier)
    L, H = layout.n_layers, layout.n_heads
    device = model_device(model)
    model.eval()
    data = [inputs_and_labels_on(b, device) for b in batches]
    seen: list[torch.Tensor] = []
    current: dict[str, torch.Tensor] = {}  # the batch's inputs; a pass stacks k copies of them
    hook = classifier.last_hidden.register_forward_hook(
        lambda module, args, out: seen.append(pool(first_output(out), current, classifier).float())
    )
    bases, ablates, base_bad, bad = [], [], [], []
    bar = tqdm(total=len(data) * L * H, desc="theta0 sweep (head x batch)", disable=not progress)
    try:
        with head_gates(model, layout) as ctrl, autocast_context(device, precision):
            for inputs, labels in data:
                B = labels.shape[0]
                current.clear()
                current.update(inputs)
                ablate = None
                passes = prefix_cached_passes(model, layout, ctrl, inputs, sweep_tokens)
                for layer, heads, _ in passes:
                    if layer is None:
                        bases.append(seen.pop())
                        continue
                    h = seen.pop().view(heads.stop - heads.start, B, -1)
                    if ablate is None:
                        ablate = torch.empty(L, H, B, h.shape[-1], device=device)
                    ablate[layer, heads] = h
                    bar.update(heads.stop - heads.start)
                ablates.append(ablate)
                base_bad.append(~torch.isfinite(bases[-1]).all())
                bad.append((~torch.isfinite(ablate)).flatten(2).any(-1))  # [L, H]
    finally:
        hook.remove()
        bar.close()
    check_finite(torch.stack(base_bad), "hidden state with all gates 1")
    check_finite(torch.stack(bad), "hidden state with the head ablated")
    base, ablate = torch.cat(bases), torch.cat(ablates, dim=2)
    labels = torch.cat([lab for _, lab in data])
    order = torch.arange(len(labels))  # batch order; measure_theta0_sweep maps it to the subset
    fingerprint = encoder_fingerprint(model, classifier)
    return Theta0Sweep(base, ablate, labels, order, fingerprint, precision, pooling)


@torch.no_grad()
def importance_from_theta0_sweep(model: nn.Module, sweep: Theta0Sweep) -> SweepResult:
    """Importance at this theta0 from the shared sweep: its own head applied to the recorded
    hidden states (under the sweep's precision). Refuses a theta0 with another encoder or
    another pooling."""
    layout = resolve_layout(model)
    classifier = resolve_classifier(model)
    L, H, n, d = sweep.ablate.shape
    if (L, H) != (layout.n_layers, layout.n_heads):
        raise EncoderMismatchError(
            f"theta0 sweep has {L} x {H} heads, the checkpoint {layout.n_layers} x {layout.n_heads}"
        )
    pooling = require_pooling(classifier)
    if pooling != sweep.pooling:
        raise EncoderMismatchError(
            f"the theta0 sweep holds '{sweep.pooling}'-pooled hidden states, but this checkpoint's "
            f"head reads the '{pooling}' pooling; rerun the theta0 sweep"
        )
    fp = encoder_fingerprint(model, classifier)
    if fp != sweep.encoder_sha256:
        raise EncoderMismatchError(
            "the checkpoint's encoder differs from the one the theta0 sweep was computed with "
            f"(sha256 {fp[:12]} vs {sweep.encoder_sha256[:12]}): every theta0 of a model must "
            "share the pre-trained encoder; rerun the theta0 sweep, or set "
            "`measure.shared_theta0_sweep: false`"
        )
    device = model_device(model)
    model.eval()
    with autocast_context(device, sweep.precision or "fp32"):
        base = classifier_logits(model, sweep.base.to(device), classifier).float()
        ablate = classifier_logits(
            model, sweep.ablate.reshape(-1, d).to(device), classifier
        ).float()
    return SweepResult.from_logits(base, ablate.view(L, H, n, -1), sweep.labels.to(device))


def measure_theta0_sweep(
    ckpt_dir,
    validation_path,
    subset_path,
    out_path,
    *,
    max_length: int,
    tokens_per_batch: int,
    precision: str,
    sweep_tokens: int | None = None,
    progress: bool = True,
) -> dict:
    """Run :func:`theta0_hidden_sweep` on the checkpoint over the eval subset, save it to
    ``out_path``; returns run info."""
    from headplast.measure.stage import prepare_measure, run_info

    start = time.perf_counter()
    device, used, tf32, model, batches, order = prepare_measure(
        ckpt_dir, validation_path, subset_path, max_length, tokens_per_batch, precision
    )
    sweep = theta0_hidden_sweep(
        model, batches, used, sweep_tokens=sweep_tokens or tokens_per_batch, progress=progress
    )
    sweep = dataclasses.replace(sweep, order=torch.as_tensor(order, dtype=torch.long))
    sweep.save(out_path)
    return run_info(device, used, tf32, batches, start)


def measure_importance_shared(
    ckpt_dir, sweep_path, per_example_path: str | os.PathLike | None = None
) -> tuple[list[dict], dict]:
    """The rows of :func:`headplast.measure.stage.measure_importance` for the checkpoint, from the
    shared theta0 sweep, and run info; with ``per_example_path`` also its per-example ``d``,
    ``kl`` and ``acc_d`` [n, L, H] in eval-subset order (.npz), as the full sweep writes them."""
    from headplast.measure.stage import load_checkpoint, write_ordered_per_example
    from headplast.model.precision import pick_device

    start = time.perf_counter()
    device = pick_device()
    model, _ = load_checkpoint(ckpt_dir, device)
    sweep = Theta0Sweep.load(sweep_path)
    result = importance_from_theta0_sweep(model, sweep)
    if per_example_path is not None:
        write_ordered_per_example(per_example_path, result.per_example(), sweep.order.numpy())
    info = {
        "device": str(device),
        "seconds": round(time.perf_counter() - start, 3),
    }
    return result.rows(), info
