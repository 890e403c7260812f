"""findings.html (the page a researcher reads first) and findings.json (its numbers and sentences):
per model, task and start the pairs that carry the question, pruning, freeze interventions and
subset advice, each with sentences generated from the numbers; how the starts differ; full
fine-tuning and LoRA side by side where both ran."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # the package beside the workflow
from headplast.pipeline.script import start

log = start(snakemake)

import pandas as pd

from headplast.analysis.findings import build_findings
from headplast.analysis.findings_page import render_page
from headplast.analysis.methods_comparison import methods_sections
from headplast.io import ArtifactError, atomic_path, read_json, write_json


def by_label(labels, files, what):
    """Input files keyed by the params' labels of the same expansion (model/task/start[/seed])."""
    labels, files = list(labels), list(files)
    if len(labels) != len(files):
        raise ArtifactError(f"{len(files)} {what} files for {len(labels)} runs")
    return dict(zip(labels, files, strict=True))


sm = snakemake
pair_stats = by_label(sm.params.runs, sm.input.pair_stats, "pair_stats")
pruning_auc = by_label(sm.params.runs, sm.input.pruning_auc, "pruning_auc")
stats = by_label(sm.params.seed_runs, sm.input.stats, "stats")
run_configs = by_label(sm.params.seed_runs, sm.input.run_config, "run_config")
freeze = by_label(sm.params.freeze_runs, sm.input.get("freeze", []), "freeze")


def per_seed(files, run):
    """{seed: content} of one run's per-seed files (labels model/task/start/seed)."""
    return {
        int(k.rsplit("/", 1)[1]): read_json(f)
        for k, f in files.items()
        if k.rsplit("/", 1)[0] == run
    }


runs = {}
for run in sm.params.runs:
    runs[tuple(run.split("/"))] = {
        "pair_stats": read_json(pair_stats[run]),
        "pruning_auc": read_json(pruning_auc[run]),
        "stats_by_seed": per_seed(stats, run),
        "run_configs": per_seed(run_configs, run),
        "freeze": pd.read_csv(freeze[run]) if run in freeze else None,
    }
# full fine-tuning and LoRA side by side, where both ran (rule compare_methods)
methods = [pd.read_csv(f) for f in sm.input.get("methods", [])]
findings = build_findings(
    runs, dict(sm.params.about), methods_sections(methods[0] if methods else None)
)
write_json(sm.output.json, findings)
with atomic_path(sm.output.html) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(render_page(findings))
print(f"{len(runs)} run(s) on the findings page", file=sys.stderr)
