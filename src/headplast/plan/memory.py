"""GPU memory of the workflow's computations, counted on the ``meta`` device.

The FLOP counts of :mod:`headplast.plan.flops` say how long a job computes; whether its batch fits
a GPU is a question of memory, mostly of the activations that a backward pass keeps (the
per-example gate gradients themselves are [examples, layers, heads] floats: kilobytes).
:func:`peak_bytes` runs the workflow's own code (a training step, gate gradients, the ablation
sweep, pruning's removal passes, functional change) on a model built on the ``meta`` device, as
the FLOPs are counted, and follows every tensor that code creates from the operation that makes
it until Python frees it (:class:`LiveBytes`): the largest sum of bytes alive at one time is the
peak, on top of the tensors that existed before (the weights, counted apart).

What the GPU runs differently from the meta device, and how it is counted here
(:class:`GpuKernels`):

- attention through ``scaled_dot_product_attention`` runs as a fused kernel (flash or
  memory-efficient attention) that keeps, for the backward pass, the query, key, value, output
  and one log-sum-exp per query row, never the T x T matrix of weights; the meta device would
  run it as matrix products and keep that matrix. Eager attention (functional change, which reads
  the weights) is counted as it runs;
- bf16 training runs under CUDA autocast, which the meta device does not have: emulated by
  casting the inputs of matrix products and attention to bf16 and those of softmax,
  normalisation and the loss to fp32, as autocast's op lists do (the bf16 copies of the weights
  that autocast makes are counted where an operation makes them).

The meta device cannot see that an attention mask is all ones, so a model that skips its mask
for a batch without padding is counted with the mask, as for the padded batches the workflow's
length-sorted batching mostly makes (the tests compare the counts with the same code on real
tensors of a padded batch: equal). Not counted: the CUDA context and PyTorch's allocator (cached
blocks, fragmentation), cuBLAS workspaces, and the data loader. ``make bench-gpu`` prints each
stage's allocated peak on a GPU to compare.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from headplast.bench.gpu import train_steps
from headplast.measure.function_change import function_change
from headplast.measure.gradients import gate_gradients
from headplast.measure.importance import ablation_sweep
from headplast.measure.pruning import removal_orders, removal_sums
from headplast.plan.flops import ShapeOnly, generic_heads, meta_model, uniform_batch
from headplast.plan.sizes import Architecture

#: Functions CUDA autocast runs in the lower precision (matrix products, attention).
LOWER_PRECISION: tuple[Callable, ...] = (
    F.linear,
    torch.matmul,
    torch.Tensor.matmul,
    torch.Tensor.__matmul__,
    torch.mm,
    torch.bmm,
    torch.baddbmm,
    torch.addmm,
    torch.einsum,
    F.scaled_dot_product_attention,
)
#: Functions CUDA autocast runs in fp32 (softmax, normalisation, the loss).
FULL_PRECISION: tuple[Callable, ...] = (
    F.softmax,
    torch.softmax,
    torch.Tensor.softmax,
    F.log_softmax,
    torch.log_softmax,
    torch.Tensor.log_softmax,
    F.layer_norm,
    torch.layer_norm,
    F.cross_entropy,
    F.nll_loss,
)


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """Floating-point tensors in ``value`` (nested) cast to ``dtype``; everything else as it is."""

    def one(x: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != dtype:
            return x.to(dtype)
        return x

    return tree_map(one, value)


class _FusedAttention(torch.autograd.Function):
    """What a fused attention kernel allocates: its output, and for the backward pass the
    query, key, value, output and an fp32 log-sum-exp per query row (no T x T matrix). Shapes
    only, for counting memory (zeros where the tensors are real: the tests count the same code on
    the CPU)."""

    @staticmethod
    def forward(ctx, q, k, v):  # noqa: ANN001, ANN205
        out = q.new_zeros((*q.shape[:-1], v.shape[-1]))
        lse = q.new_zeros(q.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        q, k, v, _, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


class GpuKernels(TorchFunctionMode):
    """What a GPU runs differently from the meta device, for counting memory: attention through
    ``scaled_dot_product_attention`` as a fused kernel (:class:`_FusedAttention`), and with
    ``bf16`` CUDA autocast's casts (:data:`LOWER_PRECISION` in bf16, :data:`FULL_PRECISION` in
    fp32)."""

    def __init__(self, bf16: bool = False) -> None:
        super().__init__()
        self.bf16 = bf16

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if self.bf16 and func in LOWER_PRECISION:
            args, kwargs = _cast((args, kwargs), torch.bfloat16)
        elif self.bf16 and func in FULL_PRECISION:
            args, kwargs = _cast((args, kwargs), torch.float32)
        if func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            return _FusedAttention.apply(q, k, v)
        return func(*args, **kwargs)


class LiveBytes(ShapeOnly):
    """:class:`headplast.plan.flops.ShapeOnly` that also counts the bytes of the ``meta``
    tensors the code under it creates: from the operation whose output holds a new storage (not
    a view of an input, not an input written in place) until Python frees that storage.
    ``live``: bytes alive now; ``peak``: the most alive at once; ``mark(name)`` records
    ``live`` at a point (the end of a forward pass, say). ``device_type`` other than ``meta``
    counts real tensors of that device the same way (the tests compare the two)."""

    def __init__(self, device_type: str = "meta") -> None:
        super().__init__()
        self.device_type = device_type
        self.live = 0
        self.peak = 0
        self.marks: dict[str, int] = {}
        self._refs: dict[int, weakref.ref] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = self.live

    def _free(self, key: int, nbytes: int) -> None:
        self._refs.pop(key, None)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = super().__torch_dispatch__(func, types, args, kwargs)
        inputs = {
            id(t.untyped_storage())
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor) and t.device.type == self.device_type
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type != self.device_type:
                continue
            storage = t.untyped_storage()
            key = id(storage)
            if key in inputs or key in self._refs:
                continue
            nbytes = storage.nbytes()
            self._refs[key] = weakref.ref(
                storage, lambda _ref, key=key, nbytes=nbytes: self._free(key, nbytes)
            )
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        return out


def peak_bytes(
    fn: Callable[[LiveBytes], Any], bf16: bool = False, device_type: str = "meta"
) -> LiveBytes:
    """Run ``fn(counter)`` on meta tensors under :class:`GpuKernels` (``bf16``: with autocast's
    casts) and :class:`LiveBytes`; the counter holds the peak (bytes beyond what existed before)
    and the marks ``fn`` set."""
    counter = LiveBytes(device_type)
    with GpuKernels(bf16=bf16), counter:
        fn(counter)
    return counter


def param_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers as they are (fp32 unless cast)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class Footprint:
    """One computation's memory on a GPU, in bytes: ``weights`` (the fp32 models it holds),
    ``peak`` (the most that its tensors take at once beyond the weights: activations, gradients,
    optimizer state, temporaries) and, for a pass with a backward, ``saved`` (alive at the end of
    the forward pass: what is kept for the backward pass, the output and loss)."""

    name: str
    weights: int
    peak: int
    saved: int | None = None

    @property
    def total(self) -> int:
        return self.weights + self.peak


def _forward_hooks(model: nn.Module, counter: LiveBytes) -> tuple[Any, Any]:
    """Hooks on ``model`` that record in ``counter.marks["saved"]`` what its (last) forward pass
    left alive: the bytes alive when it returns less those alive when it began."""

    def begin(*_: Any) -> None:
        counter.mark("start")

    def end(*_: Any) -> None:
        counter.marks["saved"] = counter.live - counter.marks["start"]

    return model.register_forward_pre_hook(begin), model.register_forward_hook(end)


class MemoryCounts:
    """The :class:`Footprint` of the workflow's computations for one architecture, on the meta
    device (as :class:`headplast.plan.flops.ShapeCounts` counts their FLOPs)."""

    def __init__(self, arch: Architecture, num_labels: int = 3) -> None:
        self.arch = arch
        self.model = meta_model(arch, num_labels)
        self.weights = param_bytes(self.model)

    def train_step(self, tokens: int, batch: int, bf16: bool = True) -> Footprint:
        """Training steps as :func:`headplast.bench.gpu.train_steps` runs them (fp32 weights,
        AdamW; bf16 autocast emulated with ``bf16``), two of them, so that the second runs as
        every later step does, with AdamW's two moments (8 bytes a parameter) alive beside the
        activations and the gradients (4 bytes a parameter) filling up in the backward pass:
        ``peak`` is the steady state's; ``saved`` what one forward pass keeps for its backward."""
        model = copy.deepcopy(self.model)
        batches = [uniform_batch(batch, tokens)]

        def run(counter: LiveBytes) -> None:
            hooks = _forward_hooks(model, counter)
            try:
                train_steps(model, batches, 2, "fp32")
            finally:
                for hook in hooks:
                    hook.remove()

        c = peak_bytes(run, bf16=bf16)
        return Footprint("finetune", self.weights, c.peak, c.marks.get("saved"))

    def gate_gradients(self, tokens: int, batch: int) -> Footprint:
        """Per-example gate gradients on one measuring batch (fp32, parameters frozen)."""
        batches = [uniform_batch(batch, tokens)]

        def run(counter: LiveBytes) -> None:
            hooks = _forward_hooks(self.model, counter)
            try:
                gate_gradients(self.model, batches, "fp32")
            finally:
                for hook in hooks:
                    hook.remove()

        c = peak_bytes(run)
        return Footprint("gradfisher", self.weights, c.peak, c.marks.get("saved"))

    def sweep(self, tokens: int, batch: int, sweep_tokens: int) -> Footprint:
        """The prefix-cached ablation sweep on one measuring batch (fp32, no gradients): the
        cached layer outputs and the stacked passes of up to ``sweep_tokens`` tokens."""
        batches = [uniform_batch(batch, tokens)]
        c = peak_bytes(lambda _: ablation_sweep(self.model, batches, "fp32", sweep_tokens))
        return Footprint("sweep", self.weights, c.peak)

    def removal(self, tokens: int, batch: int, sweep_tokens: int) -> Footprint:
        """Pruning's removal passes on one measuring batch: as many removed sets as
        :func:`headplast.measure.pruning.removal_sums` stacks in one pass of ``sweep_tokens``
        tokens (the most memory a pass of them takes)."""
        layers, heads = self.arch.n_layers, self.arch.n_heads
        n_sets = max(1, sweep_tokens // (batch * tokens))
        orders = removal_orders(
            generic_heads(layers, heads), n_sets, 0, score_names=(), reverse=None
        )
        sets = [frozenset(o.heads[: (layers * heads) // 2]) for o in orders]
        batches = [uniform_batch(batch, tokens)]
        c = peak_bytes(lambda _: removal_sums(self.model, batches, sets, "fp32", sweep_tokens))
        return Footprint("pruning", self.weights, c.peak)

    def function_change(self, tokens: int, batch: int) -> Footprint:
        """A_js and C_rel on one measuring batch: theta0 and theta1 (two sets of weights), eager
        attention whose weights it compares."""
        theta1 = copy.deepcopy(self.model)
        batches = [uniform_batch(batch, tokens)]
        c = peak_bytes(lambda _: function_change(self.model, theta1, batches, "fp32"))
        return Footprint("function_change", 2 * self.weights, c.peak)
