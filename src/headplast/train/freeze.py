"""Fine-tuning with chosen heads held fixed: the freeze intervention (docs/methods.md, "Freeze
interventions").

Which heads: the ``fraction`` of all L*H heads with the largest score (:func:`heads_by_score`), or a
seeded random draw that is the same for every training seed (:func:`random_heads`).

Held fixed means: each frozen head's rows of the query, key and value projections (weights and
biases, rows h*d:(h+1)*d) and its columns of the attention output projection (columns h*d:(h+1)*d)
end bit for bit equal to theta0's. With grouped-query attention a key/value head serves a group of
query heads: a frozen query head's query rows and output columns are held, and its group's key and
value rows only when every query head of the group is frozen (docs/methods.md, "Grouped-query
attention"); without it each head is its own group, so the rule is the one above. Two things would
move them otherwise: their gradients, and AdamW's decoupled weight decay, which shrinks every entry
of a parameter whatever its gradient. :class:`HeadFreezer` multiplies those gradient entries by 0
(so neither the update nor the gradient-norm clipping sees them; Adam's moments of those entries
stay 0) and, after every optimizer step, writes theta0's values back into the slices (which undoes
the decay). Every other entry, the same projections' other heads included, trains as before. The
adapter table (:mod:`headplast.model.adapters`) names the projections and where each head's slice
lies (fused, transposed), as for the weight update U.

Under LoRA (``train.method: lora``, :mod:`headplast.train.lora`) the projections' weights do not
train; a head's slice of the merged update B @ A * scaling is held at 0, so its merged slices equal
theta0's bit for bit, by the same mechanics applied to the factors: B's rows of the held
query/key/value output features and A's columns of the held output-projection input features are
set to 0 when training starts, their gradients multiplied by 0 and 0 written back after every
step. The rule of which slices are held is the same (:func:`held_slices`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from headplast.model.adapters import ModelLayout, Projection, resolve_layout
from headplast.train.lora import base_model as lora_base_model
from headplast.train.lora import is_lora, lora_masks

Head = tuple[int, int]


def n_frozen(n_heads_total: int, fraction: float) -> int:
    """How many heads a ``fraction`` of ``n_heads_total`` freezes: round half up, at least 1."""
    if not 0 < float(fraction) <= 1:
        raise ValueError(f"interventions.fraction must be in (0, 1], got {fraction}")
    return max(1, math.floor(float(fraction) * n_heads_total + 0.5))


def heads_by_score(scores: pd.DataFrame, score: str, fraction: float) -> list[Head]:
    """The :func:`n_frozen` heads with the largest ``score`` (a column of a per-head frame with
    ``layer, head``), largest first; ties broken by (layer, head), the smaller first."""
    missing = [c for c in ("layer", "head", score) if c not in scores]
    if missing:
        raise ValueError(f"the per-head scores lack the columns {missing}")
    values = scores[score].to_numpy(float)
    if not np.isfinite(values).all():
        raise ValueError(f"score {score} is not finite for every head")
    df = scores.assign(_v=values).sort_values(
        ["_v", "layer", "head"], ascending=[False, True, True], kind="stable"
    )
    k = n_frozen(len(df), fraction)
    return [(int(la), int(h)) for la, h in zip(df["layer"][:k], df["head"][:k], strict=True)]


def random_heads(n_layers: int, n_heads: int, fraction: float, seed: int, draw: int) -> list[Head]:
    """Random draw ``draw`` of :func:`n_frozen` heads from ``numpy.random.default_rng([seed,
    draw])``: the same heads for every training seed, other heads for another draw; sorted."""
    k = n_frozen(n_layers * n_heads, fraction)
    idx = np.random.default_rng([int(seed), int(draw)]).permutation(n_layers * n_heads)[:k]
    return sorted((int(i) // n_heads, int(i) % n_heads) for i in idx)


def held_slices(layout: ModelLayout, heads: Iterable[Head]) -> list[tuple[str, Projection, int]]:
    """The ``(part, projection, unit)`` slices that freezing ``heads`` holds: each frozen head's
    query rows and output-projection columns, and the key/value rows of every key/value group
    whose query heads are all frozen (docs/methods.md, "Grouped-query attention")."""
    held: list[tuple[str, Projection, int]] = []
    frozen: set[Head] = set()
    for layer, head in heads:
        if not (0 <= layer < layout.n_layers and 0 <= head < layout.n_heads):
            raise ValueError(
                f"no head ({layer}, {head}) in a {layout.n_layers}x{layout.n_heads} model"
            )
        if (layer, head) in frozen:
            continue
        frozen.add((layer, head))
        for part in ("query", "output"):
            held.append((part, layout.projections[layer][part], head))
    for layer in sorted({la for la, _ in frozen}):
        for group in range(layout.n_kv_heads):
            members = [h for h in range(layout.n_heads) if layout.kv_group(h) == group]
            if all((layer, h) in frozen for h in members):
                for part in ("key", "value"):
                    held.append((part, layout.projections[layer][part], group))
    return held


def head_masks(model: nn.Module, heads: Iterable[Head]) -> dict[str, torch.Tensor]:
    """Parameter name (as ``model.named_parameters()`` names it) -> mask of its shape, 0 on the
    entries that freezing ``heads`` holds and 1 elsewhere, for every parameter that holds such
    an entry (:func:`held_slices`). Full fine-tuning: the slices themselves (weights, and the
    query/key/value biases). A LoRA model (:mod:`headplast.train.lora`): the LoRA factors whose
    zero entries keep the slices' merged update at 0 (rows of B, columns of A); the weights
    themselves do not train."""
    held = held_slices(resolve_layout(lora_base_model(model)), heads)
    params = dict(model.named_parameters())
    if is_lora(model):
        names = {id(p): n for n, p in params.items()}
        return {names[id(p)]: m for p, m in lora_masks(model, held).items()}
    masks: dict[str, torch.Tensor] = {}
    for _, projection, unit in held:
        weight = f"{projection.module}.weight"
        if weight not in masks:
            masks[weight] = torch.ones_like(params[weight], dtype=torch.float32)
        masks[weight][projection.weight_index(unit)] = 0
        bias = f"{projection.module}.bias"
        if projection.bias_sliced and bias in params:
            if bias not in masks:
                masks[bias] = torch.ones_like(params[bias], dtype=torch.float32)
            masks[bias][projection.features(unit)] = 0
    return masks


class HeadFreezer:
    """Holds ``heads`` of ``model`` fixed during training (see the module docs): gradient hooks
    zero their entries; :meth:`restore` (after every optimizer step) writes theta0's values back.
    :meth:`remove` takes the hooks off. ``frozen`` lists the heads. On a LoRA model the entries
    are those of the LoRA factors (:func:`head_masks`), set to 0 here and held at 0."""

    def __init__(self, model: nn.Module, heads: Sequence[Head]) -> None:
        self.frozen = sorted({(int(la), int(h)) for la, h in heads})
        params = dict(model.named_parameters())
        self._masks = head_masks(model, self.frozen)
        self._params = {name: params[name] for name in self._masks}
        for name, p in self._params.items():
            self._masks[name] = self._masks[name].to(p.device)
        if is_lora(model):  # the held factor entries start at 0 (B's already are, A's are not)
            with torch.no_grad():
                for name, p in self._params.items():
                    p.mul_(self._masks[name].to(p.dtype))
        self._theta0 = {name: p.detach().clone() for name, p in self._params.items()}
        self._hooks = []
        for name, p in self._params.items():
            m = self._masks[name]
            self._hooks.append(p.register_hook(lambda g, m=m: g * m.to(g.dtype)))

    @torch.no_grad()
    def restore(self) -> None:
        """Write theta0's values back into every frozen slice (bit for bit)."""
        for name, p in self._params.items():
            keep = self._masks[name].bool()
            p.copy_(torch.where(keep, p, self._theta0[name].to(p.device)))

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []


def freeze_callback(heads: Sequence[Head]) -> Any:
    """A Trainer callback that freezes ``heads`` of the model being trained: the hooks go on at
    the start of training, the slices are restored at the end of every step (before any
    evaluation or checkpoint of that step) and once more at the end, and the hooks come off."""
    from transformers import TrainerCallback

    class FreezeHeads(TrainerCallback):
        freezer: HeadFreezer | None = None

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.freezer = HeadFreezer(model, heads)

        def on_step_end(self, args, state, control, **kw):
            self.freezer.restore()

        def on_train_end(self, args, state, control, **kw):
            self.freezer.restore()
            self.freezer.remove()

    return FreezeHeads()
