"""Snakemake script: fine-tune theta0 into theta1 (best by accuracy on the task's selection rows),
write run_config.
trainer_out/ is not declared (a killed job resumes); N > 1 GPUs: N data-parallel processes."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import os

from headplast.io import read_json, write_json
from headplast.train.degenerate import warning_text
from headplast.train.distributed import finetune_data_parallel, gpus_of_job
from headplast.train.finetune import finetune, install_sigterm_handler

install_sigterm_handler()

sm = snakemake
out_dir = os.path.dirname(sm.output.model)
if os.path.dirname(sm.output.config) != out_dir:
    raise ValueError("output.model and output.config must share one folder")
nproc = gpus_of_job(sm.resources.get("gpu"), sm.resources.get("gres"))
kwargs = dict(
    init_dir=os.path.dirname(sm.input.init_model),
    train_path=sm.input.train,
    validation_path=sm.input.validation,
    selection_path=sm.input.selection,
    out_dir=out_dir,
    trainer_dir=os.path.join(os.path.dirname(sm.output.run_config), "trainer_out"),
    hparams=dict(sm.params.hparams),
    seed=int(sm.params.seed),
    max_length=int(sm.params.max_length),
    precision=str(sm.params.get("precision", "auto")),
    min_accuracy_gain=float(sm.params.min_accuracy_gain),
)
run_config = finetune(**kwargs) if nproc == 1 else finetune_data_parallel(nproc, **kwargs)
if probe := sm.input.get("probe"):  # the probe start: how its theta0 was fitted
    run_config["probe"] = read_json(probe)
write_json(sm.output.run_config, run_config)
log.info("theta1 validation: %s", run_config["validation"]["theta1"])
if warning := warning_text(run_config):
    log.warning(warning)
