"""Snakemake script: the second fine-tune of a seed's theta0 with one order's heads held fixed
(freeze intervention), every other setting as the unconstrained run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import os

from transformers import AutoConfig

from headplast.io import read_head_jsonl, write_json
from headplast.train.finetune import finetune, install_sigterm_handler
from headplast.train.freeze import freeze_callback, heads_by_score, random_heads

install_sigterm_handler()
sm = snakemake
fz = dict(sm.params.freeze)
init_dir = os.path.dirname(sm.input.init_model)
if fz["kind"] == "random":
    cfg = AutoConfig.from_pretrained(init_dir)
    heads = random_heads(
        cfg.num_hidden_layers, cfg.num_attention_heads, fz["fraction"], fz["seed"], fz["draw"]
    )
else:
    scores = read_head_jsonl(sm.input.scores, [fz["column"]])
    scores = scores.rename(columns={fz["column"]: fz["order"]})
    heads = heads_by_score(scores, fz["order"], fz["fraction"])
log.info("order %s: freezing %d heads %s", fz["order"], len(heads), heads)
run_config = finetune(
    init_dir,
    sm.input.train,
    sm.input.validation,
    os.path.dirname(sm.output.model),
    os.path.join(os.path.dirname(sm.output.run_config), "trainer_out"),
    dict(sm.params.hparams),
    seed=int(sm.params.seed),
    max_length=int(sm.params.max_length),
    precision=str(sm.params.precision),
    min_accuracy_gain=float(sm.params.min_accuracy_gain),
    callbacks=[freeze_callback(heads)],
    resume_key={"frozen_heads": [list(h) for h in heads]},
    selection_path=sm.input.selection,
)
run_config["freeze"] = fz
run_config["frozen_heads"] = [list(h) for h in heads]
write_json(sm.output.run_config, run_config)
log.info("theta1 validation with %s frozen: %s", fz["order"], run_config["validation"]["theta1"])
