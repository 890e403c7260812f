import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.data.subset import make_eval_subset
from headplast.data.tasks import DataError, file_fingerprint, read_split
from headplast.io import write_json

n_validation = len(read_split(snakemake.input.validation))
try:
    indices = make_eval_subset(n_validation, snakemake.params.size, snakemake.params.seed)
except DataError as err:
    raise DataError(
        f"config key `eval_subset.size` = {snakemake.params.size}, but "
        f"{snakemake.input.validation} has {n_validation} examples: the eval subset must have "
        f"1 to {n_validation} examples ({err})"
    ) from err
write_json(
    snakemake.output.subset,
    {
        "size": len(indices),
        "seed": snakemake.params.seed,
        "n_validation": n_validation,
        "validation_fingerprint": file_fingerprint(snakemake.input.validation),
        "indices": indices,
    },
)
