"""Task data in one canonical form, whatever its origin.

A task's data lives in its results folder as

* ``train.jsonl`` and ``validation.jsonl``: one ``{"premise": str, "hypothesis": str,
  "label": int}`` object per line, ``label`` an index into ``label_names``;
* ``meta.json``: ``{"source", "origin", "label_names", "num_labels", "n_train", "n_validation",
  "fingerprints": {"train": sha256 hex of train.jsonl's bytes, "validation": ...}}``.

:func:`prepare_task_data` makes these from a task's ``data`` config block, which names one source:

* ``{"source": "glue", "name": "mnli", "validation_split": "validation_matched"}``: a GLUE task
  from the Hugging Face hub (needs the hub or a filled ``datasets`` cache);
* ``{"source": "local", "train": path, "validation": path, "format": "tsv"|"csv"|"jsonl"
  (optional, else from the suffix), "columns": {"premise": col, "hypothesis": col, "label": col},
  "label_names": [...]}``: files on disk;
* ``{"source": "synthetic", "n_train": int, "n_validation": int, "seed": int}``: the generated
  offline data set of :mod:`headplast.data.synthetic_nli`.

Every problem raises :class:`DataError` with a message that names the file, the column or the
config key, and says how to fix it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from headplast.io import iter_jsonl, write_json, write_jsonl

CANONICAL_KEYS = ("premise", "hypothesis", "label")
"""Keys of every record of a canonical split; ``label`` is an int index into the label names."""


@dataclass(frozen=True)
class GlueTask:
    """A GLUE sentence-pair task: the dataset columns that play premise and hypothesis, its number
    of labels, and the split its eval subset is drawn from."""

    columns: tuple[str, str]
    n_labels: int
    validation_split: str = "validation"


GLUE_TASKS: dict[str, GlueTask] = {
    "mnli": GlueTask(("premise", "hypothesis"), 3, "validation_matched"),
    "rte": GlueTask(("sentence1", "sentence2"), 2),
    "wnli": GlueTask(("sentence1", "sentence2"), 2),
    "qnli": GlueTask(("question", "sentence"), 2),
    "mrpc": GlueTask(("sentence1", "sentence2"), 2),
    "qqp": GlueTask(("question1", "question2"), 2),
}
"""The GLUE tasks the workflow runs: the one table that the config check (``data.name``), the
loader and the label count read. GLUE's single-sentence tasks (SST-2, CoLA) have no hypothesis
and are not among them."""

GLUE_SPLIT_SIZES: dict[str, dict[str, int]] = {
    "mnli": {"train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832},
    "rte": {"train": 2_490, "validation": 277},
    "wnli": {"train": 635, "validation": 71},
    "qnli": {"train": 104_743, "validation": 5_463},
    "mrpc": {"train": 3_668, "validation": 408},
    "qqp": {"train": 363_846, "validation": 40_430},
}
"""Labelled rows of each train and validation split of the tasks of :data:`GLUE_TASKS`, as
``nyu-mll/glue`` serves them (its dataset card on the Hugging Face hub; the test splits are
unlabelled and never read): what the cost plan (``python -m headplast.plan``) counts with before
the data is on disk. A table of its own, beside :data:`GLUE_TASKS` rather than in it, so that
no rule's code fingerprint (:mod:`headplast.pipeline.provenance`) reaches it: adding it reruns
nothing."""

FORMATS = ("tsv", "csv", "jsonl")
_HUB_ADVICE = (
    "`make demo` runs offline on generated data; to use GLUE without the hub, put the files on "
    "disk and use `source: local` with `train`, `validation` (paths), `columns` (premise, "
    "hypothesis, label -> the files' column names) and `label_names`"
)


class DataError(ValueError):
    """Task data is missing, malformed or inconsistent with its config."""


# ---------------------------------------------------------------------------------------------
# Hugging Face hub (GLUE)
# ---------------------------------------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"}


@contextlib.contextmanager
def _offline_from_env() -> Iterator[None]:
    """Honour HF_DATASETS_OFFLINE / HF_HUB_OFFLINE as set *now*, not only at import time.

    ``datasets`` and ``huggingface_hub`` read these variables once, when first imported; a caller
    that sets them later (a test, a Snakemake rule in a long-lived process) would otherwise make
    ``load_dataset`` retry the network for tens of seconds.
    """
    import datasets.config
    import huggingface_hub.constants

    if not (_env_true("HF_DATASETS_OFFLINE") or _env_true("HF_HUB_OFFLINE")):
        yield
        return
    saved = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def _hub_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the hub (or the dataset on it) could not be reached"."""
    errors: list[type[BaseException]] = [OSError]  # ConnectionError, TimeoutError, not found
    with contextlib.suppress(ImportError):
        from datasets.exceptions import DatasetNotFoundError

        errors.append(DatasetNotFoundError)
    with contextlib.suppress(ImportError):
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        errors += [HfHubHTTPError, OfflineModeIsEnabled]
    with contextlib.suppress(ImportError):
        import httpx

        errors.append(httpx.HTTPError)
    with contextlib.suppress(ImportError):
        import requests

        errors.append(requests.RequestException)
    return tuple(errors)


def load_glue(name: str, validation_split: str) -> tuple[list[dict], list[dict], list[str]]:
    """Load GLUE task ``name`` from ``nyu-mll/glue``: ``(train, validation, label_names)``.

    Records are canonical (premise, hypothesis, int label); unlabelled rows (label -1) are
    dropped. Raises :class:`DataError` for an unknown task or split, or when the hub cannot be
    reached and the dataset is not in the local ``datasets`` cache.
    """
    name = name.lower()
    if name not in GLUE_TASKS:
        raise DataError(
            f"data.name: GLUE task {name!r} is not a supported sentence-pair task; "
            f"use one of {sorted(GLUE_TASKS)}"
        )
    import datasets

    try:
        with _offline_from_env():
            ds = datasets.load_dataset("nyu-mll/glue", name)
    except _hub_errors() as err:
        raise DataError(
            f"nyu-mll/glue ({name}): the Hugging Face hub is unreachable and the dataset is not "
            f"cached ({type(err).__name__}: {err}). {_HUB_ADVICE}"
        ) from err
    for split in ("train", validation_split):
        if split not in ds:
            raise DataError(
                f"data.validation_split: nyu-mll/glue ({name}) has no split {split!r}; "
                f"splits: {sorted(ds)}"
            )
    label_names = list(ds["train"].features["label"].names)
    first, second = GLUE_TASKS[name].columns

    def rows(split: str) -> list[dict]:
        d = ds[split]
        return [
            {"premise": p, "hypothesis": h, "label": int(y)}
            for p, h, y in zip(d[first], d[second], d["label"], strict=True)
            if int(y) >= 0
        ]

    return rows("train"), rows(validation_split), label_names


# ---------------------------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------------------------


def _infer_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise DataError(f"data.format: {fmt!r} is not a known format; use one of {FORMATS}")
        return fmt.lower()
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise DataError(
        f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
        f"set data.format to one of {FORMATS}"
    )


def _read_table(path: Path, fmt: str) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    """Rows of a local file, its column names and each row's line number in the file."""
    if fmt == "jsonl":
        rows, lines, columns = [], [], {}
        for lineno, row in iter_jsonl(path, DataError):
            rows.append(row)
            lines.append(lineno)
            columns.update(dict.fromkeys(row))
        return rows, list(columns), lines
    sep = "\t" if fmt == "tsv" else ","
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
        )
    except pd.errors.EmptyDataError:
        return [], [], []
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as {fmt} ({err}); check data.format") from err
    rows = frame.to_dict("records")
    return rows, [str(c) for c in frame.columns], [i + 2 for i in range(len(rows))]


def _label_index(value: Any, label_names: Sequence[str]) -> int | None:
    """``value`` as a label index: a name in ``label_names`` or an int 0..len-1; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in label_names:
            return list(label_names).index(text)
        try:
            value = float(text) if text else None
        except ValueError:
            return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)  # 1.0: a label column that pandas or a spreadsheet wrote as floats
    if isinstance(value, int | np.integer) and 0 <= int(value) < len(label_names):
        return int(value)
    return None


def _load_local_split(
    path: Path, key: str, fmt: str | None, columns: dict[str, str], label_names: Sequence[str]
) -> list[dict]:
    if not path.exists():
        raise DataError(f"{path}: file not found (config key data.{key}); fix the path")
    fmt = _infer_format(path, fmt)
    rows, present, lines = _read_table(path, fmt)
    if not rows:
        raise DataError(f"{path}: the {key} split is empty (config key data.{key})")
    for role in CANONICAL_KEYS:
        col = columns[role]
        if col not in present:
            raise DataError(
                f"{path}: missing column {col!r} (the {role}, data.columns.{role}); "
                f"columns present: {present}"
            )
    out = []
    for row, lineno in zip(rows, lines, strict=True):
        for role in ("premise", "hypothesis"):
            if not isinstance(row.get(columns[role]), str):
                raise DataError(
                    f"{path}: line {lineno}: column {columns[role]!r} ({role}) has no text "
                    f"(got {row.get(columns[role])!r})"
                )
        raw = row.get(columns["label"])
        label = _label_index(raw, label_names)
        if label is None:
            raise DataError(
                f"{path}: line {lineno}: column {columns['label']!r} has label {raw!r}, not in "
                f"the label set; allowed: names {list(label_names)} or ints "
                f"0..{len(label_names) - 1} (data.label_names)"
            )
        out.append(
            {
                "premise": row[columns["premise"]],
                "hypothesis": row[columns["hypothesis"]],
                "label": label,
            }
        )
    return out


def load_local(
    train: str | os.PathLike,
    validation: str | os.PathLike,
    columns: dict[str, str] | None,
    label_names: list[str],
    fmt: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """Load local train/validation files into canonical records ``(train, validation)``.

    ``columns`` maps ``premise``, ``hypothesis`` and ``label`` to the files' column names (None:
    the files use those names). Labels in the files may be names from ``label_names`` or ints
    ``0..len(label_names)-1``. ``fmt`` is ``tsv``, ``csv`` or ``jsonl``; None infers it from
    each file's suffix. TSV is read without quote processing (GLUE's TSVs contain stray quotes).
    """
    columns = dict(columns) if columns is not None else {k: k for k in CANONICAL_KEYS}
    for role in CANONICAL_KEYS:
        if not isinstance(columns.get(role), str):
            raise DataError(
                f"data.columns.{role} is missing: map {list(CANONICAL_KEYS)} to the files' "
                f"column names (got {columns})"
            )
    if not label_names or not all(isinstance(n, str) for n in label_names):
        raise DataError(f"data.label_names must be a non-empty list of names, got {label_names!r}")
    if len(set(label_names)) != len(label_names):
        raise DataError(f"data.label_names has duplicates: {label_names}")
    return (
        _load_local_split(Path(train), "train", fmt, columns, label_names),
        _load_local_split(Path(validation), "validation", fmt, columns, label_names),
    )


# ---------------------------------------------------------------------------------------------
# Canonical files
# ---------------------------------------------------------------------------------------------


def file_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of the file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_task_data(
    spec: dict[str, Any],
    train_out: str | os.PathLike,
    validation_out: str | os.PathLike,
    meta_out: str | os.PathLike,
) -> dict[str, Any]:
    """Load the data that a task's ``data`` config block names; write the canonical
    ``train_out``/``validation_out`` JSONL and ``meta_out`` atomically (meta last); return meta.

    Long because it handles the three sources (glue, local, synthetic) in one place, each a few
    lines.
    """
    if not isinstance(spec, dict):
        raise DataError(f"data: expected a mapping with a `source` key, got {spec!r}")
    source = spec.get("source")
    if source == "glue":
        if "name" not in spec:
            raise DataError("data.name is missing: the GLUE task, e.g. mnli or rte")
        name = str(spec["name"]).lower()
        default = GLUE_TASKS[name].validation_split if name in GLUE_TASKS else "validation"
        split = spec.get("validation_split", default)  # an unknown name: load_glue names it
        train, validation, label_names = load_glue(name, split)
        origin = f"nyu-mll/glue {name}: train, {split}"
    elif source == "local":
        for key in ("train", "validation", "label_names"):
            if key not in spec:
                raise DataError(f"data.{key} is missing (required with source: local)")
        label_names = list(spec["label_names"])
        train, validation = load_local(
            spec["train"], spec["validation"], spec.get("columns"), label_names, spec.get("format")
        )
        origin = f"local: {spec['train']}, {spec['validation']}"
    elif source == "synthetic":
        from headplast.data.synthetic_nli import LABEL_NAMES, generate_nli

        try:
            n_train, n_val, seed = (int(spec[k]) for k in ("n_train", "n_validation", "seed"))
        except KeyError as err:
            raise DataError(
                f"data.{err.args[0]} is missing (required with source: synthetic)"
            ) from err
        train, validation = generate_nli(n_train, n_val, seed)
        label_names = list(LABEL_NAMES)
        origin = (
            f"headplast.data.synthetic_nli: n_train={n_train}, n_validation={n_val}, seed={seed}"
        )
    else:
        raise DataError(f"data.source: {source!r} is not one of 'glue', 'local', 'synthetic'")
    for split_name, records in (("train", train), ("validation", validation)):
        if not records:
            raise DataError(f"{origin}: the {split_name} split is empty")
    write_jsonl(train_out, train)
    write_jsonl(validation_out, validation)
    meta = {
        "source": source,
        "origin": origin,
        "label_names": label_names,
        "num_labels": len(label_names),
        "n_train": len(train),
        "n_validation": len(validation),
        "fingerprints": {
            "train": file_fingerprint(train_out),
            "validation": file_fingerprint(validation_out),
        },
    }
    write_json(meta_out, meta)
    return meta


def read_split(path: str | os.PathLike) -> list[dict]:
    """Read a canonical split written by :func:`prepare_task_data`."""
    out = []
    for lineno, row in iter_jsonl(path, DataError):
        missing = [k for k in CANONICAL_KEYS if k not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing key(s) {missing}; present: {list(row)}")
        if not isinstance(row["label"], int) or isinstance(row["label"], bool):
            raise DataError(f"{path}:{lineno}: label {row['label']!r} is not an int")
        out.append({k: row[k] for k in CANONICAL_KEYS})
    return out
