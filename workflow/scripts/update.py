import os
import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.io import write_head_jsonl  # noqa: E402
from headplast.updates import head_updates  # noqa: E402

rows = head_updates(
    os.path.dirname(snakemake.input.init_model), os.path.dirname(snakemake.input.final_model)
)
write_head_jsonl(snakemake.output.jsonl, rows)
