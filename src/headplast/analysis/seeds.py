"""Which seeds an across-seed summary rests on: the healthy ones, by the ``degenerate`` flag that
training writes into each seed's ``run_config.json`` (:mod:`headplast.train.degenerate`,
docs/methods.md, "Across seeds"). The summaries (:mod:`headplast.analysis.summary`, the pruning
and freeze summaries) read the flag; training only writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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
