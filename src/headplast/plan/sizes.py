"""The sizes a cost plan counts with: each model's architecture, each task's rows and tokens.

Architecture (layers, hidden size, heads, feed-forward size, vocabulary: the ``config.json``
fields a model is built from) without a hub download, from the first that has it:

1. the ``config.json`` of a local model folder (``package:<module>/<dir>`` resolved as the
   workflow resolves it);
2. the Hugging Face hub cache (``huggingface_hub.try_to_load_from_cache``: offline, no request);
3. :data:`KNOWN_ARCHITECTURES` (:mod:`headplast.model.architectures`, where ``make bench-gpu``
   builds its models too), the ``config.json`` of a few reference models as the hub serves them.

Rows, per task (:class:`TaskSizes`): generated data from its config (``n_train``,
``n_validation``), local files by counting their rows, GLUE from the prepared data of an earlier
run (``results/data/<task>/meta.json``) or the ``datasets`` cache (``dataset_info.json``), else
:data:`headplast.data.tasks.GLUE_SPLIT_SIZES`. The selection rows
(:func:`headplast.data.selection.selection_size`), ``max_train_samples`` and the eval subset are
applied as the rules apply them.

Tokens per example (:func:`tokens_per_example`): ``max`` (default) counts every example at
``max_length``, an upper bound (fine-tuning and measuring pad a batch only to its longest
example); ``data`` the mean length of a sample of the task's rows with the model's tokenizer,
where rows and tokenizer are on disk; a number is taken as the mean.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headplast.data.selection import selection_size
from headplast.data.tasks import GLUE_SPLIT_SIZES, GLUE_TASKS, read_split
from headplast.model.architectures import ARCHITECTURE_ALIASES, KNOWN_ARCHITECTURES

#: Labels of the generated NLI data (``source: synthetic``), as rules/common.smk declares them.
SYNTHETIC_NUM_LABELS = 3
#: Rows sampled per task for ``--length data`` (seeded; the mean of their token counts).
TOKEN_SAMPLE = 2000
LENGTH_MODES = ("max", "data")


class PlanInputError(ValueError):
    """An option or config value the plan cannot work with; the message names it."""


@dataclass(frozen=True)
class Architecture:
    """A model's ``config.json`` fields (``config``) and where they came from (``source``)."""

    name_or_path: str
    config: dict[str, Any]
    source: str

    @property
    def n_layers(self) -> int:
        return int(self.config["num_hidden_layers"])

    @property
    def n_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.config["num_attention_heads"])

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads per layer (grouped-query attention: fewer than :attr:`n_heads`)."""
        return int(self.config.get("num_key_value_heads") or self.n_heads)

    @property
    def hidden(self) -> int:
        return int(self.config["hidden_size"])

    @property
    def vocab(self) -> int:
        return int(self.config["vocab_size"])

    def describe(self) -> str:
        """One line: layers x heads, hidden size, vocabulary, and the source."""
        kv = f" ({self.n_kv_heads} key/value)" if self.n_kv_heads != self.n_heads else ""
        return (
            f"{self.config['model_type']}, {self.n_layers} layers x {self.n_heads} heads{kv}, "
            f"hidden {self.hidden}, vocabulary {self.vocab:,} ({self.source})"
        )


def resolve_model_path(name: str, workdir: Path | None = None) -> str:
    """A config's ``name_or_path`` as the workflow resolves it: ``package:<module>/<dir>`` is that
    folder of an installed Python package; a folder relative to the working directory
    ``workdir`` that exists there, that folder; anything else (a hub id) as it is."""
    if not name.startswith("package:"):
        local = Path(workdir or ".") / Path(name).expanduser()
        return str(local) if local.is_dir() else name
    pkg, _, sub = name[len("package:") :].partition("/")
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise PlanInputError(
            f"config key `models.*.name_or_path` is {name!r}, but the Python package {pkg!r} is "
            "not installed"
        )
    return str(Path(list(spec.submodule_search_locations)[0]) / sub)


def _cached_config(repo_id: str) -> str | None:
    """The hub cache's ``config.json`` of ``repo_id``, or None (never a network request)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        path = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id (a path that does not exist, say)
        return None
    return path if isinstance(path, str) else None


def architecture(name_or_path: str, workdir: Path | None = None) -> Architecture:
    """The architecture of a config's model (``models.<m>.name_or_path``): from a local folder
    (relative to ``workdir``), the hub cache or :data:`KNOWN_ARCHITECTURES`, in that order."""
    path = resolve_model_path(name_or_path, workdir)
    local = Path(path) / "config.json"
    if local.is_file():
        return Architecture(name_or_path, json.loads(local.read_text()), f"{local}")
    cached = _cached_config(path)
    if cached is not None:
        return Architecture(name_or_path, json.loads(Path(cached).read_text()), "hub cache")
    known = ARCHITECTURE_ALIASES.get(path, path)
    if known in KNOWN_ARCHITECTURES:
        return Architecture(name_or_path, dict(KNOWN_ARCHITECTURES[known]), "built-in table")
    raise PlanInputError(
        f"model {name_or_path!r}: no local folder with a config.json, not in the Hugging Face "
        f"hub cache, and not among the known architectures ({', '.join(KNOWN_ARCHITECTURES)}); "
        "give `models.*.name_or_path` as a local folder, or download it once "
        "(huggingface-cli download <id> config.json)"
    )


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSizes:
    """The rows one task's jobs read (counts of examples).

    ``n_train_split`` / ``n_validation``: rows of the task's train / validation split;
    ``n_selection``: the selection rows that choose theta1 and stop the probe (from
    ``selection_split``); ``n_train``: the rows each fine-tune trains on (the train split less
    the selection rows, then at most ``max_train_samples``); ``n_probe_train``: the rows the
    probe fits on (likewise, at most ``probe.max_train_samples``); ``n_eval``: the eval subset
    every measure reads; ``num_labels``; ``source``: where the split sizes came from."""

    task: str
    n_train_split: int
    n_validation: int
    n_selection: int
    selection_split: str
    n_train: int
    n_probe_train: int
    n_eval: int
    num_labels: int
    source: str


def _count_rows(path: Path) -> int:
    """Non-empty lines of a JSONL file."""
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _datasets_cache_sizes(name: str) -> dict[str, int] | None:
    """Split sizes of GLUE task ``name`` from the ``datasets`` cache's ``dataset_info.json``
    (the folder ``load_dataset("nyu-mll/glue", name)`` fills), or None."""
    root = os.environ.get("HF_DATASETS_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "datasets"
    )
    for info in sorted(glob.glob(os.path.join(root, "nyu-mll___glue", name, "*", "*", "*.json"))):
        if not info.endswith("dataset_info.json"):
            continue
        splits = json.loads(Path(info).read_text()).get("splits") or {}
        sizes = {k: int(v["num_examples"]) for k, v in splits.items() if "num_examples" in v}
        if sizes:
            return sizes
    return None


def split_sizes(task: str, data: dict[str, Any], workdir: Path) -> tuple[int, int, str]:
    """(train rows, validation rows, where from) of a task's ``data:`` block."""
    source = data["source"]
    if source == "synthetic":
        return int(data["n_train"]), int(data["n_validation"]), "generated (config)"
    if source == "local":
        train, validation = (workdir / data[k] for k in ("train", "validation"))
        if train.suffix == ".jsonl" and validation.suffix == ".jsonl":
            return _count_rows(train), _count_rows(validation), "local files"
        from headplast.data.tasks import load_local

        rows = load_local(
            train, validation, data.get("columns"), list(data["label_names"]), data.get("format")
        )
        return len(rows[0]), len(rows[1]), "local files"
    name = str(data["name"]).lower()
    split = data.get("validation_split") or GLUE_TASKS[name].validation_split
    meta_path = workdir / "results" / "data" / task / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("origin") == f"nyu-mll/glue {name}: train, {split}":
            return int(meta["n_train"]), int(meta["n_validation"]), f"prepared ({meta_path})"
    cached = _datasets_cache_sizes(name)
    if cached and "train" in cached and split in cached:
        return cached["train"], cached[split], "datasets cache"
    known = GLUE_SPLIT_SIZES.get(name, {})
    if "train" not in known or split not in known:
        raise PlanInputError(
            f"config key `tasks.{task}.data`: no known size of GLUE {name} split {split!r} "
            f"(known: {', '.join(known) or 'none'})"
        )
    return known["train"], known[split], "nyu-mll/glue sizes"


def num_labels(data: dict[str, Any]) -> int:
    """Classes of a task, as the workflow builds its classifier."""
    if data["source"] == "glue":
        return GLUE_TASKS[str(data["name"]).lower()].n_labels
    if data["source"] == "local":
        return len(data["label_names"])
    return SYNTHETIC_NUM_LABELS


def task_sizes(config: dict[str, Any], task: str, workdir: Path) -> TaskSizes:
    """The rows of ``task`` in ``config`` (defaults filled, as the workflow validates it)."""
    spec = config["tasks"][task]
    n_train_split, n_val, source = split_sizes(task, spec["data"], workdir)
    selection = {**config["selection"], **spec.get("selection", {})}
    if selection["split"] == "train":
        n_sel = selection_size(n_train_split, selection["fraction"], selection["max_examples"])
        left = n_train_split - n_sel
    else:
        n_sel, left = n_val, n_train_split
    cap = (spec.get("train") or {}).get("max_train_samples")
    probe_cap = config["probe"].get("max_train_samples")
    size = config["eval_subset"]["size"]
    if size != "all" and int(size) > n_val:
        raise PlanInputError(
            f"config key `eval_subset.size` is {size}, more than the {n_val:,} validation rows "
            f"of task {task}"
        )
    return TaskSizes(
        task=task,
        n_train_split=n_train_split,
        n_validation=n_val,
        n_selection=n_sel,
        selection_split=selection["split"],
        n_train=min(left, int(cap)) if cap else left,
        n_probe_train=min(left, int(probe_cap)) if probe_cap else left,
        n_eval=n_val if size == "all" else int(size),
        num_labels=num_labels(spec["data"]),
        source=source,
    )


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------


def _rows_on_disk(task: str, data: dict[str, Any], workdir: Path) -> list[dict] | None:
    """The task's canonical train and validation rows where they are on disk, else None."""
    prepared = workdir / "results" / "data" / task
    if (prepared / "train.jsonl").is_file() and (prepared / "validation.jsonl").is_file():
        return read_split(prepared / "train.jsonl") + read_split(prepared / "validation.jsonl")
    if data["source"] == "local":
        from headplast.data.tasks import load_local

        train, val = load_local(
            workdir / data["train"],
            workdir / data["validation"],
            data.get("columns"),
            list(data["label_names"]),
            data.get("format"),
        )
        return train + val
    return None


def _local_tokenizer(model_path: str) -> Any | None:
    """The model's tokenizer from a local folder or the hub cache (offline), or None."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    except (OSError, ValueError):
        return None


def tokens_per_example(
    mode: str, max_length: int, task: str, data: dict[str, Any], model_path: str, workdir: Path
) -> tuple[int, str]:
    """(tokens per example the FLOPs are counted at, what that number is).

    ``mode`` ``max``: ``max_length`` (an upper bound); a number: that mean, at most
    ``max_length``; ``data``: the mean token count (truncated at ``max_length``) of
    :data:`TOKEN_SAMPLE` seeded rows of the task with the model's tokenizer, or ``max_length``
    with the reason where rows or tokenizer are not on disk."""
    if mode == "max":
        return max_length, "max_length bound"
    if mode != "data":
        try:
            mean = int(mode)
        except ValueError:
            raise PlanInputError(
                f"--length {mode!r}: give max, data or a number of tokens per example"
            ) from None
        if mean < 1:
            raise PlanInputError(f"--length {mode}: must be at least 1 token")
        return min(mean, max_length), "given mean (--length)"
    rows = _rows_on_disk(task, data, workdir)
    tokenizer = _local_tokenizer(model_path) if rows else None
    if not rows or tokenizer is None:
        why = "no rows on disk" if not rows else "no local tokenizer"
        return max_length, f"max_length bound ({why} for --length data)"
    sample = random.Random(0).sample(rows, min(TOKEN_SAMPLE, len(rows)))
    enc = tokenizer(
        [r["premise"] for r in sample],
        [r["hypothesis"] for r in sample],
        truncation=True,
        max_length=max_length,
    )
    mean = sum(len(ids) for ids in enc["input_ids"]) / len(sample)
    return max(1, round(mean)), f"mean of {len(sample):,} rows"
