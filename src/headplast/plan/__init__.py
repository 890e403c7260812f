"""What a config's run will cost, before it is submitted: ``make plan`` =
``python -m headplast.plan --configfile <config>``.

The jobs are Snakemake's own: a dry run of the config (:mod:`headplast.plan.jobs`), by default
as if the results folder were empty (the full plan), with ``--remaining`` only what is still to
run. For each job, the work its rule does (:mod:`headplast.plan.work`): the examples it
processes (training: epochs x the train rows left after the selection rows; measuring: the eval
subset times the passes each measure makes) and their tokens, from the config's dataset sizes
and the model's architecture (:mod:`headplast.plan.sizes`, no hub download); the floating-point
operations, counted by the counter of ``make bench-gpu`` on the workflow's own measuring and
training code run shape-only (:mod:`headplast.plan.flops`); and the GPU-hours at a stated
utilisation of a chosen GPU's dense peak, or at the examples per second a previous run's
``benchmarks/`` measured (:mod:`headplast.plan.gpus`). :mod:`headplast.plan.report` prints them
per rule and task, per stage (data, train, measure, analysis, freeze) and in total;
:mod:`headplast.plan.build` does all of it for one config. docs/plan.md says what each number
means.
"""
