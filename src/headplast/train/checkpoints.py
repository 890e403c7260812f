"""theta1 from an existing fine-tune: import a given checkpoint instead of training one.

A task with ``checkpoints: {final: <hub id or folder>, model: <models key>, label_map: {...}}``
is measured between theta0 (the model's pre-trained encoder plus the seed's classifier, as for
every task) and that checkpoint. ``import_final`` refuses a pair that is not the same network
(model type, layer/head layout, encoder parameter names and shapes, vocabulary), maps the
checkpoint's labels onto the task's label names and permutes the classifier's output rows so
that logit i is the task's label i, and saves theta1 where ``finetune`` would have.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headplast.data.batching import encode_pairs, make_batches
from headplast.data.tasks import file_fingerprint, read_split
from headplast.io import atomic_dir, read_json
from headplast.model.adapters import resolve_layout

log = logging.getLogger(__name__)

GENERIC_LABEL = re.compile(r"^label_\d+$", re.IGNORECASE)


class CheckpointMismatchError(ValueError):
    """theta0 and the given theta1 are not the same network, or their labels cannot be matched."""


def label_permutation(
    id2label: Mapping[int, str],
    task_labels: Sequence[str],
    label_map: Mapping[str, str] | None,
    source: str,
) -> list[int]:
    """``perm`` with ``perm[i]`` = the checkpoint's output index of the task's label ``i``.

    ``id2label`` is the checkpoint's config (index -> name). Without ``label_map`` its names are
    matched to ``task_labels`` case-insensitively; generic names (``LABEL_0``...), duplicate
    names and task labels the checkpoint lacks are refused. ``label_map`` maps every checkpoint
    label name to a task label name, one to one.
    """
    names = {int(k): str(v) for k, v in id2label.items()}
    n = len(names)
    where = f"checkpoint {source!r} (id2label {dict(sorted(names.items()))})"
    if sorted(names) != list(range(n)) or n != len(task_labels):
        raise CheckpointMismatchError(
            f"{where} has {n} labels; the task has {len(task_labels)} ({list(task_labels)})"
        )
    if label_map is not None:
        label_map = {str(k): str(v) for k, v in label_map.items()}
        unknown = sorted(set(label_map) - set(names.values()))
        unmapped = sorted(set(names.values()) - set(label_map))
        targets = list(label_map.values())
        bad_targets = sorted(set(targets) - set(task_labels))
        if unknown or unmapped or bad_targets or len(set(targets)) != len(targets):
            raise CheckpointMismatchError(
                f"`label_map` {label_map} for {where} must map each of its label names "
                f"{sorted(names.values())} to a different task label of {list(task_labels)}"
                + (f"; unknown names {unknown}" if unknown else "")
                + (f"; not mapped {unmapped}" if unmapped else "")
                + (f"; not task labels {bad_targets}" if bad_targets else "")
            )
        mapped = {i: label_map[name] for i, name in names.items()}
    else:
        generic = [v for v in names.values() if GENERIC_LABEL.match(v)]
        if generic:
            raise CheckpointMismatchError(
                f"{where}: generic label names {generic} say nothing about which label is which; "
                "give `checkpoints.label_map` (checkpoint label name -> task label name, from "
                "the checkpoint's model card)"
            )
        lower = [v.lower() for v in names.values()]
        if len(set(lower)) != n:
            raise CheckpointMismatchError(f"{where}: duplicate label names; give a `label_map`")
        by_name = {v.lower(): i for i, v in names.items()}
        missing = [t for t in task_labels if t.lower() not in by_name]
        if missing:
            raise CheckpointMismatchError(
                f"{where}: no label named {missing} (task labels {list(task_labels)}); "
                "give a `label_map`"
            )
        mapped = {by_name[t.lower()]: t for t in task_labels}
    inverse = {name: i for i, name in mapped.items()}
    return [inverse[t] for t in task_labels]


def classifier_output(model: nn.Module) -> nn.Linear:
    """The last linear layer outside the encoder with one output per label (BERT/DeBERTa
    ``classifier``, RoBERTa ``classifier.out_proj``)."""
    base = {id(m) for m in model.base_model.modules()}
    n = int(model.config.num_labels)
    found = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in base]
    found = [m for m in found if m.out_features == n]
    if not found:
        raise CheckpointMismatchError(
            f"{type(model).__name__}: no linear layer with {n} outputs outside the encoder"
        )
    return found[-1]


def check_same_network(theta0: nn.Module, theta1: nn.Module, name0: str, name1: str) -> None:
    """Refuse, naming both, a pair whose model type, layer/head layout or encoder parameters
    (names and shapes) differ."""
    pair = f"theta0 {name0!r} and theta1 {name1!r}"
    t0, t1 = theta0.config.model_type, theta1.config.model_type
    if t0 != t1:
        raise CheckpointMismatchError(f"{pair} are different model types: {t0} vs {t1}")
    l0, l1 = resolve_layout(theta0), resolve_layout(theta1)
    shape0 = (l0.n_layers, l0.n_heads, l0.head_dim)
    shape1 = (l1.n_layers, l1.n_heads, l1.head_dim)
    if shape0 != shape1:
        raise CheckpointMismatchError(
            f"{pair} have different layouts (layers, heads, head size): {shape0} vs {shape1}"
        )
    p0 = {k: tuple(v.shape) for k, v in theta0.base_model.state_dict().items()}
    p1 = {k: tuple(v.shape) for k, v in theta1.base_model.state_dict().items()}
    if p0 != p1:
        only0, only1 = sorted(set(p0) - set(p1)), sorted(set(p1) - set(p0))
        shapes = sorted(k for k in set(p0) & set(p1) if p0[k] != p1[k])
        raise CheckpointMismatchError(
            f"{pair} have different encoder parameters: only in theta0 {only0[:5]}, only in "
            f"theta1 {only1[:5]}, different shapes {[(k, p0[k], p1[k]) for k in shapes[:5]]}"
        )


def permute_labels(model: nn.Module, perm: Sequence[int], label_names: Sequence[str]) -> None:
    """In place: output row i becomes the checkpoint's row ``perm[i]``; id2label = task names."""
    head = classifier_output(model)
    index = torch.as_tensor(list(perm))
    with torch.no_grad():
        head.weight.copy_(head.weight[index].clone())
        if head.bias is not None:
            head.bias.copy_(head.bias[index].clone())
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {name: i for i, name in enumerate(label_names)}


def validation_metrics(
    model: nn.Module, tokenizer: Any, rows: Sequence[dict], max_length: int, tokens_per_batch: int
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``rows`` (the whole validation split)."""
    device = next(model.parameters()).device
    loss, correct = 0.0, 0
    with torch.no_grad():
        for batch in make_batches(encode_pairs(tokenizer, rows, max_length), tokens_per_batch):
            labels = batch.pop("labels").to(device)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float()
            loss += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
    return {"loss": loss / len(rows), "accuracy": correct / len(rows)}


def import_final(
    source: str | os.PathLike,
    init_dir: str | os.PathLike,
    meta_path: str | os.PathLike,
    validation_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    label_map: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
    max_length: int = 256,
    tokens_per_batch: int = 16384,
) -> dict[str, Any]:
    """Save the given fine-tune ``source`` (hub id or folder) as theta1 in ``out_dir``, its
    classifier rows in the task's label order (``meta_path``'s ``label_names``), with theta0's
    tokenizer, atomically. Returns the run record: where theta1 came from, the label mapping
    and the validation metrics of theta0 and theta1 on the task's validation split.

    Long because its run record is one literal.
    """
    from headplast.model.loading import load_model, load_tokenizer, prepare_padding
    from headplast.model.precision import pick_device
    from headplast.train.finetune import package_versions

    init_dir, source = Path(init_dir), os.fspath(source)
    label_names = [str(x) for x in read_json(meta_path)["label_names"]]
    theta0 = load_model(init_dir)
    theta1 = load_model(source, trust_remote_code=trust_remote_code)
    check_same_network(theta0, theta1, os.fspath(init_dir), source)
    tokenizer = load_tokenizer(init_dir)
    try:
        own = load_tokenizer(source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # a checkpoint without tokenizer files: theta0's is used anyway
        log.warning("%s: no tokenizer (%s); using theta0's", source, exc)
        own = None
    if own is not None and own.get_vocab() != tokenizer.get_vocab():
        raise CheckpointMismatchError(
            f"theta0 {os.fspath(init_dir)!r} and theta1 {source!r} have different vocabularies"
        )
    for change in prepare_padding(tokenizer, theta1):  # theta0's tokenizer pads theta1's inputs
        log.info("theta1 padding: %s", change)
    id2label = dict(theta1.config.id2label)
    perm = label_permutation(id2label, label_names, label_map, source)
    permute_labels(theta1, perm, label_names)

    device = pick_device()
    rows = read_split(validation_path)
    metrics = {
        name: validation_metrics(m.to(device).eval(), tokenizer, rows, max_length, tokens_per_batch)
        for name, m in (("theta0", theta0), ("theta1", theta1))
    }
    with atomic_dir(out_dir) as tmp:
        theta1.to("cpu").save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    log.info("theta1 from %s, labels %s -> %s: %s", source, id2label, label_names, metrics)
    return {
        "theta1_source": source,
        "imported": True,
        "checkpoint_id2label": {str(k): v for k, v in sorted(id2label.items())},
        "label_map": dict(label_map) if label_map is not None else None,
        "label_names": label_names,
        "label_permutation": perm,
        "model_type": theta1.config.model_type,
        "num_labels": len(label_names),
        "init_dir": os.fspath(init_dir),
        "init_model_sha256": file_fingerprint(init_dir / "model.safetensors"),
        "final_model_sha256": file_fingerprint(Path(out_dir) / "model.safetensors"),
        "max_length": int(max_length),
        "device": device.type,
        "validation": metrics,
        "versions": package_versions(),
    }
