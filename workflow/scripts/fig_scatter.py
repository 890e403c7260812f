"""Scatter of params.y against params.x per head, counter-example heads marked."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_scatter
from headplast.analysis.statistics import read_heads
from headplast.io import read_json

sm = snakemake
x, y = sm.params.x, sm.params.y
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
fig_scatter(
    read_heads(sm.input.heads),
    x,
    y,
    read_json(sm.input.cases),
    sm.output.fig,
    log="auto",
    title=f"{y} vs {x} ({where})" if where else None,
)
