import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.io import write_head_jsonl
from headplast.measure.stage import measure_importance

rows, info = measure_importance(
    os.path.dirname(snakemake.input.model),
    snakemake.input.validation,
    snakemake.input.subset,
    max_length=snakemake.params.max_length,
    tokens_per_batch=snakemake.params.tokens_per_batch,
    sweep_tokens=snakemake.params.sweep_tokens,
    precision=snakemake.params.precision,
    per_example_path=snakemake.output.per_example,
)
write_head_jsonl(snakemake.output.jsonl, rows)
