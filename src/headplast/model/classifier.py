"""The classifier (the task head: "head" alone means an attention head in this package) on
pooled features, and the encoder it reads.

For the supported families the classifier (pooler and classifier, ModernBERT's head and
classifier, a decoder's ``score``; see :func:`headplast.model.adapters.resolve_classifier`) reads
one vector per example of the last hidden state [B, T, D], its *pooling* (docs/methods.md, "The
token the task head reads"): the first token, the last non-padding token, or the mean over the
non-padding tokens. :func:`pool` computes that vector as the model's own classifier does, so the
encoder's part of a forward pass can be computed once (:func:`pooled_features`, [N, D]) and any
classifier applied to it later (:func:`classifier_logits`), through the model's own code with the
encoder stubbed. Every theta0 of a model shares the encoder; :func:`encoder_fingerprint`
identifies it, so that features or sweeps computed with one encoder are never applied to another.
Used by the probe start (:mod:`headplast.train.probe`) and the shared theta0 sweep
(:mod:`headplast.measure.shared_sweep`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from headplast.io import ArtifactError
from headplast.model.adapters import ClassifierLayout, UnsupportedModelError, resolve_classifier


class EncoderMismatchError(ArtifactError):
    """Features or a sweep computed with one encoder were applied to a checkpoint of another."""


def encoder_fingerprint(model: nn.Module, classifier: ClassifierLayout | None = None) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the encoder's state (sorted by name)."""
    classifier = classifier or resolve_classifier(model)
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if classifier.is_encoder(name):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def require_pooling(classifier: ClassifierLayout) -> str:
    """The classifier's pooling, or an :class:`UnsupportedModelError` saying why there is none and
    what to configure instead (the full per-seed sweep and the random start need no pooling)."""
    if classifier.pooling is None:
        raise UnsupportedModelError(
            f"model type '{classifier.model_type}': its task head reads none of the poolings this "
            f"package can compute from the last hidden state ({classifier.pooling_problem}), so it "
            "cannot be fitted on [N, D] pooled features nor share one theta0 sweep; use "
            "`starts: [random]` and `measure.shared_theta0_sweep: false` for this model"
        )
    return classifier.pooling


def pool(
    hidden: torch.Tensor, inputs: Mapping[str, torch.Tensor], classifier: ClassifierLayout
) -> torch.Tensor:
    """What the classifier reads of the last hidden state ``hidden`` [k*B, T, D] of a batch whose
    model inputs are ``inputs`` (``input_ids``, ``attention_mask``: [B, T]; k stacked copies of
    the batch are pooled alike), [k*B, D], computed as the model's own classifier computes it:

    - ``first``: ``hidden[:, 0]``;
    - ``last``: the rightmost position whose token id is not the config's ``pad_token_id``
      (Hugging Face's sequence classification for decoders; the last position when the config has
      no pad token id);
    - ``mean``: the mean of ``hidden`` over the positions where ``attention_mask`` is 1
      (ModernBERT's ``classifier_pooling: mean``, the same operations in the same order).
    """
    pooling = require_pooling(classifier)
    if pooling == "first":
        return hidden[:, 0]
    k = hidden.shape[0] // inputs["input_ids"].shape[0]
    if pooling == "mean":
        mask = inputs["attention_mask"].repeat(k, 1)
        return (hidden * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True)
    ids = inputs["input_ids"].repeat(k, 1)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if classifier.pad_token_id is None:
        return hidden[rows, -1]
    non_pad = (ids != classifier.pad_token_id).to(hidden.device, torch.int32)
    positions = torch.arange(ids.shape[-1], device=hidden.device, dtype=torch.int32)
    return hidden[rows, (positions * non_pad).argmax(-1)]


@torch.no_grad()
def pooled_features(
    model: nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
    classifier: ClassifierLayout | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, D] float32, labels [N]) in batch order: the encoder's last hidden state
    pooled as the classifier pools it (:func:`pool`), which is all the classifier reads. One
    eval-mode forward per batch."""
    classifier = classifier or resolve_classifier(model)
    require_pooling(classifier)
    device = next(model.parameters()).device
    model.eval()
    feats: list[torch.Tensor] = []
    current: dict[str, torch.Tensor] = {}
    hook = classifier.last_hidden.register_forward_hook(
        lambda module, args, out: feats.append(pool(first_output(out), current, classifier).float())
    )
    try:
        for b in batches:
            current.clear()
            current.update({k: v.to(device) for k, v in b.items() if k != "labels"})
            model(**current)
    finally:
        hook.remove()
    labels = torch.cat([b["labels"] for b in batches]).to(device)
    return torch.cat(feats), labels


def first_output(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


@contextlib.contextmanager
def _encoder_returning(classifier: ClassifierLayout, features: torch.Tensor) -> Iterator[None]:
    """Stub the encoder so that the model's forward sees ``features`` [B, D] as a one-token last
    hidden state [B, 1, D] (as ``last_hidden_state`` and as the last of ``hidden_states``): each
    pooling of one token is that token (the mean over one position of mask 1 is exact)."""
    from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions as Out

    x = features[:, None, :]
    out = Out(last_hidden_state=x, hidden_states=(x,))  # [1] is hidden_states (DeBERTa reads it)
    classifier.last_hidden.forward = lambda *args, **kwargs: out
    try:
        yield
    finally:
        del classifier.last_hidden.forward


def classifier_logits(
    model: nn.Module,
    features: torch.Tensor,
    classifier: ClassifierLayout | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """Logits [N, C] of the model's classifier applied to pooled features [N, D]
    (:func:`pooled_features`), through the model's own forward (the encoder stubbed; where the
    stub is the encoder and not the whole base model, the embedding of a dummy one-token input is
    computed and discarded). Differentiable in the classifier's parameters."""
    classifier = classifier or resolve_classifier(model)
    require_pooling(classifier)
    out = []
    for i in range(0, features.shape[0], chunk):
        f = features[i : i + chunk]
        dummy = torch.zeros(f.shape[0], 1, dtype=torch.long, device=f.device)
        with _encoder_returning(classifier, f):
            out.append(model(input_ids=dummy, attention_mask=torch.ones_like(dummy)).logits)
    return torch.cat(out)
