"""pruning.jsonl: accuracy and loss at theta1 as heads are removed in each score's order, the
example-based orders cross-fitted over two halves of the eval subset (and in-sample, to compare)."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.io import write_jsonl
from headplast.measure.stage import measure_pruning

sm = snakemake
heads = ("importance_pre", "importance_post", "gradfisher_pre")
rows, info = measure_pruning(
    os.path.dirname(sm.input.final_model),
    sm.input.validation,
    sm.input.subset,
    {**{k: sm.input[k] for k in heads}, "update": sm.input.update_jsonl},
    {k: sm.input[f"{k}_npz"] for k in heads},
    step_fraction=sm.params.step_fraction,
    n_random_orders=sm.params.n_random_orders,
    seed=sm.params.seed,
    max_length=sm.params.max_length,
    tokens_per_batch=sm.params.tokens_per_batch,
    fisher_eps=sm.params.fisher_eps,
    sweep_tokens=sm.params.sweep_tokens,
    precision=sm.params.precision,
)
write_jsonl(sm.output.jsonl, rows)
