"""fig_pruning_mean.png: pruning curves as seed means with sd bands."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

import pandas as pd  # noqa: E402

from headplast.figures import fig_pruning_mean  # noqa: E402
from headplast.io import read_json  # noqa: E402

sm = snakemake  # noqa: F821
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
curves = pd.read_csv(sm.input.curves)
n = int(curves["n_seeds"].max())
title = f"Pruning curves, mean of {n} seeds (bands: ± 1 sd); {where}"
fig_pruning_mean(curves, read_json(sm.input.auc), sm.output.fig, title=title)
