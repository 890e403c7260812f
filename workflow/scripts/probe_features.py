"""Snakemake script: the frozen encoder's first-token features that every seed's probe fits on."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake, threads=True)

import os

from headplast.train.probe import compute_probe_features

sm = snakemake
info = compute_probe_features(
    os.path.dirname(sm.input.init_model),
    sm.input.train,
    sm.input.validation,
    sm.output.features,
    max_length=int(sm.params.max_length),
    tokens_per_batch=int(sm.params.tokens_per_batch),
    max_train_samples=sm.params.max_train_samples,
    selection_path=sm.input.selection,
)
log.info("features: %s", info)
