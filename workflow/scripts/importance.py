import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import torch  # noqa: E402

from headplast.io import write_head_jsonl  # noqa: E402
from headplast.measures import measure_importance  # noqa: E402

torch.set_num_threads(snakemake.threads)
rows, info = measure_importance(
    os.path.dirname(snakemake.input.model),
    snakemake.input.validation,
    snakemake.input.subset,
    max_length=snakemake.params.max_length,
    tokens_per_batch=snakemake.params.tokens_per_batch,
    sweep_tokens=snakemake.params.sweep_tokens,
    precision=snakemake.params.precision,
    per_example_path=snakemake.output.per_example,
)
write_head_jsonl(snakemake.output.jsonl, rows)
