"""Tiny randomly initialised sequence-classification models built from configs (no download):
the one builder the tests, their fixtures and ``python -m headplast.bench --tiny`` use.

Every family shares the same small shape (:data:`TINY`: 3 layers x 4 heads of 8, vocabulary 128, 3
labels); ``deberta`` has DeBERTa-v3's attention (relative positions in log buckets, p2c and c2p,
shared keys, layer-normed relative embeddings, no absolute positions), so the real DeBERTa code path
runs without the 184M-parameter model. ``modernbert`` alternates global and local attention
(:data:`MODERNBERT_ATTENTION`: layers 0 and 2 global, layer 1 local, each token attending to the
tokens at most 2 positions away, so inputs of up to 12 tokens exercise it) with rotary positions;
``llama``, ``qwen2`` and ``mistral`` have grouped-query attention (:data:`GQA`: 2 key/value heads
for the 4 query heads); ``gpt2`` has its fused ``Conv1D`` attention. Token id 0 is the padding of
every family (the tests' batches pad with 0), which the decoders' heads need to find the last real
token.
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


MODERNBERT_ATTENTION: dict[str, Any] = {
    "global_attn_every_n_layers": 2,
    "local_attention": 4,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "cls_token_id": 1,
    "sep_token_id": 2,
}
"""ModernBERT at a tiny window: alternating global and local attention (``local_attention`` 4: keys
at most 2 positions from the query), special token ids inside the tiny vocabulary."""

GQA: dict[str, Any] = {"num_key_value_heads": 2, "pad_token_id": 0, "use_cache": False}
"""Grouped-query attention for the tiny decoders: 2 key/value heads, each read by 2 query heads;
pad token 0 and no key/value cache (as :func:`headplast.model.loading.prepare_padding` sets)."""


def tiny_model(family: str, seed: int = 0, **overrides: Any) -> nn.Module:
    """A ``<family>ForSequenceClassification`` (``bert``, ``deberta``, ``roberta``, ``electra``,
    ``modernbert``, ``llama``, ``qwen2``, ``mistral``, ``gpt2``) of shape :data:`TINY` with
    ``overrides``, initialised from ``seed``, in eval mode."""
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
        "modernbert": (
            tf.ModernBertConfig,
            tf.ModernBertForSequenceClassification,
            MODERNBERT_ATTENTION,
        ),
        "llama": (tf.LlamaConfig, tf.LlamaForSequenceClassification, GQA),
        "qwen2": (tf.Qwen2Config, tf.Qwen2ForSequenceClassification, GQA),
        "mistral": (tf.MistralConfig, tf.MistralForSequenceClassification, GQA),
        "gpt2": (
            tf.GPT2Config,
            tf.GPT2ForSequenceClassification,
            {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "use_cache": False}
            | {"n_inner": TINY["intermediate_size"]},
        ),
    }
    if family not in families:
        raise ValueError(f"no tiny {family!r} model; families: {sorted(families)}")
    config_cls, model_cls, extra = families[family]
    torch.manual_seed(seed)
    return model_cls(config_cls(**{**TINY, **extra, **overrides})).eval()
