"""Pruning curves across seeds: per order and step the seed mean and sd of the cross-fitted
curves; AUC mean and sd (cross-fitted, and the in-sample areas beside them for comparison). Seeds
whose run_config.json flags them degenerate are left out unless analysis.keep_degenerate."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import pandas as pd

from headplast.analysis.pruning_auc import (
    SEED_MEAN_COLUMNS,
    auc_across_seeds,
    curves_seed_mean,
    random_order_areas,
    read_pruning,
)
from headplast.analysis.seeds import no_usable_seed, seeds_to_summarise
from headplast.io import ArtifactError, atomic_path, read_json, write_json

sm = snakemake
seeds = [int(s) for s in sm.params.seeds]
files, configs = list(sm.input.pruning), list(sm.input.run_config)
if len(files) != len(seeds) or len(configs) != len(seeds):
    raise ArtifactError(
        f"{len(files)} pruning and {len(configs)} run_config files for {len(seeds)} seeds {seeds}"
    )
run_configs = {s: read_json(f) for s, f in zip(seeds, configs, strict=True)}
kept, degenerate = seeds_to_summarise(seeds, run_configs, bool(sm.params.keep_degenerate))
by_seed = {s: read_pruning(f) for s, f in zip(seeds, files, strict=True) if s in kept}
curves = curves_seed_mean(by_seed) if kept else pd.DataFrame(columns=SEED_MEAN_COLUMNS)
with atomic_path(sm.output.curves) as tmp:
    curves.to_csv(tmp, index=False)
# every seed degenerate: no curves, and the areas' file says why (a finding, not a failure)
write_json(
    sm.output.auc,
    {**auc_across_seeds(by_seed), "random_orders": random_order_areas(by_seed)}
    if kept
    else {"no_usable_seed": no_usable_seed(degenerate)},
)
if not kept:
    log.warning(no_usable_seed(degenerate))
left_out = [s for s in degenerate if s not in kept]
print(
    f"seeds {kept} summarised, {curves['order'].nunique()} orders; degenerate: {degenerate} "
    f"(left out: {left_out})",
    file=sys.stderr,
)
