import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.io import write_head_jsonl
from headplast.measure.stage import measure_importance

# importance_pre measures theta0 (input.init_model), importance_post theta1 (input.final_model)
checkpoint = snakemake.input.get("init_model") or snakemake.input.final_model
rows, info = measure_importance(
    os.path.dirname(checkpoint),
    snakemake.input.validation,
    snakemake.input.subset,
    max_length=snakemake.params.max_length,
    tokens_per_batch=snakemake.params.tokens_per_batch,
    sweep_tokens=snakemake.params.sweep_tokens,
    precision=snakemake.params.precision,
    per_example_path=snakemake.output.per_example,
)
write_head_jsonl(snakemake.output.jsonl, rows)
