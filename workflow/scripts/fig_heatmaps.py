"""Layer x head heatmaps of I_pre, I_post, G, Urel, A_js and C_rel."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_heatmaps
from headplast.analysis.statistics import read_heads

sm = snakemake
heads = read_heads(sm.input.heads)
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
fig_heatmaps(
    heads, ("I_pre", "I_post", "G", "Urel", "A_js", "C_rel"), sm.output.fig, title=where or None
)
