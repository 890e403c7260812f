"""function_change.jsonl: per head A_js and C_rel between theta0 and theta1 on the eval subset."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.io import write_head_jsonl
from headplast.measure.stage import measure_function_change

sm = snakemake
rows, info = measure_function_change(
    os.path.dirname(sm.input.init_model),
    os.path.dirname(sm.input.final_model),
    sm.input.validation,
    sm.input.subset,
    max_length=sm.params.max_length,
    tokens_per_batch=sm.params.tokens_per_batch,
    precision=sm.params.precision,
)
write_head_jsonl(sm.output.jsonl, rows)
