import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.heads import join_heads  # noqa: E402
from headplast.io import atomic_path  # noqa: E402

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
