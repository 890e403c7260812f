"""function_change.jsonl: per head A_js and C_rel between theta0 and theta1 on the eval subset."""

import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import torch  # noqa: E402

from headplast.io import write_head_jsonl  # noqa: E402
from headplast.measures import measure_function_change  # noqa: E402

sm = snakemake  # noqa: F821
torch.set_num_threads(sm.threads)
rows, info = measure_function_change(
    os.path.dirname(sm.input.init_model),
    os.path.dirname(sm.input.final_model),
    sm.input.validation,
    sm.input.subset,
    max_length=sm.params.max_length,
    tokens_per_batch=sm.params.tokens_per_batch,
    precision=sm.params.precision,
)
write_head_jsonl(sm.output.jsonl, rows)
