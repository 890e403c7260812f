"""explorer.html: the layer x head grid of any measure, a scatter of any two, and every measure of
a hovered head with its standard error across seeds, per model, task and start (self-contained)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.explorer import explorer_data, render_explorer
from headplast.analysis.summary import read_heads_mean
from headplast.io import ArtifactError, atomic_path

sm = snakemake
labels, files = list(sm.params.runs), list(sm.input.heads_mean)
if len(labels) != len(files):
    raise ArtifactError(f"{len(files)} heads_mean files for {len(labels)} runs")
runs = {  # a run with no usable seed has an empty table: left out of the page
    tuple(r.split("/")): read_heads_mean(f, allow_empty=True)
    for r, f in zip(labels, files, strict=True)
}
page = render_explorer(explorer_data(runs))
with atomic_path(sm.output.html) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
print(f"{len(runs)} run(s) in the explorer, {len(page) / 1e6:.1f} MB", file=sys.stderr)
