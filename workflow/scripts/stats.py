"""stats.json: Spearman (permutation p), layer-controlled Spearman, bootstrap CI and top-K overlap
for every pair of measures, each with its noise ceiling and disattenuated rho (from the split-half
reliabilities of the per-example sidecars); the reliabilities and the subset-size advice; the area
under each pruning curve."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.pruning_auc import auc_summary, read_pruning
from headplast.analysis.reliability import (
    SIDECARS,
    cross_half_pairs,
    pair_ceilings,
    reliability_report,
)
from headplast.analysis.statistics import LABEL_FREE_PAIRS, PAIRS, pair_statistics, read_heads
from headplast.io import read_json, write_json

sm = snakemake
heads = read_heads(sm.input.heads)
pairs = PAIRS + tuple(p for p in LABEL_FREE_PAIRS if set(p) <= set(heads.columns))
sidecars = {k: sm.input.get(k) for k in SIDECARS if sm.input.get(k)}
reliability, advice = reliability_report(
    sidecars,
    sorted({c for p in pairs for c in p}),
    n_repeats=int(sm.params.get("split_half_repeats", 100)),
    seed=int(sm.params.seed),
    n_available=(
        int(read_json(sm.input.eval_subset)["n_validation"])
        if sm.input.get("eval_subset")
        else None
    ),
)
stats = pair_statistics(
    heads,
    pairs,
    top_k=int(sm.params.top_k),
    n_permutations=int(sm.params.n_permutations),
    n_bootstrap=int(sm.params.n_bootstrap),
    seed=int(sm.params.seed),
    reliabilities={m: r["reliability"] for m, r in reliability.items()},
)
cross = cross_half_pairs(
    sidecars,
    pairs,
    n_repeats=int(sm.params.get("split_half_repeats", 100)),
    seed=int(sm.params.seed),
)
stats["pairs"] = pair_ceilings(stats["pairs"], reliability, cross)
write_json(
    sm.output.stats,
    {
        **stats,
        "reliability": reliability,
        "subset_advice": advice,
        "pruning": auc_summary(read_pruning(sm.input.pruning)),
    },
)
print(
    f"{sm.output.stats}: {len(stats['pairs'])} pairs over {stats['n_heads']} heads", file=sys.stderr
)
