"""Snakemake script: importance at one theta0 from the shared theta0 sweep (its own head)."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.io import write_head_jsonl
from headplast.measure.shared_sweep import measure_importance_shared

sm = snakemake
rows, info = measure_importance_shared(
    os.path.dirname(sm.input.init_model), sm.input.sweep, per_example_path=sm.output.per_example
)
write_head_jsonl(sm.output.jsonl, rows)
log.info("measure info: %s", info)
