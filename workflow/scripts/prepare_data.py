import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.data import prepare_task_data  # noqa: E402

meta = prepare_task_data(
    snakemake.params.spec,
    snakemake.output.train,
    snakemake.output.validation,
    snakemake.output.meta,
)
print(meta, file=sys.stderr)
