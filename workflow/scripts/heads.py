import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.io import atomic_path
from headplast.measure.heads import join_heads

df = join_heads(
    snakemake.input.importance_pre,
    snakemake.input.importance_post,
    snakemake.input.gradfisher_pre,
    snakemake.input.update_jsonl,
    snakemake.input.function_change,
)
with atomic_path(snakemake.output.heads) as tmp:
    df.to_csv(tmp, index=False)
print(f"{len(df)} heads", file=sys.stderr)
