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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from headplast.model.adapters import Projection, resolve_layout

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


def head_masks(model: nn.Module, heads: Iterable[Head]) -> dict[str, torch.Tensor]:
    """Parameter name -> mask of its shape, 0 on the slices that freezing ``heads`` holds and 1
    elsewhere, for every parameter that holds such a slice: each frozen head's query rows
    (weights and biases) and output-projection columns, and the key/value rows (weights and
    biases) of every key/value group whose query heads are all frozen."""
    layout = resolve_layout(model)
    params = dict(model.named_parameters())
    masks: dict[str, torch.Tensor] = {}

    def hold(projection: Projection, unit: int) -> None:
        weight = f"{projection.module}.weight"
        if weight not in masks:
            masks[weight] = torch.ones_like(params[weight], dtype=torch.float32)
        masks[weight][projection.weight_index(unit)] = 0
        bias = f"{projection.module}.bias"
        if projection.bias_sliced and bias in params:
            if bias not in masks:
                masks[bias] = torch.ones_like(params[bias], dtype=torch.float32)
            masks[bias][projection.features(unit)] = 0

    frozen: set[Head] = set()
    for layer, head in heads:
        if not (0 <= layer < layout.n_layers and 0 <= head < layout.n_heads):
            raise ValueError(
                f"no head ({layer}, {head}) in a {layout.n_layers}x{layout.n_heads} model"
            )
        frozen.add((layer, head))
        hold(layout.projections[layer]["query"], head)
        hold(layout.projections[layer]["output"], head)
    for layer in sorted({la for la, _ in frozen}):
        for group in range(layout.n_kv_heads):
            members = [h for h in range(layout.n_heads) if layout.kv_group(h) == group]
            if all((layer, h) in frozen for h in members):
                hold(layout.projections[layer]["key"], group)
                hold(layout.projections[layer]["value"], group)
    return masks


class HeadFreezer:
    """Holds ``heads`` of ``model`` fixed during training (see the module docs): gradient hooks
    zero their entries; :meth:`restore` (after every optimizer step) writes theta0's values back.
    :meth:`remove` takes the hooks off. ``frozen`` lists the heads."""

    def __init__(self, model: nn.Module, heads: Sequence[Head]) -> None:
        self.frozen = sorted({(int(la), int(h)) for la, h in heads})
        params = dict(model.named_parameters())
        self._masks = head_masks(model, self.frozen)
        self._params = {name: params[name] for name in self._masks}
        self._theta0 = {name: p.detach().clone() for name, p in self._params.items()}
        self._hooks = []
        for name, p in self._params.items():
            m = self._masks[name].to(p.device)
            self._masks[name] = m
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
