"""headplast: attention-head importance versus plasticity under fine-tuning.

Modules are named for what they compute: ``adapters`` (where a model family keeps its
attention projections), ``gating`` (exact per-example head gates), ``importance`` (gate
ablation), ``gradients`` (gate gradients and Fisher), ``updates`` (per-head weight change between
checkpoints), ``heads`` (the joined table), ``statistics``, ``summary``, ``figures``, ``data``,
``training``, ``measures`` (the measuring stage end to end).
"""

__version__ = "0.1.0"
