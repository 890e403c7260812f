# Head importance vs. head plasticity under fine-tuning. Table of contents only: the config is
# validated and the DAG's lists are derived in rules/common.smk; each stage has its own file.
from snakemake.utils import min_version

min_version("9.0")


# The reference experiment, unless another config is given with --configfile (a plain
# `configfile:` would be merged under it, in every cluster job too).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/measure.smk"
include: "rules/analysis.smk"
include: "rules/summary.smk"
include: "rules/freeze.smk"
include: "rules/findings.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
