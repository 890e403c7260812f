# Head importance vs. head plasticity under fine-tuning. Table of contents only: the config is
# validated and the DAG's lists are derived in rules/common.smk; each stage has its own file.
import os

from snakemake.utils import min_version

min_version("9.0")


# The reference experiment, unless another config is given with --configfile (a plain
# `configfile:` would be merged under it, in every cluster job too): config/config.yaml of the
# working directory where there is one (a snakedeploy deployment's copy, or the clone itself),
# else this workflow's own (`-s <clone>/Snakefile -d <elsewhere>`). Imported as a module with
# `config: config`, the importing workflow's config is used and this line is skipped.
REFERENCE_CONFIG = "config/config.yaml"
if not os.path.exists(REFERENCE_CONFIG):
    REFERENCE_CONFIG = workflow.source_path(REFERENCE_CONFIG)
if not workflow.overwrite_configfiles:

    configfile: REFERENCE_CONFIG


# Relative to this file, as every path the rules give for scripts, envs and report captions.
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
