"""Scatter of params.y against params.x per head, counter-example heads marked."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.figures import fig_scatter  # noqa: E402
from headplast.io import read_json  # noqa: E402
from headplast.statistics import read_heads  # noqa: E402

sm = snakemake  # noqa: F821
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
