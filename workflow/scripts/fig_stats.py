"""Bar chart of stats.json: rho with CI and layer-controlled rho; top-K overlap vs chance."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.figures import fig_stats  # noqa: E402
from headplast.io import ArtifactError, read_json  # noqa: E402

sm = snakemake  # noqa: F821
stats = read_json(sm.input.stats)
if "pairs" not in stats or not stats["pairs"]:
    raise ArtifactError(f"{sm.input.stats}: no 'pairs'; rerun the stats rule")
where = ", ".join(f"{k} {v}" for k, v in dict(sm.wildcards.items()).items())
title = f"Rank statistics over {stats.get('n_heads')} heads" + (f" ({where})" if where else "")
fig_stats(stats, sm.output.fig, title=title)
