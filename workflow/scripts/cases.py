"""cases.json: the important-but-static and plastic-but-unimportant heads."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

from headplast.analysis.statistics import counter_examples, read_heads
from headplast.io import write_json

sm = snakemake
heads = read_heads(sm.input.heads)
cases = counter_examples(
    heads, top_q=float(sm.params.top_quantile), bottom_q=float(sm.params.bottom_quantile)
)
write_json(sm.output.cases, cases)
for name in ("important_but_static", "plastic_but_unimportant"):
    print(
        f"{name}: {cases[name]['n']} heads (chance {cases[name]['expected']:.2f})", file=sys.stderr
    )
