"""Across tasks: Spearman and top-K overlap of the seed-mean head rankings per measure."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.io import ArtifactError, atomic_path  # noqa: E402
from headplast.summary import compare_tasks, read_heads_mean  # noqa: E402

sm = snakemake  # noqa: F821
measures = ("I_pre", "I_post", "G", "Ppred", "Urel")
tasks = [str(t) for t in sm.params.tasks]
files = list(sm.input.heads_mean)
if len(files) != len(tasks):
    raise ArtifactError(f"{len(files)} heads_mean files for {len(tasks)} tasks {tasks}")
means = {t: read_heads_mean(f, measures) for t, f in zip(tasks, files, strict=True)}
table = compare_tasks(means, measures, top_k=int(sm.params.top_k))
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
print(f"{len(tasks)} task(s), {len(table)} rows", file=sys.stderr)
