import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.io import write_head_jsonl
from headplast.measure.updates import head_updates

rows = head_updates(
    os.path.dirname(snakemake.input.init_model), os.path.dirname(snakemake.input.final_model)
)
write_head_jsonl(snakemake.output.jsonl, rows)
