"""Snakemake script: theta1 is an existing fine-tune, imported (labels in the task's order)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
sys.stdout = sys.stderr

import logging  # noqa: E402
import os  # noqa: E402

from headplast.checkpoints import import_final  # noqa: E402
from headplast.io import write_json  # noqa: E402

logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, force=True, format="%(levelname)s %(name)s: %(message)s"
)

sm = snakemake  # noqa: F821
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
logging.getLogger("import_final").info("theta1 validation: %s", run_config["validation"])
