"""Token-budget batches for the measures: which examples share a batch, in which order, and the
padded tensors every measure reads (headplast.data.batching)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoTokenizer

from headplast.data.batching import (
    Encoded,
    collate,
    encode_pairs,
    inputs_and_labels_on,
    length_batches,
    make_batches,
    model_device,
)
from tests.make_tiny_model import minilm_dir

RECORDS = [
    {"premise": "a cat sat", "hypothesis": "a dog", "label": "1"},
    {"premise": "hello", "hypothesis": "the big world is here", "label": 2},
]


@pytest.fixture(scope="module")
def minilm():
    """The MiniLM (BERT word-piece) tokenizer the workflow tests ship, loaded once."""
    return AutoTokenizer.from_pretrained(minilm_dir())


def test_length_batches_longest_first_within_the_budget():
    """Lengths 3, 5, 5, 2, 4 and 10 tokens per batch: the two 5s fill exactly 2 * 5 = 10 (a batch
    that meets the budget exactly is kept), ties go by index, and each batch's width is its first
    (longest) example, so 4 and 3 share 2 * 4 = 8 tokens while a third example would need 12."""
    assert length_batches([3, 5, 5, 2, 4], 10) == [[1, 2], [4, 0], [3]]
    # one token more or less moves the cuts
    assert length_batches([3, 5, 5, 2, 4], 9) == [[1], [2], [4, 0], [3]]
    assert length_batches([3, 5, 5, 2, 4], 12) == [[1, 2], [4, 0, 3]]
    assert length_batches([2, 2, 2, 2], 8) == [[0, 1, 2, 3]]


def test_length_batches_lone_long_examples_and_edges():
    """An example longer than the budget forms its own batch (no empty batch before it); the
    smallest budget, 1 token, puts every length-1 example alone; no examples give no batches."""
    assert length_batches([20, 3, 30], 10) == [[2], [0], [1]]
    assert length_batches([1, 1], 1) == [[0], [1]]
    assert length_batches([], 10) == []
    with pytest.raises(ValueError, match="tokens_per_batch must be positive"):
        length_batches([1, 1], 0)


def test_collate_right_pads_to_the_widest_example_in_index_order():
    """Rows follow ``indices``; ids padded with the pad id, the mask 1 on real tokens only,
    segment ids padded with 0, and labels in row order, all int64."""
    enc = Encoded(
        input_ids=[[5, 6, 7], [8], [3, 4]],
        token_type_ids=[[0, 1, 1], [1], [0, 1]],
        labels=[2, 0, 1],
        pad_id=9,
    )
    batch = collate(enc, [1, 0])
    assert list(batch) == ["input_ids", "attention_mask", "labels", "token_type_ids"]
    assert batch["input_ids"].tolist() == [[8, 9, 9], [5, 6, 7]]
    assert batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert batch["token_type_ids"].tolist() == [[1, 0, 0], [0, 1, 1]]
    assert batch["labels"].tolist() == [0, 2]
    assert all(t.dtype == torch.long for t in batch.values())
    narrow = collate(enc, [2, 1])  # width 2: the widest of these two, not of the subset
    assert narrow["input_ids"].tolist() == [[3, 4], [8, 9]]
    assert narrow["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert narrow["token_type_ids"].tolist() == [[0, 1], [1, 0]]


def test_collate_without_segment_ids_has_no_token_type_key():
    enc = Encoded(input_ids=[[5, 6], [8]], token_type_ids=None, labels=[1, 0], pad_id=0)
    batch = collate(enc, [0, 1])
    assert list(batch) == ["input_ids", "attention_mask", "labels"]
    assert batch["input_ids"].tolist() == [[5, 6], [8, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]


def test_make_batches_cover_every_example_once():
    """Lengths 3, 1, 3, 2 and 6 tokens per batch: [0, 2] (2 * 3) then [3, 1] (2 * 2), each padded
    to its own width, so no example is padded to the subset's longest."""
    enc = Encoded(
        input_ids=[[1, 2, 3], [4], [5, 6, 7], [8, 9]],
        token_type_ids=None,
        labels=[0, 1, 2, 0],
        pad_id=0,
    )
    batches = make_batches(enc, 6)
    assert [b["input_ids"].tolist() for b in batches] == [
        [[1, 2, 3], [5, 6, 7]],
        [[8, 9], [4, 0]],
    ]
    assert [b["labels"].tolist() for b in batches] == [[0, 2], [0, 1]]


def test_encode_pairs_with_the_minilm_tokenizer(minilm):
    """[CLS] premise [SEP] hypothesis [SEP], truncated to ``max_length`` (the longer side is cut),
    segment ids 0 then 1, labels as ints (a string label too), and the tokenizer's pad id."""
    enc = encode_pairs(minilm, RECORDS, max_length=6)
    assert enc.input_ids == [[101, 1037, 4937, 102, 1037, 102], [101, 7592, 102, 1996, 2502, 102]]
    assert enc.token_type_ids == [[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]]
    assert enc.labels == [1, 2] and all(type(x) is int for x in enc.labels)
    assert enc.pad_id == 0 == minilm.pad_token_id
    full = encode_pairs(minilm, RECORDS, max_length=64)
    assert [len(x) for x in full.input_ids] == [8, 9]


def test_encode_pairs_pad_id_and_segment_ids_follow_the_tokenizer():
    """A tokenizer whose pad token is [UNK] (id 100) pads with 100; one without a pad token pads
    with 0; one that returns no segment ids (like RoBERTa's) gives ``token_type_ids = None``."""
    unk = AutoTokenizer.from_pretrained(minilm_dir(), pad_token="[UNK]")
    assert encode_pairs(unk, RECORDS, 16).pad_id == 100
    unk.pad_token = None
    assert unk.pad_token_id is None and encode_pairs(unk, RECORDS, 16).pad_id == 0
    plain = AutoTokenizer.from_pretrained(
        minilm_dir(), model_input_names=["input_ids", "attention_mask"]
    )
    enc = encode_pairs(plain, RECORDS, 6)
    assert enc.token_type_ids is None
    assert enc.input_ids[0] == [101, 1037, 4937, 102, 1037, 102]


def test_inputs_and_labels_on_and_model_device():
    """Everything but the labels goes to the model; the labels come back separately; the model's
    device is its first parameter's."""
    batch = {
        "input_ids": torch.tensor([[1, 2]]),
        "attention_mask": torch.tensor([[1, 1]]),
        "labels": torch.tensor([2]),
    }
    device = model_device(nn.Linear(2, 2))
    assert device == torch.device("cpu")
    inputs, labels = inputs_and_labels_on(batch, device)
    assert list(inputs) == ["input_ids", "attention_mask"]
    assert torch.equal(inputs["input_ids"], batch["input_ids"])
    assert torch.equal(inputs["attention_mask"], batch["attention_mask"])
    assert labels.tolist() == [2]
    # the tensors go to the device asked for (the meta device stands in for a GPU here)
    meta = torch.device("meta")
    inputs, labels = inputs_and_labels_on(batch, meta)
    assert {t.device for t in inputs.values()} == {meta} and labels.device == meta
