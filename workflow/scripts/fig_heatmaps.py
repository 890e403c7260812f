"""Layer x head heatmaps of I_pre, I_post, G, Urel, A_js and C_rel."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.figures import fig_heatmaps  # noqa: E402
from headplast.statistics import read_heads  # noqa: E402

sm = snakemake  # noqa: F821
heads = read_heads(sm.input.heads)
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
fig_heatmaps(
    heads, ("I_pre", "I_post", "G", "Urel", "A_js", "C_rel"), sm.output.fig, title=where or None
)
