"""Snakemake script: the probe start's theta0 (the random theta0's head fitted on the encoder)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
sys.stdout = sys.stderr

import logging  # noqa: E402
import os  # noqa: E402

import torch  # noqa: E402

from headplast.io import write_json  # noqa: E402
from headplast.probe import probe_checkpoint  # noqa: E402

logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, force=True, format="%(levelname)s %(name)s: %(message)s"
)

sm = snakemake  # noqa: F821
torch.set_num_threads(sm.threads)
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
