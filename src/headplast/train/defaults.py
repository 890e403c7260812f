"""Default hyper-parameters of fine-tuning and probing: the one table that direct calls
(:func:`headplast.train.finetune.finetune`, :func:`headplast.train.probe.probe_checkpoint`) and
the workflow's config (:func:`headplast.pipeline.config.fill_defaults`, before validation) both
read. No torch here, so the workflow can read it at parse time."""

from __future__ import annotations

from typing import Any

#: Seed of the fixed subsample taken when ``max_train_samples`` is set: the same examples for every
#: training seed, so seeds differ only in initialisation, order and dropout.
SUBSAMPLE_SEED = 0

#: Fine-tuning (``tasks.<task>.train``); the config must give the first three itself.
HPARAM_DEFAULTS: dict[str, Any] = {
    "learning_rate": 2e-5,
    "num_train_epochs": 3,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "eval_steps": None,  # None: evaluate and save once per epoch
    "max_train_samples": None,  # None: the whole training split
    "gradient_accumulation_steps": 1,
    "save_total_limit": 2,
    "logging_steps": 1,  # the non-finite-loss check sees every logged loss
    "method": "full",  # METHODS: every parameter trains, or LoRA (the ``lora`` settings)
    "lora": None,  # None: LORA_DEFAULTS; a mapping overrides some of its keys (method lora only)
}

#: How theta0 becomes theta1 (``train.method``): ``full`` fine-tuning of every parameter, or
#: ``lora``: low-rank updates of the attention projections that ``lora.target`` names, the task
#: head trained in full, theta1 saved merged (docs/methods.md, "LoRA").
METHODS: tuple[str, ...] = ("full", "lora")

#: The roles of a layer's attention projections in the adapter table (its ``PARTS``), which a
#: LoRA ``target`` names: the same words for every family, fused maps included.
LORA_TARGETS: tuple[str, ...] = ("query", "key", "value", "output")

#: LoRA settings (``train.lora``) when ``method`` is ``lora``: rank ``r`` and ``alpha`` as Hu et
#: al. 2021 (LoRA, arXiv:2106.09685, Table 9: RoBERTa-base/large on GLUE, r 8, alpha 8; their
#: learning rates are 10-25x full fine-tuning's, 4e-4 to 5e-4, which ``learning_rate`` must say),
#: so the update is scaled by alpha / r = 1; no LoRA dropout (peft's default); every attention
#: projection of every layer (the paper adapted query and value only; all four let every
#: component of U move).
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "alpha": 8,
    "dropout": 0.0,
    "target": list(LORA_TARGETS),
}

#: Linear probing of the `probe` start (``probe:``).
PROBE_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "learning_rate": 1e-3,
    "batch_size": 64,  # None: full batch
    "weight_decay": 0.01,
    "max_train_samples": None,  # None: the whole train split
    "patience": 5,  # epochs without a lower loss on the selection rows before fitting stops
}

#: The per-head scores a freeze order can rank by (``interventions.orders``), each with the
#: per-seed file and column it is read from: only files that exist before the second fine-tune,
#: and the narrowest one, so that a change that leaves a score alone reruns no frozen fine-tune.
FREEZE_SCORES: dict[str, tuple[str, str]] = {
    "Urel": ("update.jsonl", "Urel"),
    "U": ("update.jsonl", "U"),
    "I_pre": ("importance_pre.jsonl", "I"),
    "I_kl_pre": ("importance_pre.jsonl", "I_kl"),
    "G": ("gradfisher_pre.jsonl", "G"),
    "Ppred": ("gradfisher_pre.jsonl", "Ppred"),
}
