"""Snakemake script: selection.json, the rows that choose theta1 and the probe's epoch."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.data.selection import selection_record
from headplast.data.tasks import file_fingerprint, read_split
from headplast.io import write_json

sm = snakemake
train = read_split(sm.input.train)
n_validation = len(read_split(sm.input.validation))
record = selection_record(dict(sm.params.spec), [int(r["label"]) for r in train], n_validation)
record["train_fingerprint"] = file_fingerprint(sm.input.train)
write_json(sm.output.selection, record)
log.info(
    "%d selection rows from the %s split (%s); %d train rows left to train on",
    record["n_examples"],
    record["split"],
    record["label_counts"] or "every validation row",
    record["n_train_split"] - (record["n_examples"] if record["split"] == "train" else 0),
)
