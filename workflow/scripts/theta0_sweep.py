"""Snakemake script: the shared theta0 sweep (first-token hidden states of every head ablation)."""

import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import torch  # noqa: E402

from headplast.shared_sweep import measure_theta0_sweep  # noqa: E402

sm = snakemake  # noqa: F821
torch.set_num_threads(sm.threads)
info = measure_theta0_sweep(
    os.path.dirname(sm.input.model),
    sm.input.validation,
    sm.input.subset,
    sm.output.sweep,
    max_length=sm.params.max_length,
    tokens_per_batch=sm.params.tokens_per_batch,
    sweep_tokens=sm.params.sweep_tokens,
    precision=sm.params.precision,
)
logging.getLogger("theta0_sweep").info("measure info: %s", info)
