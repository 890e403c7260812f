"""Snakemake script: the freeze interventions across seeds against the random band."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import pandas as pd

from headplast.analysis.figures import fig_freeze, fig_message

sm = snakemake
table = pd.read_csv(sm.input.table)
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
if table.empty:
    fig_message(sm.output.fig, f"Freeze interventions; {where}", "no usable seed")
else:
    n = int(table["n_seeds"].max())
    title = f"Freezing heads during fine-tuning ({n} seeds); {where}"
    fig_freeze(table, sm.output.fig, title=title)
