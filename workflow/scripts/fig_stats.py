"""Bar chart of stats.json: rho with CI and layer-controlled rho; top-K overlap vs chance."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_stats
from headplast.io import ArtifactError, read_json

sm = snakemake
stats = read_json(sm.input.stats)
if "pairs" not in stats or not stats["pairs"]:
    raise ArtifactError(f"{sm.input.stats}: no 'pairs'; rerun the stats rule")
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
title = f"Rank statistics over {stats.get('n_heads')} heads" + (f" ({where})" if where else "")
fig_stats(stats, sm.output.fig, title=title)
