"""fig_pruning.png: one seed's pruning curves, the random orders as a band."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.figures import fig_pruning  # noqa: E402
from headplast.pruning_auc import accuracy_auc, read_pruning  # noqa: E402

sm = snakemake  # noqa: F821
rows = read_pruning(sm.input.pruning)
aucs = accuracy_auc(rows)
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
fig_pruning(rows, dict(zip(aucs["order"], aucs["auc"], strict=True)), sm.output.fig, title=where)
