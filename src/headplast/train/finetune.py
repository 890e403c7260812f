"""theta1: fine-tuning theta0 (:mod:`headplast.train.theta0`) with the Hugging Face Trainer.

``hparams['method']`` says how: ``full`` trains every parameter; ``lora`` trains low-rank updates
of the attention projections that ``hparams['lora']['target']`` names and the task head
(:mod:`headplast.train.lora`), and saves theta1 merged (W0 + B @ A * scaling, checked against the
LoRA model's logits), so theta1 is the same kind of checkpoint either way.

``finetune`` keeps the best checkpoint by accuracy on the selection rows (theta1;
:mod:`headplast.data.selection`: by default rows held out of the train split, so the validation
split never chooses theta1), reports theta0's and theta1's validation accuracy, and resumes from
the last complete Trainer checkpoint when an earlier run of the same configuration was
interrupted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headplast.data.selection import indices_sha256, read_selection, split_rows
from headplast.data.tasks import file_fingerprint, read_split
from headplast.io import atomic_dir, read_json, write_json
from headplast.model.loading import load_model, load_tokenizer
from headplast.model.precision import enable_tf32, pick_device, resolve_precision
from headplast.train.defaults import HPARAM_DEFAULTS, SUBSAMPLE_SEED
from headplast.train.degenerate import DEFAULT_MIN_ACCURACY_GAIN, degeneracy

log = logging.getLogger(__name__)

_FINGERPRINT_NAME = "headplast_fingerprint.json"
_ADAPTER_WEIGHTS = "adapter_model.safetensors"  # a LoRA run's Trainer checkpoint (peft)
#: Where a LoRA run keeps its adapter (A, B and the task head, as peft saves them) beside the
#: Trainer state: theta1 itself is saved merged.
LORA_ADAPTER_DIR = "lora_adapter"
#: Examples of the selection rows on which a LoRA run checks that merging kept the logits.
MERGE_CHECK_EXAMPLES = 16


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------------
# Small helpers


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for pkg in ("torch", "transformers", "datasets", "accelerate", "safetensors", "headplast"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _best_eval_metrics(state: Any) -> dict[str, float] | None:
    """theta1's metrics on the selection rows from the evaluation that selected it (the best
    checkpoint is loaded at the end of train(); evaluating it again would repeat the same
    numbers)."""
    step = getattr(state, "best_global_step", None)
    for entry in reversed(state.log_history):
        if step is not None and entry.get("step") == step and "eval_accuracy" in entry:
            return _metrics(entry)
    return None


#: At most this many training-loss points go into the run record (means of consecutive steps).
CURVE_POINTS = 200


def training_curve(
    log_history: Sequence[dict[str, Any]],
    theta0: dict[str, float] | None = None,
    max_points: int = CURVE_POINTS,
) -> dict[str, list[dict[str, float]]]:
    """The run record's ``training_curve`` from the Trainer's log history: ``train`` = ``[{step,
    epoch, loss}]``, the logged training loss, averaged over runs of consecutive entries so that
    at most ``max_points`` remain (each point at its run's last step); ``eval`` = ``[{step,
    epoch, accuracy, loss}]`` for every evaluation, theta0's at step 0 first when given."""
    train = [e for e in log_history if "loss" in e and "step" in e]
    width = max(1, -(-len(train) // max_points))
    points = []
    for i in range(0, len(train), width):
        chunk = train[i : i + width]
        points.append(
            {
                "step": int(chunk[-1]["step"]),
                "epoch": float(chunk[-1].get("epoch", 0.0)),
                "loss": float(sum(float(e["loss"]) for e in chunk) / len(chunk)),
            }
        )
    evals = [] if theta0 is None else [{"step": 0, "epoch": 0.0, **theta0}]
    evals += [
        {"step": int(e["step"]), "epoch": float(e.get("epoch", 0.0)), **_metrics(e)}
        for e in log_history
        if "eval_accuracy" in e
    ]
    return {"train": points, "eval": evals}


def _check_labels(rows: Sequence[dict[str, Any]], num_labels: int, path: str | os.PathLike) -> None:
    for i, r in enumerate(rows):
        lab = r["label"]
        if isinstance(lab, bool) or not isinstance(lab, int) or not 0 <= lab < num_labels:
            raise ValueError(
                f"{path}: example {i} has label {lab!r}; the model has {num_labels} labels "
                f"(integers 0..{num_labels - 1})"
            )


def _warn_one_class(
    rows: Sequence[dict[str, Any]], id2label: dict[int, str], path: str | os.PathLike
) -> dict[str, int]:
    """Examples per label name of the training rows; a warning in the log when they hold one
    class only (the classifier can only learn to predict it; accuracy says nothing)."""
    counts = Counter(int(r["label"]) for r in rows)
    named = {str(id2label.get(k, k)): n for k, n in sorted(counts.items())}
    if len(counts) == 1:
        log.warning(
            "%s: all %d training examples (after max_train_samples) have the label %s; the "
            "classifier can only learn to predict that class. Check the data, "
            "data.columns.label and max_train_samples",
            path,
            len(rows),
            next(iter(named)),
        )
    return named


def _merge_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(hparams) - set(HPARAM_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown training hyper-parameter(s) {unknown}; known: {sorted(HPARAM_DEFAULTS)}"
        )
    hp = {**HPARAM_DEFAULTS, **hparams}
    if not 0 <= float(hp["warmup_ratio"]) < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {hp['warmup_ratio']}")
    for key in (
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "logging_steps",
    ):
        if int(hp[key]) < 1:
            raise ValueError(f"{key} must be a positive integer, got {hp[key]}")
    if hp["eval_steps"] is not None and int(hp["eval_steps"]) < 1:
        raise ValueError(f"eval_steps must be a positive integer or null, got {hp['eval_steps']}")
    if hp["max_train_samples"] is not None and int(hp["max_train_samples"]) < 1:
        raise ValueError(
            f"max_train_samples must be a positive integer or null, got {hp['max_train_samples']}"
        )
    # Imported here, not at the top: the module's import-time statements are part of the code
    # fingerprint of every rule that reaches package_versions (theta0, import_final), which a
    # fine-tuning method should not rerun (headplast.pipeline.provenance).
    from headplast.train.defaults import METHODS
    from headplast.train.lora import lora_settings

    if hp["method"] not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {hp['method']!r}")
    # LoRA's settings only for a LoRA run: a full run's record and resume key carry none, so a
    # change of them leaves a full run's checkpoints valid.
    hp["lora"] = lora_settings(hp["lora"]) if hp["method"] == "lora" else None
    return hp


def batch_over_processes(per_device: int, accumulation: int, world_size: int) -> tuple[int, int]:
    """(per-device batch, accumulation steps) for ``world_size`` data-parallel processes that
    keep the configured effective batch E = ``per_device`` x ``accumulation`` (the batch of one
    optimizer step on one process): world_size x batch x steps = E, with the largest per-device
    batch <= ``per_device``. E must be a multiple of ``world_size``."""
    effective = int(per_device) * int(accumulation)
    if world_size < 1 or effective % world_size:
        raise ValueError(
            f"the effective batch per_device_train_batch_size x gradient_accumulation_steps = "
            f"{per_device} x {accumulation} = {effective} cannot be split over {world_size} "
            f"processes; make it a multiple of resources.finetune.gpus = {world_size}"
        )
    share = effective // world_size
    batch = max(b for b in range(1, min(int(per_device), share) + 1) if share % b == 0)
    return batch, share // batch


def _tokenize(tokenizer: Any, rows: Sequence[dict[str, Any]], max_length: int) -> Any:
    """A ``datasets.Dataset`` of unpadded encodings (the collator pads each batch)."""
    from datasets import Dataset

    enc = tokenizer(
        [r["premise"] for r in rows],
        [r["hypothesis"] for r in rows],
        truncation=True,
        max_length=int(max_length),
    )
    data = {k: list(v) for k, v in enc.items()}
    data["label"] = [int(r["label"]) for r in rows]
    return Dataset.from_dict(data)


def _checkpoint_step(path: Path) -> int:
    return int(path.name.split("-", 1)[1])


def _complete_checkpoints(trainer_dir: Path) -> list[Path]:
    """Trainer checkpoints sorted by step; incomplete ones (a job killed while saving) are removed.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint is complete when that file
    parses and the weights (a LoRA run's: the adapter and the task head), optimizer, scheduler
    and RNG state are there.
    """
    found = []
    for p in trainer_dir.glob("checkpoint-*"):
        if not p.is_dir() or not p.name.split("-", 1)[1].isdigit():
            continue
        ok = all((p / f).is_file() for f in ("optimizer.pt", "scheduler.pt"))
        ok = ok and any((p / f).is_file() for f in ("model.safetensors", _ADAPTER_WEIGHTS))
        ok = ok and any(p.glob("rng_state*.pth"))
        try:
            json.loads((p / "trainer_state.json").read_text())
        except (OSError, json.JSONDecodeError):
            ok = False
        if ok:
            found.append(p)
        else:
            log.warning("removing incomplete Trainer checkpoint %s (job killed while saving)", p)
            shutil.rmtree(p)
    return sorted(found, key=_checkpoint_step)


def install_sigterm_handler() -> None:
    """Turn SIGTERM (SLURM time limit, Snakemake or scheduler cancel) into SystemExit, so temporary
    folders are cleaned up. Checkpoints already written stay; a rerun resumes from the last one."""

    def _handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _handler)


def _make_finite_loss_callback() -> Any:
    from transformers import TrainerCallback

    class FiniteLossCallback(TrainerCallback):
        """Fail at once when a logged training loss is NaN or infinite, naming the step."""

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                window = args.logging_steps
                where = (
                    f"step {state.global_step}"
                    if window == 1
                    else f"the {window} steps ending at step {state.global_step}"
                )
                raise NonFiniteLossError(
                    f"training loss is {loss} at {where} (epoch {state.epoch:.3f}); "
                    "nothing was written to the output folder. Lower learning_rate, or use "
                    "precision bf16/fp32 instead of fp16."
                )

    return FiniteLossCallback()


def _accuracy(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def _metrics(raw: dict[str, float]) -> dict[str, float]:
    out = {"loss": float(raw["eval_loss"]), "accuracy": float(raw["eval_accuracy"])}
    return out


def _resume_point(trainer_dir: Path, fingerprint: dict[str, Any]) -> Path | None:
    """The last complete Trainer checkpoint in ``trainer_dir`` written by this very
    configuration (``fingerprint``: hyper-parameters, seed, data, theta0, world size), or None;
    checkpoints of another configuration are stale and deleted. Records ``fingerprint``."""
    fp_path = trainer_dir / _FINGERPRINT_NAME
    ckpts = _complete_checkpoints(trainer_dir)
    if ckpts:
        try:
            old = read_json(fp_path)
        except Exception:
            old = None
        if old != fingerprint:
            log.warning(
                "%s holds checkpoints of a different configuration (hyper-parameters, seed, data, "
                "theta0 or GPU count changed); discarding them and training from the start",
                trainer_dir,
            )
            for p in ckpts:
                shutil.rmtree(p)
            ckpts = []
    write_json(fp_path, fingerprint)
    resume_from = ckpts[-1] if ckpts else None
    if resume_from is not None:
        log.info("resuming from %s (step %d)", resume_from, _checkpoint_step(resume_from))
    return resume_from


# --------------------------------------------------------------------------------------------------
# theta1


@dataclass(frozen=True)
class FinetuneData:
    """The rows fine-tuning reads: canonical rows (``train`` after the selection rows left and
    the ``max_train_samples`` subsample was taken; ``train_indices`` their rows in the train
    split), the selection rows that choose theta1 and the validation rows, their tokenised
    datasets (``sel_ds`` is ``val_ds`` when selecting on the validation split), the training
    rows' label counts, the data fingerprint the run record and the resume check carry (path,
    sha256, examples per split) and the selection record's summary (``selection``)."""

    train_rows: list[dict[str, Any]]
    val_rows: list[dict[str, Any]]
    train_ds: Any
    val_ds: Any
    label_counts: dict[str, int]
    fingerprint: dict[str, dict[str, Any]]
    train_indices: list[int]
    sel_rows: list[dict[str, Any]]
    sel_ds: Any
    selection: dict[str, Any]


def load_finetune_data(
    tokenizer: Any,
    model_config: Any,
    train_path: str | os.PathLike,
    validation_path: str | os.PathLike,
    hp: dict[str, Any],
    max_length: int,
    selection_path: str | os.PathLike | None = None,
) -> FinetuneData:
    """Read both splits, check their labels against the model's, set the selection rows apart
    (``selection_path``: a ``selection.json`` of :mod:`headplast.data.selection`; None selects on
    the validation split), take the fixed subsample of the remaining train rows
    (:data:`~headplast.train.defaults.SUBSAMPLE_SEED`) and tokenise."""
    num_labels = int(model_config.num_labels)
    all_train = read_split(train_path)
    val_rows = read_split(validation_path)
    _check_labels(all_train, num_labels, train_path)
    _check_labels(val_rows, num_labels, validation_path)
    n_train_all = len(all_train)
    record = None
    if selection_path is not None:
        record = read_selection(selection_path, n_train_all, len(val_rows))
    kept, train_rows, sel_rows = split_rows(all_train, val_rows, record)
    if hp["max_train_samples"] is not None and int(hp["max_train_samples"]) < len(kept):
        idx = sorted(
            random.Random(SUBSAMPLE_SEED).sample(range(len(kept)), hp["max_train_samples"])
        )
        kept, train_rows = [kept[i] for i in idx], [train_rows[i] for i in idx]
    label_counts = _warn_one_class(train_rows, model_config.id2label, train_path)
    fingerprint = {
        name: {"path": os.fspath(path), "sha256": file_fingerprint(path)}
        for name, path in (("train", train_path), ("validation", validation_path))
    }
    fingerprint["train"]["n_examples"] = n_train_all
    fingerprint["validation"]["n_examples"] = len(val_rows)
    split = "validation" if record is None else record["split"]
    selection = {
        "split": split,
        "n_examples": len(sel_rows),
        "indices_sha256": None if record is None else record["indices_sha256"],
        "path": None if selection_path is None else os.fspath(selection_path),
    }
    val_ds = _tokenize(tokenizer, val_rows, max_length)
    return FinetuneData(
        train_rows,
        val_rows,
        _tokenize(tokenizer, train_rows, max_length),
        val_ds,
        label_counts,
        fingerprint,
        kept,
        sel_rows,
        val_ds if split == "validation" else _tokenize(tokenizer, sel_rows, max_length),
        selection,
    )


def training_arguments(
    hp: dict[str, Any],
    trainer_dir: Path,
    seed: int,
    precision: str,
    device: torch.device,
    world_size: int,
) -> Any:
    """The Trainer's arguments: the hyper-parameters, evaluation and saving once per epoch (or
    every ``eval_steps``), the best checkpoint by accuracy on the evaluation set (the selection
    rows) kept, the effective batch
    split over ``world_size`` processes (:func:`batch_over_processes`), ``precision`` (resolved)."""
    from transformers import TrainingArguments

    per_device, accumulation = batch_over_processes(
        hp["per_device_train_batch_size"], hp["gradient_accumulation_steps"], world_size
    )
    strategy = "steps" if hp["eval_steps"] is not None else "epoch"
    step_kwargs = (
        {"eval_steps": int(hp["eval_steps"]), "save_steps": int(hp["eval_steps"])}
        if strategy == "steps"
        else {}
    )
    return TrainingArguments(
        output_dir=os.fspath(trainer_dir),
        learning_rate=float(hp["learning_rate"]),
        num_train_epochs=float(hp["num_train_epochs"]),
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=int(hp["per_device_eval_batch_size"]),
        gradient_accumulation_steps=accumulation,
        warmup_steps=float(hp["warmup_ratio"]),  # a float in [0, 1) is a ratio of the total steps
        weight_decay=float(hp["weight_decay"]),
        eval_strategy=strategy,
        save_strategy=strategy,
        **step_kwargs,
        save_total_limit=hp["save_total_limit"],
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=int(hp["logging_steps"]),
        logging_nan_inf_filter=False,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        seed=int(seed),
        data_seed=int(seed),
        train_sampling_strategy="group_by_length",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not sys.stderr.isatty(),
        use_cpu=device.type == "cpu",
        ddp_backend="gloo" if device.type == "cpu" and world_size > 1 else None,
    )


def _validation_metrics(trainer: Any, data: FinetuneData) -> dict[str, float]:
    """Loss and accuracy on the validation split (outside the Trainer's log of selection
    evaluations, under the prefix ``validation``)."""
    raw = trainer.evaluate(eval_dataset=data.val_ds, metric_key_prefix="validation")
    return {"loss": float(raw["validation_loss"]), "accuracy": float(raw["validation_accuracy"])}


def _train_and_evaluate(
    trainer: Any, resume_from: Path | None, out_dir: Path, data: FinetuneData
) -> tuple:
    """(validation metrics {theta0, theta1}, selection metrics {theta0, theta1}, train result):
    evaluate theta0, train (resuming from ``resume_from``) choosing theta1 on the selection rows,
    take theta1's selection metrics from the evaluation that chose it and evaluate it on the
    validation split (the same numbers when selecting on the validation split); every number
    checked finite."""
    on_validation = data.selection["split"] == "validation"
    sel0 = _metrics(trainer.evaluate())
    val0 = sel0 if on_validation else _validation_metrics(trainer, data)
    log.info("theta0 validation: %s; selection rows: %s", val0, sel0)
    result = trainer.train(
        resume_from_checkpoint=os.fspath(resume_from) if resume_from is not None else None
    )
    if not math.isfinite(result.training_loss):
        raise NonFiniteLossError(
            f"mean training loss is {result.training_loss}; nothing was written to {out_dir}"
        )
    sel1 = _best_eval_metrics(trainer.state) or _metrics(trainer.evaluate())
    val1 = sel1 if on_validation else _validation_metrics(trainer, data)
    log.info("theta1 validation: %s; selection rows: %s", val1, sel1)
    for name, m in (("theta0", val0), ("theta1", val1), ("theta0", sel0), ("theta1", sel1)):
        if not all(math.isfinite(v) for v in m.values()):
            raise NonFiniteLossError(f"{name} validation or selection metrics are not finite: {m}")
    return {"theta0": val0, "theta1": val1}, {"theta0": sel0, "theta1": sel1}, result


def _merge_check_batch(trainer: Any, data: FinetuneData) -> dict[str, torch.Tensor]:
    """The first :data:`MERGE_CHECK_EXAMPLES` selection rows, padded by the Trainer's collator,
    without labels: the inputs of a LoRA run's merge check."""
    n = min(MERGE_CHECK_EXAMPLES, len(data.sel_ds))
    rows = [{k: v for k, v in data.sel_ds[i].items() if k != "label"} for i in range(n)]
    return dict(trainer.data_collator(rows))


def merge_checked(peft_model: Any, batch: dict[str, torch.Tensor]) -> tuple[Any, dict[str, Any]]:
    """(the merged model of a LoRA ``peft_model``, the check record): the logits of ``batch``
    before merging (the LoRA model) and after (W0 + B @ A * scaling), in eval mode and full fp32,
    differ by at most 1e-4 x (1 + the largest |logit|), else a RuntimeError. The record gives the
    number of examples, the largest difference and the tolerance."""
    from headplast.train.lora import full_fp32, merge_lora

    peft_model.eval()
    device = next(peft_model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.no_grad(), full_fp32():
        before = peft_model(**batch).logits.double()
        merged = merge_lora(peft_model)
        after = merged(**batch).logits.double()
    diff = float((before - after).abs().max())
    tolerance = 1e-4 * (1 + float(before.abs().max()))
    if not diff <= tolerance:
        raise RuntimeError(
            f"merging the LoRA update changed the logits by up to {diff:.3g} (tolerance "
            f"{tolerance:.3g}) on {len(before)} selection rows; theta1 was not saved"
        )
    record = {"examples": len(before), "max_abs_logit_diff": diff, "tolerance": tolerance}
    return merged, record


def _save_theta1(
    trainer: Any,
    tokenizer: Any,
    out_dir: Path,
    trainer_dir: Path,
    keep_checkpoints: bool,
    merge_batch: dict[str, torch.Tensor] | None = None,
    init_dir: Path | None = None,
) -> tuple[Any, dict[str, Any] | None]:
    """theta1 (the Trainer's model, the best checkpoint loaded) and the tokenizer to ``out_dir``
    atomically; the Trainer state beside its checkpoints, which go unless ``keep_checkpoints``.
    A LoRA run (``merge_batch`` given): its adapter goes to ``trainer_dir``/
    :data:`LORA_ADAPTER_DIR` and theta1 is saved merged (:func:`merge_checked` on
    ``merge_batch``) and refused unless its tensor names are those of theta0 in ``init_dir``.
    Returns (the saved model, the merge check record or None)."""
    model, check = trainer.model, None
    if merge_batch is not None:
        with atomic_dir(trainer_dir / LORA_ADAPTER_DIR) as tmp:
            model.save_pretrained(tmp)
        model, check = merge_checked(model, merge_batch)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if merge_batch is not None:
            _same_tensor_names(init_dir, tmp)
    trainer.state.save_to_json(os.fspath(trainer_dir / "trainer_state.json"))
    if not keep_checkpoints:
        for p in trainer_dir.glob("checkpoint-*"):
            shutil.rmtree(p, ignore_errors=True)
        (trainer_dir / _FINGERPRINT_NAME).unlink(missing_ok=True)
    return model, check


def _same_tensor_names(init_dir: Path, out_dir: Path) -> None:
    """Refuse a theta1 whose tensor names differ from theta0's (a merge that left peft's names),
    naming some of each side's extra names."""
    from safetensors import safe_open

    names = []
    for d in (init_dir, out_dir):
        with safe_open(os.fspath(d / "model.safetensors"), framework="pt") as fh:
            names.append(set(fh.keys()))
    if names[0] != names[1]:
        raise RuntimeError(
            f"the merged theta1's tensor names differ from theta0's ({init_dir}); theta1 was not "
            f"saved. Only in theta1: {sorted(names[1] - names[0])[:5]}, only in theta0: "
            f"{sorted(names[0] - names[1])[:5]}"
        )


def _load_for_training(init_dir: Path, hp: dict[str, Any]) -> tuple[Any, Any, list[str] | None]:
    """(tokenizer, model, wrapped module names) of theta0 in ``init_dir`` as the Trainer trains it:
    wrapped with LoRA factors for ``hp['method']`` ``lora`` (the names of the wrapped modules;
    None for full fine-tuning). Call after seeding: LoRA's factors are drawn here."""
    from headplast.train.lora import wrap_lora

    tokenizer = load_tokenizer(init_dir)
    model = load_model(init_dir)
    lora_modules = None
    if hp["method"] == "lora":
        model = wrap_lora(model, hp["lora"])
        lora_modules = list(model.lora_modules)
    return tokenizer, model, lora_modules


def _resume_fingerprint(
    hp: dict[str, Any],
    seed: int,
    max_length: int,
    precision: str,
    init_sha: str,
    world_size: int,
    data: FinetuneData,
    resume_key: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a Trainer checkpoint must match to be resumed from (:func:`_resume_point`): the
    hyper-parameters, seed, max length, resolved precision, theta0's sha256, the number of
    processes, the train, validation and selection data's sha256, and ``resume_key`` if given."""
    fingerprint = {
        "hparams": hp,
        "seed": int(seed),
        "max_length": int(max_length),
        "precision": precision,
        "init_model_sha256": init_sha,
        "world_size": world_size,
        "train_sha256": data.fingerprint["train"]["sha256"],
        "validation_sha256": data.fingerprint["validation"]["sha256"],
        "selection": data.selection["split"],
        "selection_sha256": data.selection["indices_sha256"],
    }
    if resume_key is not None:
        fingerprint["resume_key"] = resume_key
    return fingerprint


def _make_trainer(
    model: Any,
    args: Any,
    tokenizer: Any,
    data: FinetuneData,
    precision: str,
    callbacks: Sequence[Any],
) -> Any:
    """The Hugging Face Trainer: train on ``data.train_ds``, evaluate (accuracy) on the selection
    rows, pad to a multiple of 8 in half precision, stop on a non-finite loss, then
    ``callbacks``."""
    from transformers import DataCollatorWithPadding, Trainer

    half = precision in ("bf16", "fp16")
    return Trainer(
        model=model,
        args=args,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if half else None),
        train_dataset=data.train_ds,
        eval_dataset=data.sel_ds,
        processing_class=tokenizer,
        compute_metrics=_accuracy,
        callbacks=[_make_finite_loss_callback(), *callbacks],
    )


def _lora_record(
    lora: dict[str, Any] | None,
    lora_modules: list[str] | None,
    trainer_dir: Path,
    merge_check: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The record's ``lora``: the settings with their scaling (alpha / r), peft's version, the
    wrapped modules, the adapter's folder and the merge check; None for full fine-tuning."""
    if lora is None:
        return None
    from headplast.train.lora import scaling

    return {
        **lora,
        "scaling": scaling(lora),
        "peft": metadata.version("peft"),
        "modules": lora_modules,
        "adapter_dir": os.fspath(trainer_dir / LORA_ADAPTER_DIR),
        "merge_check": merge_check,
    }


def _data_record(data: FinetuneData) -> dict[str, Any]:
    """The record's data fields: the files' fingerprints, the number of training examples, the
    sha256 of their indices, their label counts and the seed of ``max_train_samples``."""
    return {
        "data": data.fingerprint,
        "n_train_examples": len(data.train_rows),
        "train_indices_sha256": indices_sha256(data.train_indices),
        "train_label_counts": data.label_counts,
        "max_train_samples_seed": SUBSAMPLE_SEED,
    }


def _training_record(
    trainer: Any,
    args: Any,
    world_size: int,
    result: Any,
    theta0_selection: dict[str, Any],
    resume_from: Path | None,
) -> dict[str, Any]:
    """The record's training fields: the best checkpoint's step and accuracy on the selection
    rows, the optimizer steps, the batch actually used (per device, accumulation steps and the
    effective batch over ``world_size`` processes), the mean training loss, the training curve
    (from theta0's selection metrics on) and whether (and from which step) training resumed."""
    best_ckpt = trainer.state.best_model_checkpoint
    return {
        "best_checkpoint_step": (_checkpoint_step(Path(best_ckpt)) if best_ckpt else None),
        "best_metric": trainer.state.best_metric,
        "metric_for_best_model": "accuracy",
        "global_steps": int(trainer.state.global_step),
        "world_size": world_size,
        "per_device_train_batch_size_used": args.per_device_train_batch_size,
        "gradient_accumulation_steps_used": args.gradient_accumulation_steps,
        "effective_train_batch_size": (
            args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size
        ),
        "train_loss": float(result.training_loss),
        "training_curve": training_curve(trainer.state.log_history, theta0_selection),
        "resumed": resume_from is not None,
        "resumed_from_step": (_checkpoint_step(resume_from) if resume_from is not None else None),
    }


def finetune(
    init_dir: str | os.PathLike,
    train_path: str | os.PathLike,
    validation_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    trainer_dir: str | os.PathLike,
    hparams: dict[str, Any],
    seed: int,
    max_length: int,
    precision: str = "auto",
    *,
    callbacks: Sequence[Any] = (),
    keep_checkpoints: bool = False,
    min_accuracy_gain: float = DEFAULT_MIN_ACCURACY_GAIN,
    resume_key: dict[str, Any] | None = None,
    selection_path: str | os.PathLike | None = None,
) -> dict[str, Any] | None:
    """Fine-tune theta0 in ``init_dir`` and save the best checkpoint by accuracy on the selection
    rows (theta1) to ``out_dir``, atomically. Returns the run configuration (see the module docs).

    ``selection_path``: the task's ``selection.json`` (:mod:`headplast.data.selection`); its rows
    leave the training data and are the Trainer's evaluation set. None selects on the validation
    split (the record's ``selection.split`` says which).

    In named parts: load theta0 (:func:`_load_for_training`), load the data
    (:func:`load_finetune_data`), build the Trainer's arguments (:func:`training_arguments`), find
    a resume point (:func:`_resume_fingerprint`, :func:`_resume_point`), build the Trainer
    (:func:`_make_trainer`), train and evaluate (:func:`_train_and_evaluate`), save theta1
    (:func:`_save_theta1`), and write the record (its LoRA, data and training parts:
    :func:`_lora_record`, :func:`_data_record`, :func:`_training_record`).

    Trainer checkpoints go to ``trainer_dir``; when it holds complete checkpoints from an
    interrupted run of the same configuration (same hyper-parameters, seed, data and theta0),
    training resumes from the last one. After success they are deleted unless
    ``keep_checkpoints``; the Trainer state (the log history) stays in
    ``trainer_dir/trainer_state.json``. ``resume_key`` (e.g. the heads a freeze intervention
    holds fixed) joins what a resumable checkpoint must match. The record flags a degenerate run
    (theta1 not beating the validation split's majority-class rate by ``min_accuracy_gain``;
    :mod:`headplast.train.degenerate`).

    ``hparams['method']`` ``lora``: theta0 is wrapped with peft LoRA (``hparams['lora']``,
    :func:`headplast.train.lora.wrap_lora`) before the Trainer sees it; its checkpoints hold the
    adapter; theta1 is saved merged with theta0's tensor names (checked), the adapter kept in
    ``trainer_dir``/``lora_adapter``. The record's ``method`` and ``lora`` (settings, scaling,
    wrapped modules, the adapter's folder and the merge check; None for ``full``) say so, and
    ``trainable_parameters`` counts what trained. A freeze callback
    (:func:`headplast.train.freeze.freeze_callback`) works on either.

    Run under torchrun (WORLD_SIZE = N > 1 processes, see :mod:`headplast.train.distributed`), the
    Trainer trains data-parallel (DDP; gloo on CPU) with the effective batch kept: each optimizer
    step averages per_device_train_batch_size x gradient_accumulation_steps examples, as on one
    process (:func:`batch_over_processes`), so the number of steps and the schedule do not depend
    on N.
    Only rank 0 writes ``out_dir`` and returns the run configuration; other ranks return None.
    """
    from transformers import set_seed

    from headplast.train.lora import count_parameters

    t_start = time.time()
    hp = _merge_hparams(hparams)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    used = resolve_precision(precision)
    device = pick_device()
    if device.type == "cuda":
        enable_tf32()
    init_dir, trainer_dir, out_dir = Path(init_dir), Path(trainer_dir), Path(out_dir)

    set_seed(int(seed))
    tokenizer, model, lora_modules = _load_for_training(init_dir, hp)
    trainable = count_parameters(model, trainable_only=True)  # before the best adapter's reload
    data = load_finetune_data(
        tokenizer, model.config, train_path, validation_path, hp, max_length, selection_path
    )
    init_sha = file_fingerprint(init_dir / "model.safetensors")
    args = training_arguments(hp, trainer_dir, seed, used, device, world_size)
    trainer_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _resume_fingerprint(
        hp, seed, max_length, used, init_sha, world_size, data, resume_key
    )
    # Rank 0 first (removes incomplete and stale checkpoints), then the other ranks see the same.
    with args.main_process_first(local=False, desc="checking trainer_out for a resume point"):
        resume_from = _resume_point(trainer_dir, fingerprint)

    trainer = _make_trainer(model, args, tokenizer, data, used, callbacks)
    validation, selection, result = _train_and_evaluate(trainer, resume_from, out_dir, data)
    if not trainer.is_world_process_zero():
        return None
    merge_batch = _merge_check_batch(trainer, data) if hp["lora"] is not None else None
    saved, merge_check = _save_theta1(
        trainer, tokenizer, out_dir, trainer_dir, keep_checkpoints, merge_batch, init_dir
    )
    return {
        "method": hp["method"],
        "lora": _lora_record(hp["lora"], lora_modules, trainer_dir, merge_check),
        "hparams": hp,
        "seed": int(seed),
        "data_seed": int(seed),
        "max_length": int(max_length),
        "precision_requested": precision,
        "precision": used,
        "tf32": device.type == "cuda",
        "device": device.type,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "versions": package_versions(),
        "init_dir": os.fspath(init_dir),
        "init_model_sha256": init_sha,
        "model_type": model.config.model_type,
        "num_labels": int(model.config.num_labels),
        "num_parameters": count_parameters(saved),
        "trainable_parameters": trainable,
        **_data_record(data),
        "validation": validation,
        "selection": {**data.selection, **selection},
        **_training_record(trainer, args, world_size, result, selection["theta0"], resume_from),
        **degeneracy(
            validation["theta1"]["accuracy"],
            [int(r["label"]) for r in data.val_rows],
            min_accuracy_gain,
        ),
        "wall_time_s": round(time.time() - t_start, 3),
    }
