# Head importance vs. head plasticity under fine-tuning. Table of contents only: the first eight
# files set up what the rules call (each names its one job in its first lines), then one file per
# stage of the DAG.
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


include: "rules/package.smk"  # this workflow's files and its Python package; package_code
include: "rules/config.smk"  # the config, prepared and validated in one call
include: "rules/derived.smk"  # tasks, seeds, starts, models; wildcard constraints
include: "rules/paths.smk"  # the results tree, checkpoint files and the targets of `all`
include: "rules/functions.smk"  # input and param functions: what one job reads of the config
include: "rules/resources.smk"  # threads, GPUs, memory, run time; the measure group
include: "rules/report.smk"  # how an output is filed in the Snakemake report
include: "rules/interventions.smk"  # the freeze interventions' orders, paths, functions
include: "rules/data.smk"  # each task's data: splits, eval subset, selection rows
include: "rules/train.smk"  # theta0 (random head, probe) and theta1 (fine-tuned or imported)
include: "rules/measure.smk"  # the per-head measures of each seed
include: "rules/analysis.smk"  # per seed: the joined table, its statistics, cases and figures
include: "rules/summary.smk"  # across seeds, tasks and starts
include: "rules/freeze.smk"  # the freeze interventions: frozen fine-tunes, their summary
include: "rules/findings.smk"  # the pages read first: findings and explorer


rule all:
    default_target: True
    input:
        all_outputs(),
