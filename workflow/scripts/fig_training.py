"""fig_training.png: training loss and validation accuracy against steps for every seed of one
model, task and start, from the Trainer's log history kept in run_config.json."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.figures import fig_training
from headplast.io import ArtifactError, read_json

sm = snakemake
seeds, files = [int(s) for s in sm.params.seeds], list(sm.input.run_config)
if len(seeds) != len(files):
    raise ArtifactError(f"{len(files)} run_config files for seeds {seeds}")
w = sm.wildcards
fig_training(
    {s: read_json(f) for s, f in zip(seeds, files, strict=True)},
    sm.output.fig,
    title=f"fine-tuning: {w.model} {w.task} ({w.start} start)",
)
