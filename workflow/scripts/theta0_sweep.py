"""Snakemake script: the shared theta0 sweep (first-token hidden states of every head ablation)."""

import logging
import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)


from headplast.measure.shared_sweep import measure_theta0_sweep

sm = snakemake
info = measure_theta0_sweep(
    os.path.dirname(sm.input.init_model),
    sm.input.validation,
    sm.input.subset,
    sm.output.sweep,
    max_length=sm.params.max_length,
    tokens_per_batch=sm.params.tokens_per_batch,
    sweep_tokens=sm.params.sweep_tokens,
    precision=sm.params.precision,
)
logging.getLogger("theta0_sweep").info("measure info: %s", info)
