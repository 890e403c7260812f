"""Snakemake script: theta1 is an existing fine-tune, imported (labels in the task's order)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import os

from headplast.io import write_json
from headplast.train.checkpoints import import_final

sm = snakemake
out_dir = os.path.dirname(sm.output.model)
if os.path.dirname(sm.output.config) != out_dir:
    raise ValueError("output.model and output.config must share one folder")
run_config = import_final(
    sm.params.source,
    os.path.dirname(sm.input.init_model),
    sm.input.meta,
    sm.input.validation,
    out_dir,
    label_map=sm.params.label_map,
    trust_remote_code=bool(sm.params.trust_remote_code),
    max_length=int(sm.params.max_length),
    tokens_per_batch=int(sm.params.tokens_per_batch),
)
write_json(sm.output.run_config, run_config)
log.info("theta1 validation: %s", run_config["validation"])
