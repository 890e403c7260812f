"""Pruning curves across seeds: per order and step the seed mean and sd; AUC mean and sd."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.io import ArtifactError, atomic_path, write_json  # noqa: E402
from headplast.pruning import auc_across_seeds, curves_seed_mean, read_pruning  # noqa: E402

sm = snakemake  # noqa: F821
seeds = [int(s) for s in sm.params.seeds]
files = list(sm.input.pruning)
if len(files) != len(seeds):
    raise ArtifactError(f"{len(files)} pruning files for {len(seeds)} seeds {seeds}")
by_seed = {s: read_pruning(f) for s, f in zip(seeds, files, strict=True)}
curves = curves_seed_mean(by_seed)
with atomic_path(sm.output.curves) as tmp:
    curves.to_csv(tmp, index=False)
write_json(sm.output.auc, auc_across_seeds(by_seed))
print(f"{len(seeds)} seeds, {curves['order'].nunique()} orders", file=sys.stderr)
