"""Snakemake script: the frozen encoder's first-token features that every seed's probe fits on."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
sys.stdout = sys.stderr

import logging  # noqa: E402
import os  # noqa: E402

import torch  # noqa: E402

from headplast.probe import compute_probe_features  # noqa: E402

logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, force=True, format="%(levelname)s %(name)s: %(message)s"
)

sm = snakemake  # noqa: F821
torch.set_num_threads(sm.threads)
info = compute_probe_features(
    os.path.dirname(sm.input.model),
    sm.input.train,
    sm.input.validation,
    sm.output.features,
    max_length=int(sm.params.max_length),
    tokens_per_batch=int(sm.params.tokens_per_batch),
    max_train_samples=sm.params.max_train_samples,
)
logging.getLogger("probe_features").info("features: %s", info)
