"""The selection rows: the examples that choose theta1 (and the probe's early-stopping epoch),
kept apart from the examples every measure and every reported accuracy is computed on.

``selection.split: train`` (the default) draws ``round(fraction * N)`` rows of the train split,
at most ``max_examples``, with its own ``seed``: the same rows for every training seed, start and
freeze run of a task (drawn once per task, written to ``results/data/{task}/selection.json``).
Those rows leave the training data: fine-tuning trains on the others (then takes its
``max_train_samples`` subsample), evaluates on the selection rows during training and keeps the
checkpoint with the best selection accuracy; the probe fits on the others and stops early on the
same rows. The validation split is then touched only by the measuring rules, the degenerate check
and the reported accuracies.

``selection.split: validation`` (for a task too small to spare train rows) selects on the whole
validation split, as fine-tuning did before: every measure on that split then reads examples that
chose theta1, and the record says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from headplast.io import ArtifactError, read_json

#: ``selection:`` keys and their defaults (the config schema fills the same values).
SELECTION_DEFAULTS: dict[str, Any] = {
    "split": "train",
    "fraction": 0.1,
    "max_examples": 2000,
    "seed": 0,
}

SPLITS = ("train", "validation")


def selection_size(n_train: int, fraction: float, max_examples: int) -> int:
    """Rows drawn from a train split of ``n_train``: round(fraction * n_train), at most
    ``max_examples``; at least one row is drawn and at least one is left to train on."""
    if not 0 < float(fraction) < 1:
        raise ValueError(f"config key `selection.fraction` is {fraction}; it must be in (0, 1)")
    if int(max_examples) < 1:
        raise ValueError(f"config key `selection.max_examples` is {max_examples}; it must be >= 1")
    if n_train < 2:
        raise ValueError(
            f"the train split has {n_train} example(s): too few to hold selection rows out of "
            "it; set `selection.split: validation` for this task"
        )
    return min(max(1, round(float(fraction) * n_train)), int(max_examples), n_train - 1)


def draw_selection(n_train: int, fraction: float, max_examples: int, seed: int) -> list[int]:
    """Sorted indices of the selection rows in a train split of ``n_train`` rows, drawn
    uniformly without replacement with ``random.Random(seed)`` (:func:`selection_size` rows)."""
    k = selection_size(n_train, fraction, max_examples)
    return sorted(random.Random(int(seed)).sample(range(n_train), k))


def indices_sha256(indices: Sequence[int]) -> str:
    """A fingerprint of a list of row indices (the run record carries it)."""
    return hashlib.sha256(json.dumps([int(i) for i in indices]).encode()).hexdigest()


def selection_record(
    spec: Mapping[str, Any], train_labels: Sequence[int], n_validation: int
) -> dict[str, Any]:
    """``selection.json``: the settings, the split selected on, the row ``indices`` into that
    split, their number, label counts and fingerprint, and both splits' sizes."""
    spec = {**SELECTION_DEFAULTS, **dict(spec)}
    unknown = sorted(set(spec) - set(SELECTION_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown `selection` key(s) {unknown}; known: {sorted(SELECTION_DEFAULTS)}"
        )
    if spec["split"] not in SPLITS:
        raise ValueError(
            f"config key `selection.split` is {spec['split']!r}; use train or validation"
        )
    n_train = len(train_labels)
    if spec["split"] == "train":
        indices = draw_selection(n_train, spec["fraction"], spec["max_examples"], spec["seed"])
        labels = Counter(int(train_labels[i]) for i in indices)
    else:
        indices, labels = list(range(int(n_validation))), Counter()
    return {
        "settings": spec,
        "split": spec["split"],
        "indices": indices,
        "n_examples": len(indices),
        "indices_sha256": indices_sha256(indices),
        "label_counts": {str(k): v for k, v in sorted(labels.items())},
        "n_train_split": n_train,
        "n_validation_split": int(n_validation),
    }


def read_selection(
    path: str | os.PathLike, n_train: int | None = None, n_validation: int | None = None
) -> dict[str, Any]:
    """``selection.json``, checked against the sizes of the splits it indexes (when given)."""
    rec = read_json(path)
    for key in ("split", "indices", "n_train_split", "n_validation_split"):
        if key not in rec:
            raise ArtifactError(f"{path}: not a selection record (no {key!r}); delete it and rerun")
    for name, n in (("train", n_train), ("validation", n_validation)):
        if n is not None and rec[f"n_{name}_split"] != n:
            raise ArtifactError(
                f"{path} was drawn for a {name} split of {rec[f'n_{name}_split']} rows, this one "
                f"has {n}; delete it and rerun (the data changed)"
            )
    return rec


def split_rows(
    train_rows: Sequence[Any], validation_rows: Sequence[Any], selection: Mapping[str, Any] | None
) -> tuple[list[int], list[Any], list[Any]]:
    """(indices into the train split of the rows to train on, those rows, the selection rows).

    ``selection`` None or ``split: validation``: every train row, and the validation rows as the
    selection rows. ``split: train``: the rows outside ``indices``, and the rows at them."""
    if selection is None or selection["split"] == "validation":
        return list(range(len(train_rows))), list(train_rows), list(validation_rows)
    chosen = set(int(i) for i in selection["indices"])
    if not chosen or max(chosen) >= len(train_rows) or min(chosen) < 0:
        raise ArtifactError(
            f"selection indices do not fit a train split of {len(train_rows)} rows; delete "
            "results/data/<task>/selection.json and rerun"
        )
    keep = [i for i in range(len(train_rows)) if i not in chosen]
    return keep, [train_rows[i] for i in keep], [train_rows[i] for i in sorted(chosen)]
