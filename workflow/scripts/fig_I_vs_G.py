"""Scatter of G against I_pre per head, counter-example heads marked."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.figures import fig_scatter  # noqa: E402
from headplast.io import read_json  # noqa: E402
from headplast.statistics import read_heads  # noqa: E402

sm = snakemake  # noqa: F821
wc = dict(sm.wildcards.items())
where = ", ".join(f"{k} {v}" for k, v in wc.items())
heads = read_heads(sm.input.heads)
cases = read_json(sm.input.cases)
fig_scatter(
    heads,
    "I_pre",
    "G",
    cases,
    sm.output.fig,
    log="auto",
    title=f"G vs I_pre ({where})" if where else None,
)
