"""Across tasks, per model and start: Spearman and top-K overlap of the seed-mean head rankings."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import pandas as pd

from headplast.analysis.summary import compare_runs, read_heads_mean
from headplast.io import ArtifactError, atomic_path

sm = snakemake
measures = ("I_pre", "I_post", "G", "Ppred", "Urel")
runs = [tuple(str(r).split("/")) for r in sm.params.runs]  # (model, task, start)
files = list(sm.input.heads_mean)
if len(files) != len(runs):
    raise ArtifactError(f"{len(files)} heads_mean files for {len(runs)} runs {runs}")
means = {}
for run, f in zip(runs, files, strict=True):
    if pd.read_csv(f).empty:  # every seed of the run degenerate: nothing to compare
        log.warning("%s: no usable seed, left out of the comparison", "/".join(run))
        continue
    means[run] = read_heads_mean(f, measures)
table = compare_runs(means, measures, top_k=int(sm.params.top_k))
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
print(f"{len(runs)} run(s), {len(table)} rows", file=sys.stderr)
