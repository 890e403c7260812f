"""The task head on first-token features, and the encoder it reads.

For the supported families the task head (pooler and classifier; see
:func:`headplast.model.adapters.resolve_head`) reads nothing but the first token's last hidden
state. So the encoder's part of a forward pass can be computed once (:func:`first_token_features`,
[N, D]) and any head applied to it later (:func:`head_logits`), through the model's own code with
the encoder stubbed. Every theta0 of a model shares the encoder; :func:`encoder_fingerprint`
identifies it, so that features or sweeps computed with one encoder are never applied to another.
Used by the probe start (:mod:`headplast.train.probe`) and the shared theta0 sweep
(:mod:`headplast.measure.shared_sweep`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from headplast.io import ArtifactError
from headplast.model.adapters import HeadLayout, UnsupportedModelError, resolve_head


class EncoderMismatchError(ArtifactError):
    """Features or a sweep computed with one encoder were applied to a checkpoint of another."""


def encoder_fingerprint(model: nn.Module, head: HeadLayout | None = None) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the encoder's state (sorted by name)."""
    head = head or resolve_head(model)
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if head.is_encoder(name):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def require_first_token(head: HeadLayout) -> None:
    if not head.head_reads_first_token:
        raise UnsupportedModelError(
            f"model type '{head.model_type}': its task head reads more than the first token of "
            "the last hidden state (headplast.model.adapters: head_reads_first_token is False), so "
            "it cannot be fitted on [N, D] first-token features nor share one theta0 sweep; use "
            "`starts: [random]` and `measure.shared_theta0_sweep: false` for this model"
        )


@torch.no_grad()
def first_token_features(
    model: nn.Module, batches: Sequence[dict[str, torch.Tensor]], head: HeadLayout | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, D] float32, labels [N]) in batch order: the encoder's last hidden state at
    the first token, which is all the task head reads. One eval-mode forward per batch."""
    head = head or resolve_head(model)
    require_first_token(head)
    device = next(model.parameters()).device
    model.eval()
    feats: list[torch.Tensor] = []
    hook = head.last_hidden.register_forward_hook(
        lambda module, args, out: feats.append(first_output(out)[:, 0].float())
    )
    try:
        for b in batches:
            model(**{k: v.to(device) for k, v in b.items() if k != "labels"})
    finally:
        hook.remove()
    labels = torch.cat([b["labels"] for b in batches]).to(device)
    return torch.cat(feats), labels


def first_output(out: Any) -> torch.Tensor:
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
    require_first_token(head)
    out = []
    for i in range(0, features.shape[0], chunk):
        f = features[i : i + chunk]
        dummy = torch.zeros(f.shape[0], 1, dtype=torch.long, device=f.device)
        with _encoder_returning(head, f):
            out.append(model(input_ids=dummy, attention_mask=torch.ones_like(dummy)).logits)
    return torch.cat(out)
