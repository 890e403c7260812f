"""What one job of each rule computes: its examples, their tokens, its FLOPs and their precision.

One function per rule that computes on a GPU (:data:`WORK`), reading the job's wildcards, the
config and the sizes (:mod:`headplast.plan.sizes`), and counting with
:class:`headplast.plan.flops.ShapeCounts`. The passes each job makes are the workflow's:

* fine-tuning (``finetune``, ``finetune_frozen``): epochs x train rows, forward and backward;
  plus the Trainer's evaluations: the selection rows before training and at every evaluation
  (each epoch, or every ``eval_steps`` optimizer steps), and, when the selection rows come from
  the train split, the validation split at theta0 and at theta1;
* ``probe_features``: one forward of the probe's train rows, the selection rows and the
  validation split; ``probe_checkpoint``: the task head on those features, ``probe.epochs``
  forward-and-backward passes over the train rows (an upper bound: early stopping may end
  sooner) and forwards over the selection rows each epoch, the validation split twice, the train
  rows once;
* the measures read the eval subset: the ablation sweeps (``theta0_sweep``, ``importance_pre``,
  ``importance_post``) L x H + 1 passes per example, prefix-cached (a pass that ablates a head of
  layer l recomputes only the layers from l on: the FLOPs count that); ``importance_pre_shared``
  the task head on the shared sweep's L x H + 1 hidden states per example; ``gradfisher_pre`` one
  forward and backward; ``function_change`` a forward at theta0 and at theta1; ``pruning`` every
  distinct set of removed heads of its cross-fitted orders on one half of the subset
  (:func:`headplast.plan.flops.pruning_evaluations`);
* ``import_final``: a forward of the validation split at theta0 and at theta1.

Every other rule (data preparation, ``init_checkpoint``, updates, statistics, figures, pages)
does no counted GPU arithmetic: it appears with its job count and no FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headplast.plan.flops import ShapeCounts, examples_per_batch, pruning_evaluations
from headplast.plan.sizes import TaskSizes
from headplast.train.defaults import HPARAM_DEFAULTS

#: Where a precision is named in the config -> the arithmetic the GPU does: training (``precision``;
#: fp32 trains with TF32 matmuls on, as :func:`headplast.train.finetune.finetune` sets them) and
#: measuring (``measure.precision``: fp32 is exact fp32, TF32 off).
TRAIN_ARITHMETIC = {"auto": "bf16", "bf16": "bf16", "fp16": "fp16", "fp32": "tf32"}
MEASURE_ARITHMETIC = {
    "fp32": "fp32",
    "tf32": "tf32",
    "auto": "bf16",
    "bf16": "bf16",
    "fp16": "fp16",
}


@dataclass(frozen=True)
class JobWork:
    """One job's work: ``examples`` (example passes: an example read twice counts twice),
    ``tokens`` (those examples' tokens at the plan's tokens per example; 0 for the task head,
    which reads one vector per example), ``flops`` (counted floating-point operations) and the
    GPU arithmetic they run in (``precision``: bf16, fp16, tf32 or fp32; None: no GPU work)."""

    examples: int
    tokens: int
    flops: float
    precision: str | None
    note: str = ""


NO_WORK = JobWork(0, 0, 0.0, None)


@dataclass(frozen=True)
class Context:
    """What a job's work depends on besides its wildcards: the config (defaults filled), the
    sizes of its task, tokens per example, and the FLOP counts of its model and task."""

    config: dict[str, Any]
    sizes: TaskSizes
    tokens: int
    counts: ShapeCounts


def _measure_batch(ctx: Context) -> int:
    return min(
        examples_per_batch(ctx.config["measure"]["tokens_per_batch"], ctx.tokens), ctx.sizes.n_eval
    )


def _sweep_tokens(ctx: Context) -> int:
    """The stacking budget the measuring scripts pass (``sweep_tokens or tokens_per_batch``)."""
    m = ctx.config["measure"]
    return int(m.get("sweep_tokens") or m["tokens_per_batch"])


def _measure_precision(ctx: Context) -> str:
    return MEASURE_ARITHMETIC[str(ctx.config["measure"]["precision"]).lower()]


def training_steps(n_train: int, hp: dict[str, Any]) -> int:
    """Optimizer steps of one fine-tune, as the Trainer counts them: batches of
    ``per_device_train_batch_size`` per epoch, ``gradient_accumulation_steps`` batches a step,
    ``ceil(num_train_epochs x steps per epoch)`` in all."""
    batches = math.ceil(n_train / int(hp["per_device_train_batch_size"]))
    accumulation = int(hp.get("gradient_accumulation_steps") or 1)
    per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
    return math.ceil(float(hp["num_train_epochs"]) * per_epoch)


def evaluations(n_train: int, hp: dict[str, Any]) -> int:
    """Evaluations on the selection rows during one fine-tune: once per epoch, or every
    ``eval_steps`` optimizer steps."""
    if hp.get("eval_steps") is None:
        return math.ceil(float(hp["num_train_epochs"]))
    return training_steps(n_train, hp) // int(hp["eval_steps"])


def finetune(wildcards: dict[str, str], ctx: Context) -> JobWork:
    hp = {**HPARAM_DEFAULTS, **ctx.config["tasks"][wildcards["task"]]["train"]}
    s, t = ctx.sizes, ctx.tokens
    trained = round(float(hp["num_train_epochs"]) * s.n_train)
    evaluated = s.n_selection * (1 + evaluations(s.n_train, hp))
    if s.selection_split == "train":
        evaluated += 2 * s.n_validation
    flops = trained * ctx.counts.train_step(t, int(hp["per_device_train_batch_size"]))
    flops += evaluated * ctx.counts.forward(t, int(hp["per_device_eval_batch_size"]))
    precision = TRAIN_ARITHMETIC[str(ctx.config["precision"]).lower()]
    note = f"{trained:,} trained + {evaluated:,} evaluated"
    return JobWork(trained + evaluated, (trained + evaluated) * t, flops, precision, note)


def probe_features(wildcards: dict[str, str], ctx: Context) -> JobWork:
    s = ctx.sizes
    n = s.n_probe_train + s.n_validation + (s.n_selection if s.selection_split == "train" else 0)
    batch = examples_per_batch(ctx.config["measure"]["tokens_per_batch"], ctx.tokens)
    return JobWork(n, n * ctx.tokens, n * ctx.counts.forward(ctx.tokens, batch), "tf32")


def probe_checkpoint(wildcards: dict[str, str], ctx: Context) -> JobWork:
    s, hp = ctx.sizes, ctx.config["probe"]
    epochs = int(hp["epochs"])
    fitted = epochs * s.n_probe_train
    evaluated = epochs * s.n_selection + 2 * s.n_validation + s.n_probe_train
    bs = int(hp["batch_size"] or s.n_probe_train)
    flops = fitted * ctx.counts.classifier(min(bs, 4096), train=True)
    flops += evaluated * ctx.counts.classifier(4096)
    note = f"at most {epochs} epochs (early stopping)"
    return JobWork(fitted + evaluated, 0, flops, "fp32", note)


def import_final(wildcards: dict[str, str], ctx: Context) -> JobWork:
    n = 2 * ctx.sizes.n_validation
    batch = examples_per_batch(ctx.config["measure"]["tokens_per_batch"], ctx.tokens)
    return JobWork(n, n * ctx.tokens, n * ctx.counts.forward(ctx.tokens, batch), "fp32")


def sweep(wildcards: dict[str, str], ctx: Context) -> JobWork:
    s, arch = ctx.sizes, ctx.counts.arch
    passes = arch.n_layers * arch.n_heads + 1
    per = ctx.counts.sweep(ctx.tokens, _measure_batch(ctx), _sweep_tokens(ctx))
    n = s.n_eval * passes
    return JobWork(n, n * ctx.tokens, s.n_eval * per, _measure_precision(ctx), "prefix-cached")


def importance_pre_shared(wildcards: dict[str, str], ctx: Context) -> JobWork:
    arch = ctx.counts.arch
    n = ctx.sizes.n_eval * (arch.n_layers * arch.n_heads + 1)
    return JobWork(n, 0, n * ctx.counts.classifier(4096), _measure_precision(ctx), "task head only")


def gradfisher(wildcards: dict[str, str], ctx: Context) -> JobWork:
    n = ctx.sizes.n_eval
    per = ctx.counts.gate_gradients(ctx.tokens, _measure_batch(ctx))
    return JobWork(n, n * ctx.tokens, n * per, _measure_precision(ctx), "forward + backward")


def function_change(wildcards: dict[str, str], ctx: Context) -> JobWork:
    n = ctx.sizes.n_eval
    per = ctx.counts.function_change(ctx.tokens, _measure_batch(ctx))
    return JobWork(2 * n, 2 * n * ctx.tokens, n * per, _measure_precision(ctx), "theta0, theta1")


def pruning(wildcards: dict[str, str], ctx: Context) -> JobWork:
    p, arch = ctx.config["pruning"], ctx.counts.arch
    n = pruning_evaluations(
        arch.n_layers,
        arch.n_heads,
        ctx.sizes.n_eval,
        int(p["n_random_orders"]),
        float(p["step_fraction"]),
        int(p["seed"]),
    )
    batch = max(1, _measure_batch(ctx) // 2)  # each batch is split between the two halves
    n_sets = max(1, round(n / ctx.sizes.n_eval))  # distinct sets per half
    per = ctx.counts.removal(ctx.tokens, batch, _sweep_tokens(ctx), n_sets)
    return JobWork(n, n * ctx.tokens, n * per, _measure_precision(ctx), f"{n_sets} sets")


#: rule -> its work; a rule not here does no counted GPU arithmetic.
WORK: dict[str, Callable[[dict[str, str], Context], JobWork]] = {
    "finetune": finetune,
    "finetune_frozen": finetune,
    "probe_features": probe_features,
    "probe_checkpoint": probe_checkpoint,
    "import_final": import_final,
    "theta0_sweep": sweep,
    "importance_pre": sweep,
    "importance_post": sweep,
    "importance_pre_shared": importance_pre_shared,
    "gradfisher_pre": gradfisher,
    "function_change": function_change,
    "pruning": pruning,
}
