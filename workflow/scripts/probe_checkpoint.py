"""Snakemake script: the probe start's theta0 (the random theta0's head fitted on the encoder)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)

import os

from headplast.io import write_json
from headplast.train.probe import probe_checkpoint

sm = snakemake
out_dir = os.path.dirname(sm.output.model)
if os.path.dirname(sm.output.config) != out_dir:
    raise ValueError("output.model and output.config must share one folder")
record = probe_checkpoint(
    os.path.dirname(sm.input.init_model),
    sm.input.features,
    out_dir,
    hparams=dict(sm.params.hparams),
    seed=int(sm.params.seed),
)
write_json(sm.output.record, record)
