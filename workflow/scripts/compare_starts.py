"""Per model and task, the starts side by side: head-ranking stability and pair statistics."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_starts
from headplast.analysis.starts import compare_starts
from headplast.io import ArtifactError, atomic_path, read_json

sm = snakemake
keys = [tuple(r.split("/")) for r in sm.params.runs]
stability, pair_stats = list(sm.input.stability), list(sm.input.pair_stats)
if not len(keys) == len(stability) == len(pair_stats):
    raise ArtifactError(f"{len(stability)} stability and {len(pair_stats)} pair files for {keys}")
runs = {
    k: (read_json(s), read_json(p)) for k, s, p in zip(keys, stability, pair_stats, strict=True)
}
table = compare_starts(runs)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
fig_starts(table, sm.output.fig, title="theta0 start: random head vs probed head (LP-FT)")
print(f"{len(runs)} run(s), {len(table)} rows", file=sys.stderr)
