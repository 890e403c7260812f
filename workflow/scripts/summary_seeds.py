"""Per task, across seeds: per-head means and sds, rank stability, pair statistics, case counts."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.io import ArtifactError, atomic_path, read_json, write_json  # noqa: E402
from headplast.statistics import read_heads  # noqa: E402
from headplast.summary import (  # noqa: E402
    DEFAULT_MEASURES,
    case_counts,
    pair_stats_across_seeds,
    rank_stability,
    seed_mean,
)

sm = snakemake  # noqa: F821
seeds = [int(s) for s in sm.params.seeds]
heads_files, stats_files, cases_files = (
    list(sm.input.heads),
    list(sm.input.stats),
    list(sm.input.cases),
)
for name, files in (("heads", heads_files), ("stats", stats_files), ("cases", cases_files)):
    if len(files) != len(seeds):
        raise ArtifactError(f"{len(files)} {name} files for {len(seeds)} seeds {seeds}")

heads_by_seed = {s: read_heads(f) for s, f in zip(seeds, heads_files, strict=True)}
stats_by_seed = {s: read_json(f) for s, f in zip(seeds, stats_files, strict=True)}
cases_by_seed = {s: read_json(f) for s, f in zip(seeds, cases_files, strict=True)}

mean = seed_mean(heads_by_seed)
with atomic_path(sm.output.heads_mean) as tmp:
    mean.to_csv(tmp, index=False)
write_json(sm.output.stability, rank_stability(heads_by_seed, DEFAULT_MEASURES))
write_json(sm.output.pair_stats, pair_stats_across_seeds(stats_by_seed))
counts = case_counts(cases_by_seed)
with atomic_path(sm.output.case_counts) as tmp:
    counts.to_csv(tmp, index=False)
print(f"{len(seeds)} seeds, {len(mean)} heads, {len(counts)} counter-example rows", file=sys.stderr)
