"""Tiny randomly initialised sequence-classification models built from configs (no download):
the one builder the tests, their fixtures and ``python -m headplast.bench --tiny`` use.

Every family shares the same small shape (:data:`TINY`: 3 layers x 4 heads of 8, vocabulary 128,
3 labels); ``deberta`` has DeBERTa-v3's attention (relative positions in log buckets, p2c and c2p,
shared keys, layer-normed relative embeddings, no absolute positions), so the real DeBERTa code
path runs without the 184M-parameter model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

TINY: dict[str, Any] = {
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "num_labels": 3,
}
"""The shape every tiny model shares (overridable per call)."""

DEBERTA_V3_ATTENTION: dict[str, Any] = {
    "relative_attention": True,
    "position_buckets": 16,
    "max_relative_positions": -1,
    "pos_att_type": ["p2c", "c2p"],
    "share_att_key": True,
    "norm_rel_ebd": "layer_norm",
    "position_biased_input": False,
    "type_vocab_size": 0,
}
"""DeBERTa-v3's attention settings, at a tiny number of position buckets."""


def tiny_model(family: str, seed: int = 0, **overrides: Any) -> nn.Module:
    """A ``<family>ForSequenceClassification`` (``bert``, ``deberta``, ``roberta``, ``electra``)
    of shape :data:`TINY` with ``overrides``, initialised from ``seed``, in eval mode."""
    import transformers as tf

    families = {
        "bert": (tf.BertConfig, tf.BertForSequenceClassification, {}),
        "deberta": (
            tf.DebertaV2Config,
            tf.DebertaV2ForSequenceClassification,
            DEBERTA_V3_ATTENTION,
        ),
        "roberta": (tf.RobertaConfig, tf.RobertaForSequenceClassification, {}),
        "electra": (tf.ElectraConfig, tf.ElectraForSequenceClassification, {"embedding_size": 16}),
    }
    if family not in families:
        raise ValueError(f"no tiny {family!r} model; families: {sorted(families)}")
    config_cls, model_cls, extra = families[family]
    torch.manual_seed(seed)
    return model_cls(config_cls(**{**TINY, **extra, **overrides})).eval()
