"""cases.json: the important-but-static and plastic-but-unimportant heads."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # noqa: F821 (package, also in conda envs)

from headplast.io import write_json  # noqa: E402
from headplast.statistics import counter_examples, read_heads  # noqa: E402

sm = snakemake  # noqa: F821
heads = read_heads(sm.input.heads)
cases = counter_examples(
    heads, top_q=float(sm.params.top_quantile), bottom_q=float(sm.params.bottom_quantile)
)
write_json(sm.output.cases, cases)
for name in ("important_but_static", "plastic_but_unimportant"):
    print(
        f"{name}: {cases[name]['n']} heads (chance {cases[name]['expected']:.2f})", file=sys.stderr
    )
