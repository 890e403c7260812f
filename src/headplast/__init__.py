"""headplast: attention-head importance versus plasticity under fine-tuning.

"Head" means an attention head; the task head on top of the encoder is the *classifier*
(:mod:`headplast.model.classifier`). A *run* is one model, task and start, over its seeds.

Subpackages and modules:

- ``analysis``: rank statistics, reliabilities and noise ceilings, summaries across seeds, starts
  and tasks, pruning-curve areas, the findings and the figures (no torch).
- ``bench``: speed-ratio benchmarks on the CPU and the measuring stage on a GPU.
- ``data``: the tasks' canonical splits, the eval subset and tokenised, length-bucketed batches.
- ``measure``: per-head importance by gate ablation, gate gradients and Fisher, weight updates,
  functional change, pruning curves and the per-head join (heads.csv).
- ``model``: the adapter table (where each family keeps its attention), head gates, the
  classifier on pooled features, precision and loading.
- ``pipeline``: config validation, code fingerprints and the preamble of every workflow script.
- ``plan``: what a config costs in GPU time and memory before it is submitted
  (``python -m headplast.plan``).
- ``train``: theta0 of each start, fine-tuning to theta1, LoRA, freezing, importing fine-tunes
  and the degenerate-run flag.
- ``io``: atomic writing and validated reading of the artifacts (JSON, JSONL, CSV, tensors).
"""

__version__ = "0.1.0"
