"""Per model, task and start: full fine-tuning and LoRA side by side (do they move the same
heads?): the Spearman of their Urel pooled over the seeds usable under both, its head-level test,
the top-K overlap against chance, each method's I_pre~Urel."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.methods_comparison import compare_methods
from headplast.analysis.statistics import read_heads
from headplast.io import ArtifactError, atomic_path, read_json

sm = snakemake


def by_label(labels, files, what):
    """Input files keyed by the params' labels of the same expansion (model/task/start[/seed])."""
    labels, files = list(labels), list(files)
    if len(labels) != len(files):
        raise ArtifactError(f"{len(files)} {what} files for {len(labels)} runs")
    return dict(zip(labels, files, strict=True))


heads = {
    "full": by_label(sm.params.seed_runs, sm.input.heads_full, "full heads"),
    "lora": by_label(sm.params.seed_runs, sm.input.heads_lora, "LoRA heads"),
}
pair_stats = {
    "full": by_label(sm.params.runs, sm.input.pair_stats_full, "full pair_stats"),
    "lora": by_label(sm.params.runs, sm.input.pair_stats_lora, "LoRA pair_stats"),
}
runs = {}
for run in sm.params.runs:
    ps = {m: read_json(pair_stats[m][run]) for m in ("full", "lora")}
    both = [int(s) for s in ps["full"].get("seeds", []) if s in ps["lora"].get("seeds", [])]
    # only the seeds usable under both methods are read (a degenerate seed's table may be odd)
    tables = {
        m: {s: read_heads(heads[m][f"{run}/{s}"], ("layer", "head")) for s in both} for m in heads
    }
    runs[tuple(run.split("/"))] = {
        "heads_full": tables["full"],
        "heads_lora": tables["lora"],
        "pair_stats_full": ps["full"],
        "pair_stats_lora": ps["lora"],
        "top_k": int(sm.params.top_k),
        "n_permutations": int(sm.params.get("n_permutations", 10_000)),
        "perm_seed": int(sm.params.get("seed", 0)),
    }
table = compare_methods(runs)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
print(f"{len(runs)} run(s) under both methods, {len(table)} rows", file=sys.stderr)
