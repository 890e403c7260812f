import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.synthetic_nli import write_synthetic_nli  # noqa: E402

spec = snakemake.params.spec
write_synthetic_nli(
    snakemake.output.train,
    snakemake.output.validation,
    n_train=spec["n_train"],
    n_validation=spec["n_validation"],
    seed=spec["seed"],
)
print(f"generated {spec}", file=sys.stderr)
