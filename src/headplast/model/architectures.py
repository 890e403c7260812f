"""Models built from their architecture alone, with random weights and no download.

:data:`KNOWN_ARCHITECTURES` holds the ``config.json`` fields that decide the network of a few
reference models (encoders of the DeBERTa and BERT families, ModernBERT-base, and the decoders
Qwen2.5-0.5B and Llama-3.2-1B with grouped-query attention); :func:`build_model` builds the
sequence-classification model of such fields on any device (``meta`` for counting operations and
memory, a GPU for timing it), :func:`tiny_fields` a tiny version of them that keeps the family's
features (grouped key/value heads, local and global layers, rotary scaling, the pooling) for CPU
smoke tests. The cost plan (:mod:`headplast.plan`) and ``make bench-gpu``
(:mod:`headplast.bench.gpu`, ``--arch``) both build their models here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: ``config.json`` fields (those that decide the network's shape) of reference models, as the
#: Hugging Face hub serves them (each model's ``config.json``, read 2026-12; the older hub
#: spellings, e.g. ``rope_theta`` and ``rope_scaling``, which transformers 5 reads into
#: ``rope_parameters``). Hub ids and their short names (:data:`ARCHITECTURE_ALIASES`) both point
#: here. ``tie_word_embeddings`` ties an input embedding to a language-model head that sequence
#: classification does not have: it changes nothing here.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "microsoft/deberta-v3-base": {
        "model_type": "deberta-v2",
        "vocab_size": 128100,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 0,
        "layer_norm_eps": 1e-7,
        "relative_attention": True,
        "position_buckets": 256,
        "max_relative_positions": -1,
        "pos_att_type": "p2c|c2p",
        "share_att_key": True,
        "norm_rel_ebd": "layer_norm",
        "position_biased_input": False,
        "pad_token_id": 0,
    },
    "google-bert/bert-base-uncased": {
        "model_type": "bert",
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    },
    "FacebookAI/roberta-base": {
        "model_type": "roberta",
        "vocab_size": 50265,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "layer_norm_eps": 1e-5,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    },
    "sentence-transformers/all-MiniLM-L6-v2": {
        "model_type": "bert",
        "vocab_size": 30522,
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    },
    "microsoft/MiniLM-L12-H384-uncased": {
        "model_type": "bert",
        "vocab_size": 30522,
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    },
    # ModernBERT-base: https://huggingface.co/answerdotai/ModernBERT-base/blob/main/config.json
    # (the values also are transformers' ModernBertConfig defaults, whose docstring names this
    # checkpoint, except classifier_pooling: the checkpoint's is "mean"; tests/test_plan.py
    # compares them). 22 layers x 12 heads of 64; every third layer (0, 3, ..., 21) global
    # attention with rotary base 160,000, the others local (a window of 128 tokens: 64 either
    # side) with base 10,000; GeGLU feed-forward (Wi: 768 -> 2 x 1,152).
    "answerdotai/ModernBERT-base": {
        "model_type": "modernbert",
        "vocab_size": 50368,
        "hidden_size": 768,
        "num_hidden_layers": 22,
        "num_attention_heads": 12,
        "intermediate_size": 1152,
        "hidden_activation": "gelu",
        "max_position_embeddings": 8192,
        "norm_eps": 1e-5,
        "norm_bias": False,
        "attention_bias": False,
        "mlp_bias": False,
        "decoder_bias": True,
        "global_attn_every_n_layers": 3,
        "local_attention": 128,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
        "classifier_pooling": "mean",
        "classifier_activation": "gelu",
        "classifier_bias": False,
        "pad_token_id": 50283,
        "bos_token_id": 50281,
        "eos_token_id": 50282,
        "cls_token_id": 50281,
        "sep_token_id": 50282,
    },
    # Qwen2.5-0.5B: https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json (read from
    # public copies of that file found by a code search, which agree: a loader's debug dump of
    # its config.json, verl training logs printing the loaded config and "494.03M parameters";
    # 494.0M here, tests/test_plan.py). 24 layers x 14 query heads of 64 and 2 key/value
    # heads (groups of 7); q/k/v projections with biases (Qwen2's code, no config key); SwiGLU;
    # no config pad_token_id: the tokenizer pads with <|endoftext|>, the eos id 151643.
    "Qwen/Qwen2.5-0.5B": {
        "model_type": "qwen2",
        "vocab_size": 151936,
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": 24,
        "tie_word_embeddings": True,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
    },
    # Llama-3.2-1B: https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json (gated;
    # values as public copies print it, e.g. kevinstephano/thunder_model_blocks
    # hf_llama/llama_config.py, whose -Instruct variant has the same architecture; 1,235.8M
    # parameters, the model card's 1.23B, tests/test_plan.py). 16 layers x 32 query heads of 64
    # and 8 key/value heads (groups of 4); llama3 rotary scaling; SwiGLU; no pad token (the
    # workflow pads with the eos token <|end_of_text|>, 128001:
    # headplast.model.loading.prepare_padding).
    "meta-llama/Llama-3.2-1B": {
        "model_type": "llama",
        "vocab_size": 128256,
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "intermediate_size": 8192,
        "hidden_act": "silu",
        "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "attention_bias": False,
        "mlp_bias": False,
        "pretraining_tp": 1,
        "tie_word_embeddings": True,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
    },
}
#: Other names of the models of :data:`KNOWN_ARCHITECTURES` (the hub's older short ids and
#: the short names of the newer models).
ARCHITECTURE_ALIASES: dict[str, str] = {
    "deberta-v3-base": "microsoft/deberta-v3-base",
    "bert-base-uncased": "google-bert/bert-base-uncased",
    "roberta-base": "FacebookAI/roberta-base",
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "ModernBERT-base": "answerdotai/ModernBERT-base",
    "Qwen2.5-0.5B": "Qwen/Qwen2.5-0.5B",
    "Llama-3.2-1B": "meta-llama/Llama-3.2-1B",
}

#: ``config.json`` keys that describe a checkpoint rather than the network's shape.
NOT_SHAPE: tuple[str, ...] = (
    "architectures",
    "id2label",
    "label2id",
    "torch_dtype",
    "dtype",
    "_name_or_path",
    "transformers_version",
)

#: The shape of :func:`tiny_fields` (as :data:`headplast.model.tiny.TINY`): 3 layers x 4 heads of
#: 8, feed-forward 64, vocabulary 128, 64 positions.
TINY_SHAPE: dict[str, int] = {
    "num_hidden_layers": 3,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 128,
    "max_position_embeddings": 64,
}
#: Special token ids of a tiny model, inside its vocabulary (padding 0, as the tests' batches).
TINY_TOKEN_IDS: dict[str, int] = {
    "pad_token_id": 0,
    "bos_token_id": 1,
    "cls_token_id": 1,
    "eos_token_id": 2,
    "sep_token_id": 2,
}


def known_architecture(name: str) -> dict[str, Any]:
    """A copy of the fields of ``name`` (a key of :data:`KNOWN_ARCHITECTURES` or an alias);
    KeyError naming the known ones otherwise."""
    key = ARCHITECTURE_ALIASES.get(name, name)
    if key not in KNOWN_ARCHITECTURES:
        known = ", ".join([*KNOWN_ARCHITECTURES, *ARCHITECTURE_ALIASES])
        raise KeyError(f"no known architecture {name!r}; known: {known}")
    fields = KNOWN_ARCHITECTURES[key]
    return {k: dict(v) if isinstance(v, dict) else v for k, v in fields.items()}


def tiny_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` shrunk to :data:`TINY_SHAPE`, keeping what makes the family itself: grouped
    key/value heads stay grouped (2 for the 4 query heads), ModernBERT keeps its global and local
    layers (a window of 4 tokens, as :data:`headplast.model.tiny.MODERNBERT_ATTENTION`), rotary
    bases and scaling, DeBERTa its relative attention (16 buckets), the pooling and every other
    setting stay as they are; special token ids move inside the tiny vocabulary."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in fields.items()}
    out.update(TINY_SHAPE)
    heads = TINY_SHAPE["num_attention_heads"]
    if "num_key_value_heads" in fields:
        grouped = int(fields["num_key_value_heads"]) < int(fields["num_attention_heads"])
        out["num_key_value_heads"] = 2 if grouped else heads
    if "head_dim" in fields:
        out["head_dim"] = TINY_SHAPE["hidden_size"] // heads
    if "local_attention" in fields:
        out["local_attention"] = 4
    if "position_buckets" in fields:
        out["position_buckets"] = 16
    if "embedding_size" in fields:
        out["embedding_size"] = 16
    scaling = out.get("rope_scaling")
    if isinstance(scaling, dict) and "original_max_position_embeddings" in scaling:
        # must stay below max_position_embeddings (transformers checks it)
        scaling["original_max_position_embeddings"] = TINY_SHAPE["max_position_embeddings"] // 2
    for key in ("sliding_window", "max_window_layers"):
        if key in fields and fields[key] is not None:
            out[key] = min(int(fields[key]), TINY_SHAPE["max_position_embeddings"])
    for key, value in TINY_TOKEN_IDS.items():
        if key in fields or key == "pad_token_id":
            out[key] = value
    return out


def model_config(fields: dict[str, Any], num_labels: int) -> Any:
    """The transformers config of ``fields`` with ``num_labels`` classes, padded as the workflow
    pads: a family whose task head reads the last non-padding token (decoders) gets the
    end-of-sequence id as ``pad_token_id`` where the fields give none and no key/value cache, as
    :func:`headplast.model.loading.prepare_padding` sets them for a tokenizer without a pad
    token (Llama 3; Qwen2.5's tokenizer pads with its end-of-sequence token too)."""
    from transformers import AutoConfig

    from headplast.model.adapters import adapter_for

    shape = {k: v for k, v in fields.items() if k not in NOT_SHAPE}
    model_type = shape.pop("model_type")
    if adapter_for(model_type).pooling == "last":
        if shape.get("pad_token_id") is None:
            eos = shape.get("eos_token_id")
            shape["pad_token_id"] = eos[0] if isinstance(eos, list) else eos
        shape["use_cache"] = False
    return AutoConfig.for_model(model_type, **shape, num_labels=num_labels)


def build_model(
    fields: dict[str, Any],
    num_labels: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    attn_implementation: str | None = None,
) -> nn.Module:
    """``<family>ForSequenceClassification`` of ``fields`` (:func:`model_config`) with random
    weights initialised from ``seed`` directly on ``device`` (``meta``: shapes without data or
    memory), in eval mode. ``attn_implementation`` as transformers takes it (default: its own,
    SDPA where the family has it)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    config = model_config(fields, num_labels)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    torch.manual_seed(seed)
    try:
        with torch.device(device):
            model = AutoModelForSequenceClassification.from_config(config)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval()
