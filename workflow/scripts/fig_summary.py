"""Figures of the across-seed summary: seed-mean heatmaps, rank stability, seed-mean scatters."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import (
    fig_heatmaps,
    fig_rank_stability,
    fig_seed_mean_scatter,
)
from headplast.analysis.summary import read_heads_mean
from headplast.io import read_json

sm = snakemake
measures = ("I_pre", "I_post", "G", "Urel", "A_js", "C_rel")
mean = read_heads_mean(sm.input.heads_mean, measures)
stability = read_json(sm.input.stability)
task = dict(sm.wildcards.items()).get("task")
n_seeds = int(mean["n_seeds"].max())
left_out = read_json(sm.input.pair_stats).get("degenerate_excluded", [])
note = f"; degenerate seed(s) {', '.join(map(str, left_out))} left out" if left_out else ""
suffix = f" ({task}, {n_seeds} seeds{note})" if task else f" ({n_seeds} seeds{note})"

fig_heatmaps(mean, [f"{m}_mean" for m in measures], sm.output.heatmaps, title=f"Seed means{suffix}")
fig_rank_stability(
    stability, sm.output.stability_fig, title=f"Seed-to-seed stability of head rankings{suffix}"
)
fig_seed_mean_scatter(
    mean, "I_pre", "Urel", sm.output.scatter_I_vs_U, title=f"Urel vs I_pre, seed means{suffix}"
)
fig_seed_mean_scatter(
    mean, "I_pre", "G", sm.output.scatter_I_vs_G, title=f"G vs I_pre, seed means{suffix}"
)
