"""fig_pruning.png: one seed's cross-fitted pruning curves, the random orders as a band."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_pruning
from headplast.analysis.pruning_auc import accuracy_auc, curves_of_fit, read_pruning

sm = snakemake
rows = curves_of_fit(read_pruning(sm.input.pruning))  # the cross-fitted curves
aucs = accuracy_auc(rows)
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
auc = dict(zip(aucs["order"], aucs["auc"], strict=True))
fig_pruning(rows, auc, sm.output.fig, title=f"Pruning curves (cross-fitted); {where}")
