"""Pruning curves (Michel et al. 2019): heads removed cumulatively in the order of a score.

An order is a permutation of all L*H heads, the first to be removed first. Score orders remove the
heads with the smallest score first (the least important by that score; ties by (layer, head));
the reverse order of ``I_post`` removes the most important heads first (a worst case); random
orders are uniform permutations drawn from one seeded generator. At step j the first n_j heads of
the order are removed (gate xi = 0, the same gates as the ablation sweep), n_j = round(j * f * N)
for a step fraction f of all N heads, from 0 up to N. Each step gives the mean cross-entropy and
the accuracy on the eval subset. The area under the accuracy curve (trapezoid over the removed
fraction n_j / N in [0, 1]) ranks the orders: a score that predicts what can be removed keeps the
accuracy high for longer and has the larger area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from headplast.data.batching import model_device, split_batch
from headplast.measure.checks import check_finite
from headplast.model.adapters import resolve_layout
from headplast.model.gating import head_gates
from headplast.model.precision import autocast_context

#: The scores whose orders are pruned (docs/methods.md, "Pruning curves"): smallest value
#: removed first.
SCORES: tuple[str, ...] = ("I_pre", "I_post", "G", "Ppred", "U", "Urel")
#: The score whose reverse order (largest first) is also pruned.
REVERSE_SCORE = "I_post"

Head = tuple[int, int]


@dataclass(frozen=True)
class Order:
    """One removal order: ``name`` (the score, ``I_post_reverse`` or ``random_<i>``), ``kind``
    (``score``, ``reverse`` or ``random``) and the heads, first removed first."""

    name: str
    kind: str
    heads: tuple[Head, ...]


def step_counts(n_heads: int, step_fraction: float) -> list[int]:
    """Numbers of heads removed at each step: 0, round(f*N), round(2f*N), ..., N (no repeats)."""
    if not 0 < step_fraction <= 1:
        raise ValueError(
            f"config key `pruning.step_fraction` is {step_fraction}; it must be in (0, 1]"
        )
    # j * f < 1 for every j below ceil(1 / f), so these counts stay below or at N; N itself (the
    # step that would reach or pass it) is added once
    counts = {round(j * step_fraction * n_heads) for j in range(math.ceil(1 / step_fraction))}
    return sorted(counts | {0, n_heads})


def removal_orders(
    scores: pd.DataFrame,
    n_random: int,
    seed: int,
    score_names: Sequence[str] = SCORES,
    reverse: str | None = REVERSE_SCORE,
) -> list[Order]:
    """The orders of a per-head frame with ``layer, head`` and the ``score_names`` columns.

    Score orders ascending (ties by layer, then head), the reverse of ``reverse`` descending (ties
    likewise), then ``n_random`` permutations from ``numpy.random.default_rng(seed)``.
    """
    missing = [c for c in (*score_names, *([reverse] if reverse else [])) if c not in scores]
    if missing:
        raise ValueError(f"the per-head scores lack the columns {missing}")
    df = scores.sort_values(["layer", "head"])  # read by position below
    heads = list(zip(df["layer"].astype(int), df["head"].astype(int), strict=True))
    if len(set(heads)) != len(heads):
        raise ValueError("the per-head scores name a (layer, head) twice")
    orders = []
    for name in score_names:
        idx = np.argsort(df[name].to_numpy(float), kind="stable")
        orders.append(Order(name, "score", tuple(heads[i] for i in idx)))
    if reverse:
        idx = np.argsort(-df[reverse].to_numpy(float), kind="stable")
        orders.append(Order(f"{reverse}_reverse", "reverse", tuple(heads[i] for i in idx)))
    rng = np.random.default_rng(seed)
    for i in range(n_random):
        idx = rng.permutation(len(heads))
        orders.append(Order(f"random_{i}", "random", tuple(heads[j] for j in idx)))
    return orders


@torch.no_grad()
def removal_losses(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    removed_sets: Sequence[frozenset[Head]],
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy [S] and accuracy [S] over all examples of ``batches`` with the heads of
    each set removed (gate 0), all other gates 1.

    ``sweep_tokens`` bounds the padded tokens of one pass: k = sweep_tokens // (B*T) sets run
    together as k stacked copies of a batch with different per-example gates (None: one at a
    time). Raises :class:`~headplast.measure.checks.NonFiniteError` on a non-finite loss.
    """
    layout = resolve_layout(model)
    L, H = layout.n_layers, layout.n_heads
    device = model_device(model)
    model.eval()
    S = len(removed_sets)
    gates = torch.ones(S, L, H, device=device)
    for s, removed in enumerate(removed_sets):
        for layer, head in removed:
            gates[s, layer, head] = 0
    loss = torch.zeros(S, dtype=torch.float64, device=device)
    hits = torch.zeros(S, dtype=torch.float64, device=device)
    bad = torch.zeros(len(batches), S, dtype=torch.bool, device=device)
    n = 0
    bar = tqdm(total=len(batches) * S, desc="pruning (set x batch)", disable=not progress)
    with head_gates(model, layout) as ctrl, autocast_context(device, precision):
        for bi, batch in enumerate(batches):
            inputs, labels = split_batch(batch, device)
            B, T = inputs["input_ids"].shape
            k_max = 1 if not sweep_tokens else max(1, min(S, sweep_tokens // (B * T)))
            for start in range(0, S, k_max):
                k = min(k_max, S - start)
                stacked = {
                    name: t.repeat(k, *([1] * (t.dim() - 1))) if k > 1 else t
                    for name, t in inputs.items()
                }
                ctrl.set(gates[start : start + k].repeat_interleave(B, dim=0))
                logits = model(**stacked).logits.float()
                ce = F.cross_entropy(logits, labels.repeat(k), reduction="none").view(k, B)
                ok = (logits.argmax(-1) == labels.repeat(k)).view(k, B)
                loss[start : start + k] += ce.sum(1)
                hits[start : start + k] += ok.sum(1)
                bad[bi, start : start + k] = ~torch.isfinite(ce).all(1)
                ctrl.set(None)
                bar.update(k)
            n += B
    bar.close()
    check_finite(bad, "loss with heads removed")
    return (loss / n).cpu().numpy(), (hits / n).cpu().numpy()


def pruning_curves(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    orders: Sequence[Order],
    step_fraction: float,
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> list[dict]:
    """One row per (order, step): ``order, kind, step, n_removed, fraction, removed`` (the
    [layer, head] pairs removed so far, in removal order), ``loss`` and ``acc`` on ``batches``.

    Every distinct set of removed heads is evaluated once (step 0 and the last step are shared
    by all orders).
    """
    layout = resolve_layout(model)
    N = layout.n_layers * layout.n_heads
    for o in orders:
        if sorted(o.heads) != [
            (la, h) for la in range(layout.n_layers) for h in range(layout.n_heads)
        ]:
            raise ValueError(f"order {o.name} is not a permutation of the model's {N} heads")
    counts = step_counts(N, step_fraction)
    index: dict[frozenset[Head], int] = {}
    for o in orders:
        for c in counts:
            index.setdefault(frozenset(o.heads[:c]), len(index))
    sets = list(index)  # in insertion order: sets[index[s]] is s
    loss, acc = removal_losses(model, batches, sets, precision, sweep_tokens, progress)
    rows = []
    for o in orders:
        for j, c in enumerate(counts):
            s = index[frozenset(o.heads[:c])]
            rows.append(
                {
                    "order": o.name,
                    "kind": o.kind,
                    "step": j,
                    "n_removed": c,
                    "fraction": c / N,
                    "removed": [list(h) for h in o.heads[:c]],
                    "loss": float(loss[s]),
                    "acc": float(acc[s]),
                }
            )
    return rows
