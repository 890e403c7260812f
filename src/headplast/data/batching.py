"""Tokenised, length-sorted, token-budget batches with dynamic padding for the measures.

Examples are sorted by length (longest first, ties by index so the order is deterministic) and
cut into batches whose padded size ``batch_size * max_length_in_batch`` stays within a token
budget, so short examples are not padded to the longest one in the subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Encoded:
    """Tokenised examples: per example its token ids (and segment ids) and its label."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: list[int]
    pad_id: int


def encode_pairs(tokenizer, records: Sequence[dict], max_length: int) -> Encoded:
    """Tokenise premise/hypothesis pairs (truncated to ``max_length``), no padding."""
    enc = tokenizer(
        [r["premise"] for r in records],
        [r["hypothesis"] for r in records],
        truncation=True,
        max_length=max_length,
    )
    tt = enc.get("token_type_ids")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(
        list(enc["input_ids"]),
        list(tt) if tt is not None else None,
        [int(r["label"]) for r in records],
        int(pad),
    )


def length_batches(lengths: Sequence[int], tokens_per_batch: int) -> list[list[int]]:
    """Indices grouped into batches, longest first; each batch's ``len * max_len`` fits the budget
    (a single example longer than the budget forms its own batch)."""
    if tokens_per_batch < 1:
        raise ValueError("tokens_per_batch must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]  # longest in batch comes first
        if current and (len(current) + 1) * width > tokens_per_batch:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(enc: Encoded, indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """Right-padded tensors for ``indices``: input_ids, attention_mask, (token_type_ids), labels."""
    width = max(len(enc.input_ids[i]) for i in indices)
    n = len(indices)
    ids = torch.full((n, width), enc.pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    tt = torch.zeros((n, width), dtype=torch.long) if enc.token_type_ids is not None else None
    for row, i in enumerate(indices):
        k = len(enc.input_ids[i])
        ids[row, :k] = torch.tensor(enc.input_ids[i])
        mask[row, :k] = 1
        if tt is not None:
            tt[row, :k] = torch.tensor(enc.token_type_ids[i])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": torch.tensor([enc.labels[i] for i in indices]),
    }
    if tt is not None:
        batch["token_type_ids"] = tt
    return batch


def make_batches(enc: Encoded, tokens_per_batch: int) -> list[dict[str, torch.Tensor]]:
    """All examples of ``enc`` as length-sorted token-budget batches (CPU tensors)."""
    lengths = [len(x) for x in enc.input_ids]
    return [collate(enc, b) for b in length_batches(lengths, tokens_per_batch)]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's (first) parameters."""
    return next(model.parameters()).device


def inputs_and_labels_on(
    batch: dict[str, torch.Tensor], device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A collated batch moved to ``device`` and split: (model inputs: every tensor but
    ``labels``, labels [B])."""
    inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "labels"}
    return inputs, batch["labels"].to(device, non_blocking=True)
