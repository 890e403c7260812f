"""stats.json: Spearman (permutation p), layer-controlled Spearman, bootstrap CI and top-K overlap
for every pair of measures in headplast.statistics.PAIRS; the area under each pruning curve."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.io import write_json  # noqa: E402
from headplast.pruning import auc_summary, read_pruning  # noqa: E402
from headplast.statistics import PAIRS, pair_statistics, read_heads  # noqa: E402

sm = snakemake  # noqa: F821
heads = read_heads(sm.input.heads)
stats = pair_statistics(
    heads,
    PAIRS,
    top_k=int(sm.params.top_k),
    n_permutations=int(sm.params.n_permutations),
    n_bootstrap=int(sm.params.n_bootstrap),
    seed=int(sm.params.seed),
)
stats["pruning"] = auc_summary(read_pruning(sm.input.pruning))
write_json(sm.output.stats, stats)
print(
    f"{sm.output.stats}: {len(stats['pairs'])} pairs over {stats['n_heads']} heads", file=sys.stderr
)
