"""Figures of the across-seed summary: seed-mean heatmaps, rank stability, seed-mean scatters."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import (
    fig_heatmaps,
    fig_message,
    fig_rank_stability,
    fig_seed_mean_scatter,
)
from headplast.analysis.summary import read_heads_mean
from headplast.io import read_json

sm = snakemake
measures = ("I_pre", "I_post", "G", "Urel", "A_js", "C_rel")
outputs = ("heatmaps", "stability_fig", "scatter_I_vs_U", "scatter_I_vs_G")
pair_stats = read_json(sm.input.pair_stats)
if reason := pair_stats.get("no_usable_seed"):  # every seed degenerate: each figure says so
    for key in outputs:
        fig_message(getattr(sm.output, key), "Across seeds", reason)
else:
    mean = read_heads_mean(sm.input.heads_mean, measures)
    task = dict(sm.wildcards.items()).get("task")
    n_seeds = int(mean["n_seeds"].max())
    left_out = pair_stats.get("degenerate_excluded", [])
    note = f"; degenerate seed(s) {', '.join(map(str, left_out))} left out" if left_out else ""
    suffix = f" ({task}, {n_seeds} seeds{note})" if task else f" ({n_seeds} seeds{note})"
    fig_heatmaps(
        mean, [f"{m}_mean" for m in measures], sm.output.heatmaps, title=f"Seed means{suffix}"
    )
    fig_rank_stability(
        read_json(sm.input.stability),
        sm.output.stability_fig,
        title=f"Seed-to-seed stability of head rankings{suffix}",
    )
    for y, key in (("Urel", "scatter_I_vs_U"), ("G", "scatter_I_vs_G")):
        title = f"{y} vs I_pre, seed means{suffix}"
        fig_seed_mean_scatter(mean, "I_pre", y, getattr(sm.output, key), title=title)
