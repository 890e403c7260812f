"""theta0: the pre-trained encoder plus a classifier head initialised from the seed, saved
before any update (``save_pretrained``, safetensors), with its tokenizer and the task's label
names."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from headplast.io import atomic_dir
from headplast.model.loading import ModelLoadError, load_model, load_tokenizer, prepare_padding
from headplast.train.finetune import package_versions

log = logging.getLogger(__name__)


def _label_maps(num_labels: int, label_names: Sequence[str] | None) -> dict[str, dict]:
    """id2label/label2id for the model config: the task's label names, in label-index order."""
    if label_names is None:
        return {}
    names = [str(n) for n in label_names]
    if len(names) != int(num_labels) or len(set(names)) != len(names):
        raise ValueError(
            f"label names {names} do not name the {num_labels} labels of the task once each "
            "(data.label_names in the config, label_names in the task's meta.json)"
        )
    return {
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
    }


def init_checkpoint(
    name_or_path: str | os.PathLike,
    num_labels: int,
    seed: int,
    out_dir: str | os.PathLike,
    trust_remote_code: bool = False,
    *,
    label_names: Sequence[str] | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Save theta0 (pre-trained encoder + classifier head initialised from ``seed``) and the
    tokenizer to ``out_dir``, atomically. Returns a summary of the model.

    ``label_names`` (label index order) become the config's id2label/label2id, so theta0 and
    the theta1 trained from it name their labels. ``max_length`` (the config key) is checked
    against the longest input the model can embed, before anything is written.

    Long because its summary record is one literal.
    """
    from transformers import set_seed

    from headplast.model.adapters import check_max_length, max_input_length, resolve_layout

    labels = _label_maps(num_labels, label_names)
    tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code)
    set_seed(int(seed))
    model, info = load_model(
        name_or_path,
        num_labels,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
        **labels,
    )
    resolve_layout(model)  # an unknown attention layout fails here, not after fine-tuning
    for change in prepare_padding(tokenizer, model):  # decoders: the head finds the last token
        log.info("padding: %s", change)
    vocab = getattr(model.config, "vocab_size", None)
    if vocab is not None and len(tokenizer) > int(vocab):
        raise ModelLoadError(
            f"{name_or_path}: the tokenizer has {len(tokenizer)} tokens but the model embeds only "
            f"{vocab} (config.json vocab_size); the tokenizer files belong to another model"
        )
    if max_length is not None:
        check_max_length(model.config, max_length)  # not at a long input mid-training
    new_keys = sorted(info.get("missing_keys", []))
    log.info("freshly initialised from seed %d: %s", seed, new_keys)
    cfg = model.config
    summary = {
        "source": os.fspath(name_or_path),
        "seed": int(seed),
        "num_labels": int(num_labels),
        "id2label": {int(k): v for k, v in cfg.id2label.items()},
        "max_input_length": max_input_length(cfg),
        "model_type": cfg.model_type,
        "architecture": type(model).__name__,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "num_hidden_layers": getattr(cfg, "num_hidden_layers", None),
        "num_attention_heads": getattr(cfg, "num_attention_heads", None),
        "newly_initialized": new_keys,
        "unexpected_keys": sorted(info.get("unexpected_keys", [])),
        "mismatched_keys": [list(map(str, k)) for k in info.get("mismatched_keys", [])],
        "versions": package_versions(),
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if not (tmp / "model.safetensors").exists():
            raise RuntimeError(f"save_pretrained wrote no single model.safetensors in {out_dir}")
    return summary
