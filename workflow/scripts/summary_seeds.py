"""Per task, across seeds: per-head means and sds, rank stability (seed-to-seed reliability),
pair statistics with noise ceilings, case counts. Degenerate seeds are left out unless
analysis.keep_degenerate; pair_stats.json names them."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.summary import summarise_seeds
from headplast.io import atomic_path, write_json

sm = snakemake
out = summarise_seeds(
    sm.params.seeds,
    list(sm.input.heads),
    list(sm.input.stats),
    list(sm.input.cases),
    list(sm.input.get("run_config") or []),
    keep_degenerate=bool(sm.params.get("keep_degenerate", False)),
    n_permutations=int(sm.params.get("n_permutations", 10_000)),
    perm_seed=int(sm.params.get("seed", 0)),
)
for name in ("heads_mean", "case_counts"):
    with atomic_path(getattr(sm.output, name)) as tmp:
        out[name].to_csv(tmp, index=False)
write_json(sm.output.stability, out["stability"])
write_json(sm.output.pair_stats, out["pair_stats"])
ps = out["pair_stats"]
print(
    f"seeds {ps['seeds']} summarised; degenerate: {ps['degenerate_seeds']} "
    f"(left out: {ps['degenerate_excluded']}); {len(out['heads_mean'])} heads",
    file=sys.stderr,
)
