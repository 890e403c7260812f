"""Snakemake script: importance at one theta0 from the shared theta0 sweep (its own head)."""

import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import torch  # noqa: E402

from headplast.io import write_head_jsonl  # noqa: E402
from headplast.shared_sweep import measure_importance_shared  # noqa: E402

sm = snakemake  # noqa: F821
torch.set_num_threads(sm.threads)
rows, info = measure_importance_shared(
    os.path.dirname(sm.input.model), sm.input.sweep, per_example_path=sm.output.per_example
)
write_head_jsonl(sm.output.jsonl, rows)
logging.getLogger("importance_shared").info("measure info: %s", info)
