"""Degenerate fine-tuning runs (docs/methods.md, "Across seeds"): theta1's validation accuracy
does not exceed the validation split's majority-class rate by ``analysis.min_accuracy_gain``.

Small-data tasks often produce such runs (Dodge et al. 2020; Mosbach et al. 2021): training never
leaves the majority class, and the run's "plasticity" and post-training importance describe a
classifier that learnt nothing. They are flagged in ``run_config.json`` (here, at training) and
warned about in the finetune log; the summaries read the flag and leave such seeds out by default
(:mod:`headplast.analysis.seeds`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

#: Default of ``analysis.min_accuracy_gain`` (see the config schema for the reason).
DEFAULT_MIN_ACCURACY_GAIN = 0.02


def majority_class_rate(labels: Sequence[int]) -> tuple[float, int]:
    """(share of the most frequent label, that label) of a split's labels."""
    if not labels:
        raise ValueError("no labels: the validation split is empty")
    label, count = Counter(int(v) for v in labels).most_common(1)[0]
    return count / len(labels), label


def degeneracy(
    theta1_accuracy: float, labels: Sequence[int], min_accuracy_gain: float
) -> dict[str, Any]:
    """The run record's fields: ``degenerate`` (theta1 accuracy - majority rate <= the gain),
    ``majority_class_rate``, ``majority_label``, ``accuracy_margin`` (theta1 accuracy minus the
    majority rate) and ``min_accuracy_gain``."""
    rate, label = majority_class_rate(labels)
    margin = float(theta1_accuracy) - rate
    return {
        "degenerate": bool(margin <= float(min_accuracy_gain)),
        "majority_class_rate": rate,
        "majority_label": label,
        "accuracy_margin": margin,
        "min_accuracy_gain": float(min_accuracy_gain),
    }


def warning_text(run_config: Mapping[str, Any]) -> str | None:
    """The finetune log's closing warning for a degenerate run, else None."""
    if not run_config.get("degenerate"):
        return None
    acc = run_config["validation"]["theta1"]["accuracy"]
    return (
        f"DEGENERATE RUN (seed {run_config.get('seed')}): theta1 validation accuracy {acc:.4f} "
        f"does not beat the majority-class rate {run_config['majority_class_rate']:.4f} by more "
        f"than analysis.min_accuracy_gain = {run_config['min_accuracy_gain']} (margin "
        f"{run_config['accuracy_margin']:+.4f}). The model did not learn the task; this seed is "
        "left out of the across-seed summaries unless analysis.keep_degenerate is true. Try "
        "another seed, a smaller learning rate or more epochs."
    )
