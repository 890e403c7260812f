"""fig_pruning_mean.png: cross-fitted pruning curves as seed means with sd bands."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import pandas as pd

from headplast.analysis.figures import fig_message, fig_pruning_mean
from headplast.io import read_json

sm = snakemake
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
curves = pd.read_csv(sm.input.curves)
auc = read_json(sm.input.auc)
if curves.empty:  # every seed degenerate: the figure says so
    fig_message(sm.output.fig, f"Pruning curves; {where}", auc.get("no_usable_seed", "no seed"))
else:
    n = int(curves["n_seeds"].max())
    title = f"Pruning curves (cross-fitted), mean of {n} seeds (bands: ± 1 sd); {where}"
    fig_pruning_mean(curves, auc, sm.output.fig, title=title)
