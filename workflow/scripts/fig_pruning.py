"""fig_pruning.png: one seed's pruning curves, the random orders as a band."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_pruning
from headplast.analysis.pruning_auc import accuracy_auc, read_pruning

sm = snakemake
rows = read_pruning(sm.input.pruning)
aucs = accuracy_auc(rows)
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
fig_pruning(rows, dict(zip(aucs["order"], aucs["auc"], strict=True)), sm.output.fig, title=where)
