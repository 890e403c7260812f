"""Snakemake script: theta0, the pre-trained encoder plus a seed-initialised classifier head."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import os

from headplast.io import read_json
from headplast.train.theta0 import init_checkpoint

sm = snakemake
out_dir = os.path.dirname(sm.output.model)
for path in (sm.output.model, sm.output.config):
    if os.path.dirname(path) != out_dir:
        raise ValueError(f"output.model and output.config must share one folder; got {path}")
info = init_checkpoint(
    sm.params.model,
    int(sm.params.num_labels),
    int(sm.params.seed),
    out_dir,
    trust_remote_code=bool(sm.params.get("trust_remote_code", False)),
    label_names=read_json(sm.input.meta)["label_names"],  # theta0/theta1 name their labels
    max_length=int(sm.params.max_length),  # checked against the model's position limit
)
log.info("theta0 written to %s: %s", out_dir, info)
