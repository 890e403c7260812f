"""Per model, task and start, across seeds: what freezing each order's heads cost in fine-tuned
accuracy against the unconstrained run, against the random draws' band (freeze.csv)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import pandas as pd

from headplast.analysis.freeze_effects import COLUMNS, freeze_table, seed_effect
from headplast.analysis.seeds import no_usable_seed, seeds_to_summarise
from headplast.io import ArtifactError, atomic_path, read_head_jsonl, read_json

sm = snakemake
seeds, orders = [int(s) for s in sm.params.seeds], list(sm.params.orders)
base_rc, base_up = list(sm.input.run_config), list(sm.input.base_update)
frozen_rc, frozen_up = list(sm.input.frozen_run_config), list(sm.input.frozen_update)
n = len(seeds)
if not len(base_rc) == len(base_up) == n or not len(frozen_rc) == len(frozen_up) == n * len(orders):
    raise ArtifactError(f"input files do not match {len(orders)} orders x {n} seeds {seeds}")
run_configs = {s: read_json(f) for s, f in zip(seeds, base_rc, strict=True)}
kept, degenerate = seeds_to_summarise(seeds, run_configs, bool(sm.params.keep_degenerate))
effects = {}
for i, order in enumerate(orders):  # inputs are order-major, seeds in SEEDS order
    effects[order] = {
        s: seed_effect(
            run_configs[s],
            read_json(frozen_rc[i * n + j]),
            read_head_jsonl(frozen_up[i * n + j], ["U", "Urel"]),
            read_head_jsonl(base_up[j], ["U", "Urel"]),
        )
        for j, s in enumerate(seeds)
        if s in kept
    }
table = freeze_table(effects) if kept else pd.DataFrame(columns=COLUMNS)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False)
if not kept:
    log.warning(no_usable_seed(degenerate))
log.info("seeds %s summarised, degenerate %s; %d orders", kept, degenerate, len(table))
