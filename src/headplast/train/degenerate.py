"""Degenerate fine-tuning runs (docs/methods.md, "Across seeds"): theta1's validation accuracy
does not exceed the validation split's majority-class rate by ``analysis.min_accuracy_gain``.

Small-data tasks often produce such runs (Dodge et al. 2020; Mosbach et al. 2021): training never
leaves the majority class, and the run's "plasticity" and post-training importance describe a
classifier that learnt nothing. They are flagged in ``run_config.json``, warned about in the
finetune log, named in the report and left out of the across-seed summaries by default.
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


def split_degenerate(
    run_configs: Mapping[int, Mapping[str, Any]], keep_degenerate: bool = False
) -> tuple[list[int], list[int]]:
    """(seeds to summarise, degenerate seeds) in the given order. With ``keep_degenerate`` every
    seed is summarised; the degenerate ones are still listed. Records without the flag (written
    before it existed) count as healthy."""
    flagged = [s for s, rc in run_configs.items() if rc.get("degenerate")]
    kept = [s for s in run_configs if keep_degenerate or s not in flagged]
    return kept, flagged


def seeds_to_summarise(
    seeds: Sequence[int], run_configs: Mapping[int, Mapping[str, Any]], keep_degenerate: bool
) -> tuple[list[int], list[int]]:
    """:func:`split_degenerate` for an across-seed summary of ``seeds``: (kept, degenerate); every
    seed when there are no run configs. ``kept`` is empty when every seed is degenerate: the
    summaries then say so (:func:`no_usable_seed`) instead of stopping the run."""
    seeds = [int(s) for s in seeds]
    if not run_configs:
        return seeds, []
    return split_degenerate(run_configs, keep_degenerate)


def no_usable_seed(degenerate: Sequence[int]) -> str:
    """What a summary says when every one of its seeds is degenerate: a finding, in words."""
    return (
        f"no usable seed: every seed {list(degenerate)} is degenerate (theta1 does not beat the "
        "majority class; see their run_config.json). Nothing is summarised; set config key "
        "analysis.keep_degenerate: true to summarise them anyway"
    )
