"""The probe start: theta0 whose task head has been fitted on the frozen pre-trained encoder.

Linear probing then fine-tuning (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution"): every parameter outside the encoder (the pooler
and classifier; see :func:`headplast.adapters.resolve_head`) is trained with the encoder frozen,
and fine-tuning starts from the result. The encoder's output does not change while probing, so
the features the head reads (for the supported families the first token's last hidden state,
[N, D]) are computed once, in one encoder pass over the train split, and the head is fitted on
them with AdamW. The head runs through the model's own code (pooler, activation, classifier) with
the encoder replaced by a stub that returns the features, so a probe fitted here is exactly the
head of the saved checkpoint.

The head is kept in eval mode while fitting (no dropout): the features are fixed, and weight
decay is the regulariser (as the L2 penalty of the logistic-regression probe in LP-FT).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .adapters import HeadLayout, UnsupportedModelError, resolve_head
from .batching import encode_pairs, make_batches
from .data import file_fingerprint, read_split
from .io import atomic_dir

log = logging.getLogger(__name__)

PROBE_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "learning_rate": 1e-3,
    "batch_size": 64,  # None: full batch
    "weight_decay": 0.01,
    "max_train_samples": None,  # None: the whole train split
}


def _require_first_token(head: HeadLayout) -> None:
    if not head.head_reads_first_token:
        raise UnsupportedModelError(
            f"model type '{head.model_type}': its task head reads more than the first token of "
            "the last hidden state (headplast.adapters: head_reads_first_token is False), so it "
            "cannot be fitted on [N, D] first-token features nor share one theta0 sweep; use "
            "`starts: [random]` and `measure.shared_theta0_sweep: false` for this model"
        )


@torch.no_grad()
def first_token_features(
    model: nn.Module, batches: Sequence[dict[str, torch.Tensor]], head: HeadLayout | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, D] float32, labels [N]) in batch order: the encoder's last hidden state at
    the first token, which is all the task head reads. One eval-mode forward per batch."""
    head = head or resolve_head(model)
    _require_first_token(head)
    device = next(model.parameters()).device
    model.eval()
    feats: list[torch.Tensor] = []
    hook = head.last_hidden.register_forward_hook(
        lambda module, args, out: feats.append(_first(out)[:, 0].float())
    )
    try:
        for b in batches:
            model(**{k: v.to(device) for k, v in b.items() if k != "labels"})
    finally:
        hook.remove()
    labels = torch.cat([b["labels"] for b in batches]).to(device)
    return torch.cat(feats), labels


def _first(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


@contextlib.contextmanager
def _encoder_returning(head: HeadLayout, features: torch.Tensor) -> Iterator[None]:
    """Stub the encoder so that the model's forward sees ``features`` [B, D] as a one-token last
    hidden state [B, 1, D] (as ``last_hidden_state`` and as the last of ``hidden_states``)."""
    from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions as Out

    x = features[:, None, :]
    out = Out(last_hidden_state=x, hidden_states=(x,))  # [1] is hidden_states (DeBERTa reads it)
    head.last_hidden.forward = lambda *args, **kwargs: out
    try:
        yield
    finally:
        del head.last_hidden.forward


def head_logits(
    model: nn.Module,
    features: torch.Tensor,
    head: HeadLayout | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """Logits [N, C] of the model's task head applied to first-token features [N, D], through the
    model's own forward (the encoder stubbed; the embedding of a dummy one-token input is
    computed and discarded). Differentiable in the head's parameters."""
    head = head or resolve_head(model)
    _require_first_token(head)
    out = []
    for i in range(0, features.shape[0], chunk):
        f = features[i : i + chunk]
        dummy = torch.zeros(f.shape[0], 1, dtype=torch.long, device=f.device)
        with _encoder_returning(head, f):
            out.append(model(input_ids=dummy, attention_mask=torch.ones_like(dummy)).logits)
    return torch.cat(out)


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
    head: HeadLayout | None = None,
) -> list[float]:
    """Fit every head parameter (AdamW, cross-entropy) on fixed features [N, D] with labels [N];
    encoder parameters get no gradient and are not touched. Minibatches are drawn in a seeded
    order. Returns the mean training loss of each epoch."""
    head = head or resolve_head(model)
    named = dict(model.named_parameters())
    params = [named[n] for n in head.head_parameters]
    flags = {n: p.requires_grad for n, p in named.items()}
    for n, p in named.items():
        p.requires_grad_(n in head.head_parameters)
    model.eval()
    opt = torch.optim.AdamW(params, lr=float(learning_rate), weight_decay=float(weight_decay))
    gen = torch.Generator().manual_seed(int(seed))
    n = features.shape[0]
    bs = n if batch_size is None else int(batch_size)
    history = []
    try:
        for _ in range(int(epochs)):
            order = torch.randperm(n, generator=gen).to(features.device)
            total = 0.0
            for i in range(0, n, bs):
                idx = order[i : i + bs]
                loss = F.cross_entropy(head_logits(model, features[idx], head), labels[idx])
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"probe loss is {loss.item()} in epoch {len(history) + 1}; lower "
                        "`probe.learning_rate`"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            history.append(total / n)
    finally:
        for name, p in named.items():
            p.requires_grad_(flags[name])
    return history


@torch.no_grad()
def evaluate_head(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, head: HeadLayout | None = None
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of the model's head on first-token features."""
    logits = head_logits(model, features, head).float()
    return {
        "loss": float(F.cross_entropy(logits, labels)),
        "accuracy": float((logits.argmax(-1) == labels).float().mean()),
    }


def _features_of(model, tokenizer, rows, max_length, tokens_per_batch, head):
    batches = make_batches(encode_pairs(tokenizer, rows, max_length), tokens_per_batch)
    return first_token_features(model, batches, head)


def merge_probe_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """The config's ``probe:`` block over the defaults; unknown keys and bad values are errors."""
    unknown = sorted(set(hparams) - set(PROBE_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown `probe` key(s) {unknown}; known: {sorted(PROBE_DEFAULTS)}")
    hp = {**PROBE_DEFAULTS, **hparams}
    for key in ("epochs", "batch_size", "max_train_samples"):
        if hp[key] is not None and int(hp[key]) < 1:
            raise ValueError(f"`probe.{key}` must be a positive integer, got {hp[key]}")
    return hp


def probe_checkpoint(
    init_dir: str | os.PathLike,
    train_path: str | os.PathLike,
    validation_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    hparams: dict[str, Any],
    seed: int,
    max_length: int,
    tokens_per_batch: int = 8192,
) -> dict[str, Any]:
    """Probe the random-start theta0 in ``init_dir`` and save it (same encoder, fitted head) with
    its tokenizer to ``out_dir``, atomically. Returns the probe record: hyper-parameters, the
    training losses, and validation loss/accuracy of the random head and of the fitted one."""
    from .precision import enable_tf32, pick_device
    from .training import SUBSAMPLE_SEED, load_model, load_tokenizer

    t0 = time.perf_counter()
    hp = merge_probe_hparams(dict(hparams))
    device = pick_device()
    if device.type == "cuda":
        enable_tf32()
    torch.manual_seed(int(seed))
    init_dir = Path(init_dir)
    tokenizer = load_tokenizer(init_dir)
    model = load_model(init_dir).to(device).eval()
    head = resolve_head(model)
    _require_first_token(head)
    train_rows = read_split(train_path)
    n_all = len(train_rows)
    if hp["max_train_samples"] is not None and int(hp["max_train_samples"]) < n_all:
        idx = sorted(random.Random(SUBSAMPLE_SEED).sample(range(n_all), hp["max_train_samples"]))
        train_rows = [train_rows[i] for i in idx]
    val_rows = read_split(validation_path)
    encoder_before = {k: v.clone() for k, v in model.state_dict().items() if head.is_encoder(k)}

    x_train, y_train = _features_of(
        model, tokenizer, train_rows, max_length, tokens_per_batch, head
    )
    x_val, y_val = _features_of(model, tokenizer, val_rows, max_length, tokens_per_batch, head)
    t_feat = time.perf_counter() - t0
    before = evaluate_head(model, x_val, y_val, head)
    losses = fit_probe(
        model,
        x_train,
        y_train,
        epochs=hp["epochs"],
        learning_rate=hp["learning_rate"],
        batch_size=hp["batch_size"],
        weight_decay=hp["weight_decay"],
        seed=seed,
        head=head,
    )
    after = evaluate_head(model, x_val, y_val, head)
    train_after = evaluate_head(model, x_train, y_train, head)
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
        "head_modules": list(head.head_modules),
        "head_parameters": list(head.head_parameters),
        "n_train_examples": len(train_rows),
        "n_validation_examples": len(val_rows),
        "train_loss_per_epoch": [round(v, 6) for v in losses],
        "train": train_after,
        "validation": {"random_head": before, "probe": after},
        "validation_majority_rate": float(counts.max() / counts.sum()),
        "device": device.type,
        "feature_seconds": round(t_feat, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("probe: validation %s -> %s", before, after)
    return record
