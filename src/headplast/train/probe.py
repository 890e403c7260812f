"""The probe start: theta0 whose task head has been fitted on the frozen pre-trained encoder.

Linear probing then fine-tuning (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution"): every parameter outside the encoder (the pooler
and classifier; see :func:`headplast.model.adapters.resolve_classifier`) is trained with the encoder
frozen, and fine-tuning starts from the result. The encoder's output does not change while
probing, so the features the head reads (the last hidden state pooled as the head pools it: first
token, last non-padding token or masked mean, [N, D]; :func:`headplast.model.classifier.pool`) are
computed once, in one encoder pass over the train split, and the head is fitted on them with
AdamW. The head runs through the model's own code (pooler, activation, classifier) with
the encoder replaced by a stub that returns the features, so a probe fitted here is exactly the
head of the saved checkpoint.

The encoder is the same for every seed of a model (each seed's theta0 differs only in its head),
so the features are computed once per model and task (:func:`compute_probe_features`, the
``probe_features`` rule) and every seed's probe reads them (:class:`ProbeFeatures`); the file
carries the encoder's fingerprint and the pooling, and a probe whose theta0 holds another encoder
or pools otherwise is refused.

The head is kept in eval mode while fitting (no dropout): the features are fixed, and weight
decay is the regulariser (as the L2 penalty of the logistic-regression probe in LP-FT). The
task's selection rows (:mod:`headplast.data.selection`, the rows that choose theta1 in fine-tuning:
one mechanism for both) are held out of the fit: after each epoch the head's mean cross-entropy on
them is measured, fitting stops once it has not improved for ``patience`` epochs, and the head of
the epoch with the lowest held-out loss is kept (early stopping). With ``selection.split: train``
the task's validation split is never used to choose the head.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from headplast.data.batching import encode_pairs, make_batches
from headplast.data.selection import read_selection, split_rows
from headplast.data.tasks import file_fingerprint, read_split
from headplast.io import ArtifactError, atomic_dir, load_tensors, save_tensors
from headplast.model.adapters import ClassifierLayout, resolve_classifier
from headplast.model.classifier import (
    EncoderMismatchError,
    classifier_logits,
    encoder_fingerprint,
    pooled_features,
    require_pooling,
)
from headplast.train.defaults import PROBE_DEFAULTS, SUBSAMPLE_SEED

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ProbeFit:
    """What fitting a probe did: the mean training loss of each epoch run, the mean held-out
    cross-entropy after each (empty without a held-out part), and the epoch whose head was kept
    (1-based; the last one without a held-out part)."""

    train_loss: list[float]
    held_out_loss: list[float]
    best_epoch: int


def fit_probe(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int | None,
    weight_decay: float,
    seed: int,
    classifier: ClassifierLayout | None = None,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
    patience: int | None = None,
) -> ProbeFit:
    """Fit every head parameter (AdamW, cross-entropy) on fixed features [N, D] with labels [N];
    encoder parameters get no gradient and are not touched. Minibatches are drawn in a seeded
    order. With ``held_out`` (features [M, D], labels [M]) the head of the epoch with the lowest
    held-out loss is kept, and fitting stops after ``patience`` epochs without a new lowest."""
    classifier = classifier or resolve_classifier(model)
    named = dict(model.named_parameters())
    params = [named[n] for n in classifier.classifier_parameters]
    flags = {n: p.requires_grad for n, p in named.items()}
    for n, p in named.items():
        p.requires_grad_(n in classifier.classifier_parameters)
    model.eval()
    opt = torch.optim.AdamW(params, lr=float(learning_rate), weight_decay=float(weight_decay))
    gen = torch.Generator().manual_seed(int(seed))
    n = features.shape[0]
    bs = n if batch_size is None else int(batch_size)
    history: list[float] = []
    held: list[float] = []
    best: tuple[float, int, list[torch.Tensor]] | None = None
    try:
        for epoch in range(1, int(epochs) + 1):
            history.append(_probe_epoch(model, features, labels, classifier, opt, gen, bs, epoch))
            if held_out is None:
                continue
            held.append(evaluate_classifier(model, *held_out, classifier)["loss"])
            if best is None or held[-1] < best[0]:
                best = (held[-1], epoch, [p.detach().clone() for p in params])
            elif patience is not None and epoch - best[1] >= int(patience):
                break
    finally:
        for name, p in named.items():
            p.requires_grad_(flags[name])
    if best is None:
        return ProbeFit(history, held, len(history))
    with torch.no_grad():
        for p, kept in zip(params, best[2], strict=True):
            p.copy_(kept)
    return ProbeFit(history, held, best[1])


def _probe_epoch(model, features, labels, classifier, opt, gen, batch_size, epoch) -> float:
    """One pass over the features in a seeded order; the mean training loss."""
    n = features.shape[0]
    order = torch.randperm(n, generator=gen).to(features.device)
    total = 0.0
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        loss = F.cross_entropy(classifier_logits(model, features[idx], classifier), labels[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"probe loss is {loss.item()} in epoch {epoch}; lower `probe.learning_rate`"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * idx.numel()
    return total / n


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    classifier: ClassifierLayout | None = None,
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of the model's head on pooled features."""
    logits = classifier_logits(model, features, classifier).float()
    return {
        "loss": float(F.cross_entropy(logits, labels)),
        "accuracy": float((logits.argmax(-1) == labels).float().mean()),
    }


def _features_of(model, tokenizer, rows, max_length, tokens_per_batch, classifier):
    batches = make_batches(encode_pairs(tokenizer, rows, max_length), tokens_per_batch)
    return pooled_features(model, batches, classifier)


@dataclasses.dataclass(frozen=True)
class ProbeFeatures:
    """The frozen encoder's pooled features (``pooling``: what the head reads), float32:
    ``train`` [N, D] with
    ``train_labels`` [N] (the train rows fine-tuning trains on: the train split less the
    selection rows, subsampled; in the order of their length-sorted batches, each label beside
    its example's features), ``selection`` [S, D] with ``selection_labels`` [S] (the task's
    selection rows, for early stopping) and ``validation`` [M, D] with ``validation_labels``
    [M]; the encoder's fingerprint, the train split's size before anything was taken out, and
    the split the selection rows come from. A file written before the pooling was recorded
    is ``first``."""

    train: torch.Tensor
    train_labels: torch.Tensor
    selection: torch.Tensor
    selection_labels: torch.Tensor
    validation: torch.Tensor
    validation_labels: torch.Tensor
    encoder_sha256: str
    n_train_all: int
    selection_split: str = "train"
    pooling: str = "first"

    TENSORS = (
        "train",
        "train_labels",
        "selection",
        "selection_labels",
        "validation",
        "validation_labels",
    )

    def save(self, path: str | os.PathLike) -> None:
        """One safetensors file (written atomically), the fingerprint and sizes as metadata."""
        meta = {
            "encoder_sha256": self.encoder_sha256,
            "n_train_all": str(self.n_train_all),
            "selection_split": self.selection_split,
            "pooling": self.pooling,
        }
        save_tensors(path, {k: getattr(self, k) for k in self.TENSORS}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ProbeFeatures:
        t, meta = load_tensors(
            path,
            cls.TENSORS,
            "a probe features file",
            ["encoder_sha256", "n_train_all", "selection_split"],
        )
        ok = all(t[k].dim() == 2 for k in ("train", "selection", "validation"))
        ok = ok and t["train"].shape[1] == t["selection"].shape[1] == t["validation"].shape[1]
        ok = ok and all(
            t[f"{k}_labels"].shape == t[k].shape[:1] for k in ("train", "selection", "validation")
        )
        if not ok:
            raise ArtifactError(f"{path}: inconsistent shapes; delete it and rerun")
        return cls(
            **t,
            encoder_sha256=meta["encoder_sha256"],
            n_train_all=int(meta["n_train_all"]),
            selection_split=meta["selection_split"],
            pooling=meta.get("pooling", "first"),
        )


def compute_probe_features(
    ckpt_dir: str | os.PathLike,
    train_path: str | os.PathLike,
    validation_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    max_length: int,
    tokens_per_batch: int,
    max_train_samples: int | None = None,
    selection_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The features every seed's probe of one model and task fits on: one encoder pass over the
    train rows (the train split less the selection rows of ``selection_path``, then a fixed
    subsample of ``max_train_samples``), the selection rows and the validation split with the
    checkpoint in ``ckpt_dir`` (any theta0 of the model: they share the encoder), saved to
    ``out_path``. ``selection_path`` None (or ``split: validation``) stops early on the
    validation split. Returns run info."""
    from headplast.model.loading import load_model, load_tokenizer
    from headplast.model.precision import enable_tf32, pick_device

    t0 = time.perf_counter()
    device = pick_device()
    if device.type == "cuda":
        enable_tf32()
    ckpt_dir = Path(ckpt_dir)
    tokenizer = load_tokenizer(ckpt_dir)
    model = load_model(ckpt_dir).to(device).eval()
    classifier = resolve_classifier(model)
    pooling = require_pooling(classifier)
    all_train, val_rows = read_split(train_path), read_split(validation_path)
    n_all = len(all_train)
    record = None
    if selection_path is not None:
        record = read_selection(selection_path, n_all, len(val_rows))
    _, train_rows, sel_rows = split_rows(all_train, val_rows, record)
    if max_train_samples is not None and int(max_train_samples) < len(train_rows):
        n = len(train_rows)
        idx = sorted(random.Random(SUBSAMPLE_SEED).sample(range(n), int(max_train_samples)))
        train_rows = [train_rows[i] for i in idx]
    split = "validation" if record is None else record["split"]
    x_train, y_train = _features_of(
        model, tokenizer, train_rows, max_length, tokens_per_batch, classifier
    )
    x_val, y_val = _features_of(
        model, tokenizer, val_rows, max_length, tokens_per_batch, classifier
    )
    if split == "validation":
        x_sel, y_sel = x_val.clone(), y_val.clone()  # safetensors stores no shared memory
    else:
        x_sel, y_sel = _features_of(
            model, tokenizer, sel_rows, max_length, tokens_per_batch, classifier
        )
    fingerprint = encoder_fingerprint(model, classifier)
    features = ProbeFeatures(
        x_train, y_train, x_sel, y_sel, x_val, y_val, fingerprint, n_all, split, pooling
    )
    features.save(out_path)
    return {
        "device": device.type,
        "n_train": int(x_train.shape[0]),
        "n_selection": int(x_sel.shape[0]),
        "selection_split": split,
        "n_validation": int(x_val.shape[0]),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def merge_probe_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """The config's ``probe:`` block over the defaults; unknown keys and bad values are errors."""
    unknown = sorted(set(hparams) - set(PROBE_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown `probe` key(s) {unknown}; known: {sorted(PROBE_DEFAULTS)}")
    hp = {**PROBE_DEFAULTS, **hparams}
    for key in ("epochs", "batch_size", "max_train_samples", "patience"):
        if hp[key] is not None and int(hp[key]) < 1:
            raise ValueError(f"`probe.{key}` must be a positive integer, got {hp[key]}")
    return hp


def probe_checkpoint(
    init_dir: str | os.PathLike,
    features_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    hparams: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Probe the random-start theta0 in ``init_dir`` on the encoder's features
    (:class:`ProbeFeatures` at ``features_path``, from the same encoder) and save it (same
    encoder, fitted head) with its tokenizer to ``out_dir``, atomically. Returns the probe
    record: hyper-parameters, training and held-out losses per epoch, the epoch kept, and
    validation loss/accuracy of the random head and of the fitted one.

    Long because its record (``probe.json``) is one literal of ~20 fields.
    """
    from headplast.model.loading import load_model, load_tokenizer
    from headplast.model.precision import pick_device

    t0 = time.perf_counter()
    hp = merge_probe_hparams(dict(hparams))
    device = pick_device()
    torch.manual_seed(int(seed))
    init_dir = Path(init_dir)
    tokenizer = load_tokenizer(init_dir)
    model = load_model(init_dir).to(device).eval()
    classifier = resolve_classifier(model)
    pooling = require_pooling(classifier)
    feats = ProbeFeatures.load(features_path)
    if feats.encoder_sha256 != encoder_fingerprint(model, classifier):
        raise EncoderMismatchError(
            f"{features_path}: computed with another encoder than {init_dir}'s; delete it and "
            "rerun the probe_features rule"
        )
    if feats.pooling != pooling:
        raise EncoderMismatchError(
            f"{features_path}: '{feats.pooling}'-pooled features, but {init_dir}'s head reads the "
            f"'{pooling}' pooling; delete it and rerun the probe_features rule"
        )
    encoder_before = {
        k: v.clone() for k, v in model.state_dict().items() if classifier.is_encoder(k)
    }
    x_fit, y_fit = feats.train.to(device), feats.train_labels.to(device)
    held_out = (feats.selection.to(device), feats.selection_labels.to(device))
    x_val, y_val = feats.validation.to(device), feats.validation_labels.to(device)
    before = evaluate_classifier(model, x_val, y_val, classifier)
    fit = fit_probe(
        model,
        x_fit,
        y_fit,
        epochs=hp["epochs"],
        learning_rate=hp["learning_rate"],
        batch_size=hp["batch_size"],
        weight_decay=hp["weight_decay"],
        seed=seed,
        classifier=classifier,
        held_out=held_out,
        patience=hp["patience"],
    )
    after = evaluate_classifier(model, x_val, y_val, classifier)
    train_after = evaluate_classifier(model, x_fit, y_fit, classifier)
    state = model.state_dict()
    changed = [k for k, v in encoder_before.items() if not torch.equal(v, state[k])]
    if changed:  # cannot happen unless the adapter table is wrong: then refuse to save
        raise RuntimeError(f"probing changed encoder tensors {changed[:5]}; nothing was written")
    counts = np.bincount(y_val.cpu().numpy(), minlength=int(model.config.num_labels))
    with atomic_dir(out_dir) as tmp:
        model.cpu().save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    record = {
        "hparams": hp,
        "seed": int(seed),
        "init_dir": os.fspath(init_dir),
        "init_model_sha256": file_fingerprint(init_dir / "model.safetensors"),
        "features": os.fspath(features_path),
        "encoder_sha256": feats.encoder_sha256,
        "head_modules": list(classifier.classifier_modules),
        "head_parameters": list(classifier.classifier_parameters),
        "n_train_split": feats.n_train_all,
        "n_train_examples": int(y_fit.numel()),
        "n_held_out_examples": int(held_out[1].numel()),
        "held_out": f"the task's selection rows ({feats.selection_split} split)",
        "n_validation_examples": int(y_val.numel()),
        "train_loss_per_epoch": [round(v, 6) for v in fit.train_loss],
        "held_out_loss_per_epoch": [round(v, 6) for v in fit.held_out_loss],
        "epochs_run": len(fit.train_loss),
        "best_epoch": fit.best_epoch,
        "train": train_after,
        "validation": {"random_head": before, "probe": after},
        "validation_majority_rate": float(counts.max() / counts.sum()),
        "device": device.type,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("probe: validation %s -> %s (epoch %d kept)", before, after, fit.best_epoch)
    return record
