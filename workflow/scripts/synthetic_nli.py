import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.data.synthetic_nli import write_synthetic_nli

spec = snakemake.params.spec
write_synthetic_nli(
    snakemake.output.train,
    snakemake.output.validation,
    n_train=spec["n_train"],
    n_validation=spec["n_validation"],
    seed=spec["seed"],
)
print(f"generated {spec}", file=sys.stderr)
