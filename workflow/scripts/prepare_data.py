import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.data.tasks import prepare_task_data

meta = prepare_task_data(
    snakemake.params.spec,
    snakemake.output.train,
    snakemake.output.validation,
    snakemake.output.meta,
)
print(meta, file=sys.stderr)
