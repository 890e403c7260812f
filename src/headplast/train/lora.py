"""LoRA as a training method (``train.method: lora``; docs/methods.md, "LoRA").

The projections a LoRA ``target`` names are roles of the adapter table (``query``, ``key``,
``value``, ``output``: :data:`~headplast.train.defaults.LORA_TARGETS`), never module names, so one
setting means the same for every family. :func:`wrap_lora` turns each named role's module of every
layer into a peft LoRA layer (W0 + B @ A * alpha / r; a ``Conv1D`` 's weight is stored transposed,
peft's ``fan_in_fan_out``) and keeps every parameter outside the encoder (the task head: pooler,
classifier, score; what probing trains) fully trainable as peft's ``modules_to_save``. Everything
else is frozen at theta0. After training, :func:`merge_lora` folds B @ A * scaling into W0, so
theta1 is a plain checkpoint of the model's own class and every measure reads it unchanged.

A fused query/key/value map (ModernBERT's ``Wqkv``, GPT-2's ``c_attn``) is one module, so it gets
one LoRA pair: one A (r x in) shared by the query, key and value heads, and one B whose rows are
the fused map's output features, cut into heads as the table cuts the weight. Head h's query slice
of the merged update is then ``B[rows of h] @ A * scaling``, as for separate maps; what differs is
that the q, k and v slices of every head share A's row space (one rank-r update for the whole map,
where separate maps get one each). A target that names only some of a fused map's roles wraps the
map and holds B's rows of the others at 0 (zeroed, their gradient masked), so exactly the named
roles move.

The freeze intervention under LoRA (:func:`lora_masks`, used by
:mod:`headplast.train.freeze`): a frozen head's merged slices stay at theta0 when B's rows of its
query/key/value output features and A's columns of its output-projection input features are 0,
since the merged update of a row (column) is that row of B (column of A) times the other factor.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from headplast.model.adapters import Projection, adapter_for, resolve_classifier, resolve_layout
from headplast.train.defaults import LORA_DEFAULTS, LORA_TARGETS

#: The name peft gives the one adapter.
ADAPTER = "default"

Head = tuple[int, int]


def lora_settings(lora: Mapping[str, Any] | None) -> dict[str, Any]:
    """The LoRA settings: ``lora`` 's keys over :data:`~headplast.train.defaults.LORA_DEFAULTS`,
    checked (``r`` a positive integer, ``alpha`` > 0, ``dropout`` in [0, 1), ``target`` a
    non-empty list of distinct roles from ``LORA_TARGETS``, kept in that order)."""
    lora = dict(lora or {})
    unknown = sorted(set(lora) - set(LORA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown lora setting(s) {unknown}; known: {sorted(LORA_DEFAULTS)}")
    out = {**LORA_DEFAULTS, **lora}
    r = out["r"]
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"lora.r must be a positive integer, got {r!r}")
    if isinstance(out["alpha"], bool) or not float(out["alpha"]) > 0:
        raise ValueError(f"lora.alpha must be a positive number, got {out['alpha']!r}")
    if not 0 <= float(out["dropout"]) < 1:
        raise ValueError(f"lora.dropout must be in [0, 1), got {out['dropout']!r}")
    target = out["target"]
    if isinstance(target, str):
        target = [target]
    target = list(target)
    bad = [t for t in target if t not in LORA_TARGETS]
    if not target or bad or len(set(target)) != len(target):
        raise ValueError(
            f"lora.target must be a non-empty list of distinct roles from {list(LORA_TARGETS)} "
            f"(the adapter table's attention projections, the same for every family), got "
            f"{out['target']!r}"
        )
    return {
        "r": int(r),
        "alpha": float(out["alpha"]),
        "dropout": float(out["dropout"]),
        "target": [t for t in LORA_TARGETS if t in target],
    }


def scaling(settings: Mapping[str, Any]) -> float:
    """The factor of the merged update B @ A: alpha / r."""
    return float(settings["alpha"]) / int(settings["r"])


def base_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft model (with its LoRA layers), or ``model`` itself."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def is_lora(model: nn.Module) -> bool:
    """Whether ``model`` (a peft model or the model inside one) holds LoRA layers."""
    if "peft" not in sys.modules:  # no peft model can exist: do not pay for importing it
        return False
    from peft.tuners.lora import LoraLayer

    return any(isinstance(m, LoraLayer) for m in base_model(model).modules())


def lora_plan(model: nn.Module, target: Iterable[str]) -> tuple[list[str], dict[str, list[slice]]]:
    """(the modules to wrap, the rows of B to hold at 0 per module) for a LoRA on the roles
    ``target`` of ``model`` 's attention (a transformers model, unwrapped): every layer's modules
    of those roles, in layer order, and, for a fused map of which ``target`` names only some
    roles, the output features of the roles it leaves out."""
    target = set(target)
    layout = resolve_layout(model)
    modules: list[str] = []
    held: dict[str, list[slice]] = {}
    for projections in layout.projections:
        by_module: dict[str, list[tuple[str, Projection]]] = {}
        for part, projection in projections.items():
            by_module.setdefault(projection.module, []).append((part, projection))
        for name, parts in by_module.items():
            named = [p for p, _ in parts if p in target]
            if not named:
                continue
            modules.append(name)
            for part, projection in parts:
                if part not in target:  # a fused map's role that stays at theta0
                    start = projection.offset
                    held.setdefault(name, []).append(
                        slice(start, start + projection.units * projection.head_dim)
                    )
    return modules, held


def _factor(model: nn.Module, module: str, which: str) -> nn.Parameter | None:
    """LoRA factor ``which`` ('lora_A' or 'lora_B') of ``module`` (a qualified name in the model
    inside the peft model), or None when the module is not a LoRA layer."""
    from peft.tuners.lora import LoraLayer

    layer = base_model(model).get_submodule(module)
    if not isinstance(layer, LoraLayer):
        return None
    return getattr(layer, which)[ADAPTER].weight


class _Holder:
    """Entries of parameters held at 0: zeroed now, their gradients masked (so AdamW moves them
    neither by its update, whose moments stay 0, nor by its decay, which keeps 0 at 0), and
    written 0 again by :meth:`restore`."""

    def __init__(self, masks: dict[nn.Parameter, torch.Tensor]) -> None:
        self.masks = masks
        self.hooks = [p.register_hook(_masking(m)) for p, m in self.masks.items()]
        self.restore()

    @torch.no_grad()
    def restore(self) -> None:
        for p, m in self.masks.items():
            p.mul_(m.to(device=p.device, dtype=p.dtype))


def _masking(mask: torch.Tensor) -> Any:
    """A gradient hook multiplying by ``mask``, moved once to the gradient's device and dtype (the
    model is wrapped on the CPU; the Trainer moves it afterwards)."""
    moved: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def hook(grad: torch.Tensor) -> torch.Tensor:
        key = (grad.device, grad.dtype)
        if key not in moved:
            moved[key] = mask.to(device=grad.device, dtype=grad.dtype)
        return grad * moved[key]

    return hook


def wrap_lora(model: nn.Module, lora: Mapping[str, Any] | None = None) -> nn.Module:
    """``model`` (a transformers sequence-classification model) as a peft model with LoRA on the
    roles ``lora['target']`` of every layer's attention (:func:`lora_settings`), the task head
    (every parameter outside the encoder) trainable as ``modules_to_save`` and nothing else
    trainable (checked). Returns the peft model; its ``lora_settings`` attribute holds the
    settings, ``lora_modules`` the wrapped modules' names."""
    from peft import LoraConfig, get_peft_model

    settings = lora_settings(lora)
    modules, held = lora_plan(model, settings["target"])
    classifier = resolve_classifier(model)
    transposed = adapter_for(model.config.model_type).transposed
    config = LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=modules,
        fan_in_fan_out=transposed,  # Conv1D: weight [in, out]
        bias="none",
        modules_to_save=list(classifier.classifier_modules),
        init_lora_weights=True,  # A Kaiming-uniform, B = 0: theta0 unchanged at step 0
    )
    peft_model = get_peft_model(model, config)
    inner = base_model(peft_model)
    # What trains: the LoRA factors and the copies of the task head's modules, nothing else.
    trainable = {n for n, p in inner.named_parameters() if p.requires_grad}
    expected = {f"{m}.{w}.{ADAPTER}.weight" for m in modules for w in ("lora_A", "lora_B")}
    expected |= {
        n.replace(f"{m}.", f"{m}.modules_to_save.{ADAPTER}.", 1)
        for n in classifier.classifier_parameters
        for m in classifier.classifier_modules
        if n.startswith(m + ".")
    }
    if trainable != expected:
        raise RuntimeError(
            f"LoRA on {model.config.model_type}: the trainable parameters are not the LoRA "
            f"factors and the task head {list(classifier.classifier_modules)}: unexpected "
            f"{sorted(trainable - expected)[:5]}, missing {sorted(expected - trainable)[:5]}"
        )
    masks = {}
    for name, rows in held.items():
        b = _factor(peft_model, name, "lora_B")
        mask = torch.ones_like(b, dtype=torch.float32)
        for r in rows:
            mask[r] = 0
        masks[b] = mask
    peft_model.lora_settings = settings
    peft_model.lora_modules = modules
    peft_model._headplast_target_holder = _Holder(masks) if masks else None
    return peft_model


def merge_lora(peft_model: nn.Module) -> nn.Module:
    """The transformers model with B @ A * scaling folded into every wrapped weight and the task
    head's trained copies in place of the originals (peft's ``merge_and_unload``): theta1 as a
    checkpoint of the model's own class, with theta0's parameter names."""
    return peft_model.merge_and_unload()


def lora_masks(model: nn.Module, held: Iterable[tuple[str, Projection, int]]) -> dict:
    """Parameter -> mask of its shape (0 on the entries to hold at 0, 1 elsewhere) that keeps the
    merged update of every ``(part, projection, unit)`` slice in ``held`` at 0: the unit's rows of
    B for a query/key/value part (output features), its columns of A for the output projection
    (input features). A slice of a module without LoRA needs nothing: its weight does not train."""
    masks: dict[nn.Parameter, torch.Tensor] = {}
    for part, projection, unit in held:
        which = "lora_A" if part == "output" else "lora_B"
        factor = _factor(model, projection.module, which)
        if factor is None:
            continue
        if factor not in masks:
            masks[factor] = torch.ones_like(factor, dtype=torch.float32)
        features = projection.features(unit)
        if which == "lora_B":  # [out, r]: rows are output features
            masks[factor][features] = 0
        else:  # [r, in]: columns are input features
            masks[factor][:, features] = 0
    return masks


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those that require gradients)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Inside: fp32 matmuls and convolutions in full precision on CUDA (TF32 off, as
    :func:`headplast.model.precision.enable_tf32` turns it on for training); the previous setting
    after. A no-op without CUDA."""
    if not torch.cuda.is_available():
        yield
        return
    matmul = torch.backends.cuda.matmul
    cudnn = torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(cudnn, "fp32_precision"):
        old = (matmul.fp32_precision, cudnn.fp32_precision)
        matmul.fp32_precision = cudnn.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision, cudnn.fp32_precision = old
    else:  # pragma: no cover - older torch
        old = (matmul.allow_tf32, cudnn.allow_tf32)
        matmul.allow_tf32 = cudnn.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32, cudnn.allow_tf32 = old
