"""Snakemake script: theta0, the pre-trained encoder plus a seed-initialised classifier head."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
sys.stdout = sys.stderr

import logging  # noqa: E402
import os  # noqa: E402

from headplast.io import read_json  # noqa: E402
from headplast.training import init_checkpoint  # noqa: E402

logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, force=True, format="%(levelname)s %(name)s: %(message)s"
)

sm = snakemake  # noqa: F821
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
logging.getLogger("init_checkpoint").info("theta0 written to %s: %s", out_dir, info)
