import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.io import write_head_jsonl
from headplast.measure.stage import measure_gradfisher

rows, info = measure_gradfisher(
    os.path.dirname(snakemake.input.init_model),
    snakemake.input.validation,
    snakemake.input.subset,
    max_length=snakemake.params.max_length,
    tokens_per_batch=snakemake.params.tokens_per_batch,
    precision=snakemake.params.precision,
    per_example_path=snakemake.output.per_example,
    eps=snakemake.params.eps,
)
write_head_jsonl(snakemake.output.jsonl, rows)
