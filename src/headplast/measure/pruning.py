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

Cross-fitted curves (:func:`crossfit_curves`, docs/methods.md "Pruning curves"): the eval subset
is split into two halves (:func:`headplast.measure.crossfit.crossfit_halves`); the example-based
orders are fitted on one half and scored on the other, both ways, and every order's cross-fitted
curve is the mean of its two half curves. The in-sample curves (orders fitted on, and scored on,
the whole subset) come from the same half evaluations, combined by example count.
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

from headplast.analysis.pruning_auc import CROSSFIT, IN_SAMPLE
from headplast.data.batching import inputs_and_labels_on, model_device
from headplast.measure.checks import check_finite
from headplast.measure.crossfit import PerExampleScores, crossfit_halves, with_scores
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
def removal_sums(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    removed_sets: Sequence[frozenset[Head]],
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Summed cross-entropy [S] and number of correct predictions [S] over all examples of
    ``batches`` with the heads of each set removed (gate 0), all other gates 1, and the number of
    examples n (the means are sums / n; sums of two example sets add up exactly).

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
            inputs, labels = inputs_and_labels_on(batch, device)
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
    return loss.cpu().numpy(), hits.cpu().numpy(), n


def removal_losses(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    removed_sets: Sequence[frozenset[Head]],
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy [S] and accuracy [S] over all examples of ``batches`` with the heads of
    each set removed (gate 0), all other gates 1 (:func:`removal_sums` divided by n)."""
    loss, hits, n = removal_sums(model, batches, removed_sets, precision, sweep_tokens, progress)
    return loss / n, hits / n


def _check_orders(orders: Sequence[Order], n_layers: int, n_heads: int) -> None:
    """Every order is a permutation of the model's L x H heads."""
    every = [(la, h) for la in range(n_layers) for h in range(n_heads)]
    for o in orders:
        if sorted(o.heads) != every:
            raise ValueError(
                f"order {o.name} is not a permutation of the model's {len(every)} heads"
            )


def _distinct_sets(orders: Sequence[Order], counts: Sequence[int]) -> dict[frozenset[Head], int]:
    """Each distinct set of removed heads of ``orders`` at the step ``counts`` -> its position in
    the evaluation list (in first-seen order: ``list(result)[result[s]] is s``)."""
    index: dict[frozenset[Head], int] = {}
    for o in orders:
        for c in counts:
            index.setdefault(frozenset(o.heads[:c]), len(index))
    return index


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
    _check_orders(orders, layout.n_layers, layout.n_heads)
    counts = step_counts(N, step_fraction)
    index = _distinct_sets(orders, counts)
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


# --------------------------------------------------------------------------- cross-fitting


def subset_labels(
    batches: Sequence[dict[str, torch.Tensor]], positions: Sequence[int] | np.ndarray
) -> np.ndarray:
    """The labels [n] in eval-subset order: ``positions[j]`` is the eval-subset position of the
    j-th example the batches hold (:func:`headplast.measure.stage.prepare_measure`)."""
    labels = np.concatenate([b["labels"].cpu().numpy() for b in batches])
    positions = np.asarray(positions, dtype=np.int64)
    if sorted(positions.tolist()) != list(range(len(labels))):
        raise ValueError(
            f"positions must be a permutation of the {len(labels)} examples of the batches"
        )
    out = np.empty_like(labels)
    out[positions] = labels
    return out


def batch_rows(
    batches: Sequence[dict[str, torch.Tensor]],
    positions: Sequence[int] | np.ndarray,
    keep: Sequence[int] | np.ndarray,
) -> list[dict[str, torch.Tensor]]:
    """The batches restricted to the examples whose eval-subset position is in ``keep``
    (``positions`` as for :func:`subset_labels`). Each kept example keeps its padded row, so it
    is evaluated on the same inputs as in the whole batch; batches left empty are dropped."""
    positions = np.asarray(positions, dtype=np.int64)
    total = sum(len(b["labels"]) for b in batches)
    if positions.shape != (total,):
        raise ValueError(f"{positions.size} positions for the {total} examples of the batches")
    wanted = np.isin(positions, np.asarray(keep, dtype=np.int64))
    out, start = [], 0
    for b in batches:
        rows = torch.from_numpy(np.flatnonzero(wanted[start : start + len(b["labels"])]))
        start += len(b["labels"])
        if len(rows):
            out.append({k: v[rows] for k, v in b.items()})
    return out


def _same_names(lists: Sequence[Sequence[Order]]) -> None:
    """The order lists name the same orders, of the same kinds, in the same sequence."""
    names = [[(o.name, o.kind) for o in orders] for orders in lists]
    if any(n != names[0] for n in names[1:]):
        raise ValueError(
            f"the halves' and the in-sample orders differ: {[[n for n, _ in x] for x in names]}"
        )


def crossfit_curves(
    model: nn.Module,
    half_batches: Sequence[Sequence[dict[str, torch.Tensor]]],
    half_orders: Sequence[Sequence[Order]],
    in_sample: Sequence[Order],
    step_fraction: float,
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> list[dict]:
    """Cross-fitted and in-sample pruning-curve rows from one evaluation of each half.

    ``half_batches`` holds the batches of half a and of half b; ``half_orders[h]`` the orders
    whose curves are scored on half h (the example-based ones fitted on the other half; the
    others the same as in ``in_sample``); ``in_sample`` the orders fitted on the whole subset.
    The three lists name the same orders in the same sequence. Each half's batches are evaluated
    once, with every distinct removed set of its orders and of the in-sample orders.

    Rows: those of :func:`pruning_curves` plus ``fit``, ``n_halves`` (the halves' example
    counts), ``loss_halves``, ``acc_halves`` (the curve on half a, on half b) and
    ``removed_halves`` (the heads removed on half a, on half b). First the ``crossfit`` rows:
    ``loss`` and ``acc`` the mean of the two half curves, ``removed`` the heads removed on half
    a. Then the ``in_sample`` rows: the whole subset (the two halves' sums over examples added,
    divided by all examples), with the same set removed on both halves.
    """
    if len(half_batches) != 2 or len(half_orders) != 2:
        raise ValueError("cross-fitting takes exactly two halves")
    _same_names([*half_orders, in_sample])
    layout = resolve_layout(model)
    N = layout.n_layers * layout.n_heads
    _check_orders([*half_orders[0], *half_orders[1], *in_sample], layout.n_layers, layout.n_heads)
    counts = step_counts(N, step_fraction)
    index, sums = [], []
    for batches, orders in zip(half_batches, half_orders, strict=True):
        idx = _distinct_sets([*orders, *in_sample], counts)
        index.append(idx)
        sums.append(removal_sums(model, batches, list(idx), precision, sweep_tokens, progress))
    n_halves = [sums[0][2], sums[1][2]]
    if min(n_halves) == 0:
        raise ValueError(f"a half holds no examples ({n_halves})")

    def half(h: int, removed: tuple[Head, ...]) -> tuple[float, float, float, float]:
        """(loss sum, correct count, mean loss, accuracy) of half h with ``removed`` gone."""
        s = index[h][frozenset(removed)]
        loss, hits, n = sums[h]
        return float(loss[s]), float(hits[s]), float(loss[s] / n), float(hits[s] / n)

    rows = []
    plans = (
        (CROSSFIT, list(zip(*half_orders, strict=True))),
        (IN_SAMPLE, [(o, o) for o in in_sample]),
    )
    for fit, pairs in plans:  # (order scored on half a, the same order scored on half b)
        for oa, ob in pairs:
            for j, c in enumerate(counts):
                a, b = half(0, oa.heads[:c]), half(1, ob.heads[:c])
                if fit == CROSSFIT:
                    loss, acc = (a[2] + b[2]) / 2, (a[3] + b[3]) / 2
                else:
                    loss = (a[0] + b[0]) / sum(n_halves)
                    acc = (a[1] + b[1]) / sum(n_halves)
                rows.append(
                    {
                        "order": oa.name,
                        "kind": oa.kind,
                        "fit": fit,
                        "step": j,
                        "n_removed": c,
                        "fraction": c / N,
                        "removed": [list(h) for h in oa.heads[:c]],
                        "loss": loss,
                        "acc": acc,
                        "n_halves": n_halves,
                        "loss_halves": [a[2], b[2]],
                        "acc_halves": [a[3], b[3]],
                        "removed_halves": [
                            [list(h) for h in oa.heads[:c]],
                            [list(h) for h in ob.heads[:c]],
                        ],
                    }
                )
    return rows


def evaluation_count(
    half_orders: Sequence[Sequence[Order]],
    in_sample: Sequence[Order],
    n_halves: Sequence[int],
    n_heads: int,
    step_fraction: float,
) -> dict[str, int]:
    """Set x example evaluations (forward passes of one example with one removed set) of
    :func:`crossfit_curves` (``crossfit``) and of :func:`pruning_curves` with the in-sample
    orders on the whole subset alone (``in_sample_only``, the cost before cross-fitting)."""
    counts = step_counts(n_heads, step_fraction)
    after = sum(
        len(_distinct_sets([*orders, *in_sample], counts)) * n
        for orders, n in zip(half_orders, n_halves, strict=True)
    )
    before = len(_distinct_sets(in_sample, counts)) * sum(n_halves)
    return {"crossfit": after, "in_sample_only": before}


def crossfit_pruning(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    positions: Sequence[int] | np.ndarray,
    heads: pd.DataFrame,
    per_example: PerExampleScores,
    *,
    n_random: int,
    seed: int,
    step_fraction: float,
    precision: str = "fp32",
    sweep_tokens: int | None = None,
    progress: bool = False,
) -> tuple[list[dict], dict]:
    """The rows of :func:`crossfit_curves` for the eval subset held by ``batches`` (``positions``
    as for :func:`subset_labels`), and what it cost.

    The halves are :func:`~headplast.measure.crossfit.crossfit_halves` of the labels with
    ``seed``; the in-sample orders are :func:`removal_orders` of ``heads`` (per-head frame with
    the scores of :data:`SCORES`); the orders scored on half a are those of ``heads`` with the
    example-based scores taken over half b's examples of ``per_example`` (eval-subset order), and
    the other way round; U, Urel and the random orders are the same everywhere. The cost is
    ``halves`` (the two halves' example counts) and ``set_x_example``
    (:func:`evaluation_count`).
    """
    labels = subset_labels(batches, positions)
    if per_example.n_examples != len(labels):
        raise ValueError(
            f"the per-example values hold {per_example.n_examples} examples, the batches "
            f"{len(labels)}; they must come from the same eval subset"
        )
    halves = crossfit_halves(labels, seed)
    in_sample = removal_orders(heads, n_random, seed)
    half_orders = [  # scored on half a: fitted on half b, and the other way round
        removal_orders(with_scores(heads, per_example.scores(fit_on)), n_random, seed)
        for fit_on in halves[::-1]
    ]
    rows = crossfit_curves(
        model,
        [batch_rows(batches, positions, idx) for idx in halves],
        half_orders,
        in_sample,
        step_fraction,
        precision=precision,
        sweep_tokens=sweep_tokens,
        progress=progress,
    )
    n_halves = [len(idx) for idx in halves]
    cost = evaluation_count(half_orders, in_sample, n_halves, len(heads), step_fraction)
    return rows, {"halves": n_halves, "set_x_example": cost}
