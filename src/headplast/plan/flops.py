"""Floating-point operations of the workflow's computations, counted without computing them.

The counter is ``make bench-gpu``'s (:func:`headplast.bench.gpu.counted_flops`: PyTorch's
``FlopCounterMode``, matrix products and attention, a multiply-add counted as 2), applied to the
workflow's own code (the prefix-cached ablation sweep, gate gradients, pruning's removal passes,
functional change, a training step, an evaluation forward, the task head) on one batch of the
job's shape. The model is built from its architecture on PyTorch's ``meta`` device, whose tensors
have shapes but no data, so counting DeBERTa-v3-base's sweep costs a few seconds of Python on
any machine. :class:`ShapeOnly` answers the few places where that code reads a value back to the
host (a finiteness check, the per-example arrays copied to NumPy) with zeros; none of them
decides how much is computed, which the tests check by comparing these counts with the same
counter on real tensors (``tests/test_plan.py``).

Every count is per example (per set and example for pruning; per row for the task head) at a
fixed number of tokens per example; the plan scales it to a job's examples, as ``bench-gpu``
scales its 32-example count to 1,024 (:class:`ShapeCounts`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from headplast.bench.gpu import counted_flops, train_steps
from headplast.data.batching import Encoded, collate
from headplast.measure.crossfit import EXAMPLE_SCORES, with_scores
from headplast.measure.function_change import function_change
from headplast.measure.gradients import gate_gradients
from headplast.measure.importance import ablation_sweep
from headplast.measure.pruning import SCORES, evaluation_count, removal_orders, removal_sums
from headplast.model.adapters import resolve_classifier
from headplast.model.architectures import build_model
from headplast.model.classifier import classifier_logits
from headplast.plan.sizes import Architecture

_aten = torch.ops.aten


def _meta(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == "meta"


class ShapeOnly(TorchDispatchMode):
    """Run code on ``meta`` tensors to the end: a value read back to the host (``.item()``,
    ``bool()``, a copy to the CPU) is zero (False), and ``nonzero`` assumes every element is
    non-zero (DeBERTa's loss picks the labelled rows with it: all of them are). Only for counting
    operations: the numbers that come out mean nothing."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func is _aten._local_scalar_dense.default and _meta(args[0]):
            dtype = args[0].dtype
            return False if dtype == torch.bool else (0.0 if dtype.is_floating_point else 0)
        if func is _aten._to_copy.default and _meta(args[0]):
            device = kwargs.get("device")
            if device is not None and torch.device(device).type != "meta":
                dtype = kwargs.get("dtype") or args[0].dtype
                return torch.zeros(args[0].shape, dtype=dtype, device=device)
        if func is _aten.copy_.default and _meta(args[1]) and not _meta(args[0]):
            return args[0].zero_()
        if func is _aten.nonzero.default and _meta(args[0]):
            t = args[0]
            return torch.empty((t.numel(), t.dim()), dtype=torch.long, device="meta")
        return func(*args, **kwargs)


def shape_only_flops(fn: Callable[[], Any]) -> int:
    """:func:`headplast.bench.gpu.counted_flops` of ``fn()``, run under :class:`ShapeOnly`."""
    with ShapeOnly():
        return counted_flops(fn)


def meta_model(arch: Architecture, num_labels: int) -> nn.Module:
    """``<family>ForSequenceClassification`` of ``arch`` with ``num_labels`` classes on the
    ``meta`` device (no weights, no memory), in eval mode
    (:func:`headplast.model.architectures.build_model`, as ``make bench-gpu`` builds it)."""
    return build_model(arch.config, num_labels, device="meta")


def uniform_batch(n: int, tokens: int) -> dict[str, torch.Tensor]:
    """A measuring batch (:func:`headplast.data.batching.collate`) of ``n`` examples of exactly
    ``tokens`` tokens each (token ids and labels are irrelevant to the count)."""
    return collate(Encoded([[1] * tokens] * n, None, [0] * n, 0), range(n))


def examples_per_batch(tokens_per_batch: int, tokens: int) -> int:
    """Examples of ``tokens`` tokens in one token-budget batch
    (:func:`headplast.data.batching.length_batches`: at least one)."""
    return max(1, tokens_per_batch // tokens)


def generic_heads(n_layers: int, n_heads: int, seed: int = 0) -> pd.DataFrame:
    """A per-head frame (``layer, head`` and every score of :data:`SCORES`) of random scores:
    orders in general position (for 144 heads, two such orders share no step's set in practice;
    for a handful of heads they may)."""
    rng = np.random.default_rng(seed)
    heads = [(la, h) for la in range(n_layers) for h in range(n_heads)]
    frame = pd.DataFrame(heads, columns=["layer", "head"])
    return frame.assign(**{name: rng.random(len(heads)) for name in SCORES})


def pruning_evaluations(
    n_layers: int, n_heads: int, n_eval: int, n_random: int, step_fraction: float, seed: int
) -> int:
    """Set x example evaluations of one pruning job (:func:`headplast.measure.pruning.
    evaluation_count`, cross-fitted): each half of the eval subset (sizes as
    :func:`headplast.measure.crossfit.crossfit_halves` makes them) with every distinct removed set
    of its orders and of the in-sample orders, for scores in general position. Real scores can
    only share more sets (ties, equal prefixes), so this is an upper bound."""
    heads = generic_heads(n_layers, n_heads, seed)
    rng = np.random.default_rng(seed + 1)
    in_sample = removal_orders(heads, n_random, seed)
    half_orders = []
    for _ in range(2):  # the example-based scores of each half differ from the whole subset's
        scores = {s: rng.random((n_layers, n_heads)) for s in EXAMPLE_SCORES}
        half_orders.append(removal_orders(with_scores(heads, scores), n_random, seed))
    n_halves = [(n_eval + 1) // 2, n_eval // 2]
    count = evaluation_count(half_orders, in_sample, n_halves, n_layers * n_heads, step_fraction)
    return int(count["crossfit"])


class ShapeCounts:
    """FLOPs per example of the workflow's computations for one architecture and label count,
    each counted once per shape (the count is cached on this object).

    ``tokens`` is the tokens per example, ``batch`` the examples of the batch the job would run
    them in (the count is divided by it: DeBERTa's relative-position projections are computed
    once per pass, not per example, so the batch size changes the per-example figure a little).
    """

    def __init__(self, arch: Architecture, num_labels: int) -> None:
        self.arch = arch
        self.num_labels = num_labels
        self._model: nn.Module | None = None
        self._cache: dict[tuple, float] = {}

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = meta_model(self.arch, self.num_labels)
        return self._model

    def _per(self, key: tuple, units: int, fn: Callable[[], Any]) -> float:
        if key not in self._cache:
            self._cache[key] = shape_only_flops(fn) / units
        return self._cache[key]

    def forward(self, tokens: int, batch: int) -> float:
        """One eval-mode forward (Trainer evaluation, probe features, imported checkpoints)."""
        inputs = {k: v.to("meta") for k, v in uniform_batch(batch, tokens).items()}
        inputs.pop("labels")

        def run() -> Any:
            with torch.no_grad():
                return self.model(**inputs)

        return self._per(("forward", tokens, batch), batch, run)

    def train_step(self, tokens: int, batch: int) -> float:
        """One training step, forward and backward (:func:`headplast.bench.gpu.train_steps`, the
        step ``bench-gpu`` counts), per example of a batch of ``batch``."""
        batches = [uniform_batch(batch, tokens)]
        return self._per(
            ("train", tokens, batch),
            batch,
            lambda: train_steps(copy.deepcopy(self.model), batches, 1, "fp32"),
        )

    def sweep(self, tokens: int, batch: int, sweep_tokens: int) -> float:
        """The prefix-cached ablation sweep (:func:`headplast.measure.importance.ablation_sweep`:
        the all-gates-1 pass and one ablation per head, layers below the ablated one cached):
        per example, all L x H + 1 passes together. The shared theta0 sweep runs the same passes
        (``tests/test_plan.py`` checks it)."""
        batches = [uniform_batch(batch, tokens)]
        return self._per(
            ("sweep", tokens, batch, sweep_tokens),
            batch,
            lambda: ablation_sweep(self.model, batches, "fp32", sweep_tokens=sweep_tokens),
        )

    def gate_gradients(self, tokens: int, batch: int) -> float:
        """Per-example gate gradients (:func:`headplast.measure.gradients.gate_gradients`: one
        forward and one backward to the gates)."""
        batches = [uniform_batch(batch, tokens)]
        return self._per(
            ("gradfisher", tokens, batch),
            batch,
            lambda: gate_gradients(self.model, batches, "fp32"),
        )

    def function_change(self, tokens: int, batch: int) -> float:
        """A_js and C_rel (:func:`headplast.measure.function_change.function_change`: theta0 and
        theta1 forward with eager attention)."""
        batches = [uniform_batch(batch, tokens)]
        return self._per(
            ("function_change", tokens, batch),
            batch,
            lambda: function_change(self.model, copy.deepcopy(self.model), batches, "fp32"),
        )

    def removal(self, tokens: int, batch: int, sweep_tokens: int, n_sets: int) -> float:
        """Pruning's evaluation of ``n_sets`` removed sets on one batch
        (:func:`headplast.measure.pruning.removal_sums`: up to sweep_tokens // (B x T) sets
        stacked in one pass), per set and example."""
        layers, heads = self.arch.n_layers, self.arch.n_heads
        orders = removal_orders(
            generic_heads(layers, heads), n_sets, 0, score_names=(), reverse=None
        )
        sets = [frozenset(o.heads[: (layers * heads) // 2]) for o in orders]
        batches = [uniform_batch(batch, tokens)]
        return self._per(
            ("removal", tokens, batch, sweep_tokens, n_sets),
            n_sets * batch,
            lambda: removal_sums(self.model, batches, sets, "fp32", sweep_tokens),
        )

    def classifier(self, rows: int, train: bool = False) -> float:
        """The classifier (task head) on first-token features
        (:func:`headplast.model.classifier.classifier_logits`), per row: forward, or with ``train``
        forward and backward (a probe's fitting step)."""
        features = torch.empty(rows, self.arch.hidden, device="meta")
        labels = torch.zeros(rows, dtype=torch.long, device="meta")

        def run() -> Any:
            if not train:
                with torch.no_grad():
                    return classifier_logits(self.model, features)
            model = copy.deepcopy(
                self.model
            )  # gradients for the classifier alone, as the probe fits
            classifier = resolve_classifier(model)
            for name, p in model.named_parameters():
                p.requires_grad_(name in classifier.classifier_parameters)
            F.cross_entropy(classifier_logits(model, features, classifier), labels).backward()

        return self._per(("classifier", rows, train), rows, run)
