"""Atomic file writing and validated reading of the per-head JSONL files.

Every artifact is written to a temporary name in the same folder and renamed into place, so a job
killed mid-way leaves nothing that a later rule would read as complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class ArtifactError(ValueError):
    """An input artifact is missing, truncated or malformed."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the target's own suffix, so writers that infer a format from the file
    name (matplotlib, pandas) still see ``.png`` or ``.csv``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=(path.suffix if suffix is None else suffix), dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; swap it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN/inf are rejected (not valid JSON)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with an error that names the file when it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ArtifactError(
            f"{path}: not valid JSON ({err}); delete it and rerun the rule"
        ) from err


def read_csv_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV artifact, with an error that names the file when it is missing or cannot be
    parsed (cut short, empty, not text)."""
    if not os.path.exists(path):
        raise ArtifactError(f"{path}: file not found")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: not a readable CSV ({err}); delete it and rerun") from err


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically. Floats are written with full precision."""
    with atomic_path(path) as tmp, tmp.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, allow_nan=False) + "\n")


def write_head_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write per-head rows sorted by (layer, head); every number must be finite."""
    rows = sorted(rows, key=lambda r: (r["layer"], r["head"]))
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ArtifactError(
                    f"{path}: {k} of layer {r['layer']} head {r['head']} is {v}; nothing written"
                )
    write_jsonl(path, rows)


def iter_jsonl(
    path: str | os.PathLike, error: type[Exception] = ArtifactError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; ``error`` (naming the file
    and line) for a missing file, a corrupt or truncated line, or a line that is not an object."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: file not found; run the rule that makes it")
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(
                    f"{path}:{lineno}: corrupt or truncated line ({err}); delete the file and rerun"
                ) from err
            if not isinstance(row, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {line.strip()!r}")
            yield lineno, row


def read_head_jsonl(
    path: str | os.PathLike,
    required: Sequence[str],
    n_layers: int | None = None,
    n_heads: int | None = None,
) -> pd.DataFrame:
    """Read a per-head JSONL file and check it: parseable lines, required fields, unique
    (layer, head), and, when the shape is given, exactly one line per head of an L x H grid.
    Returns a frame sorted by (layer, head)."""
    path = Path(path)
    rows, linenos = [], []
    for lineno, row in iter_jsonl(path, ArtifactError):
        rows.append(row)
        linenos.append(lineno)
    if not rows:
        raise ArtifactError(f"{path}: empty file; delete it and rerun the rule that makes it")
    df = pd.DataFrame(rows)
    missing = [c for c in ("layer", "head", *required) if c not in df.columns]
    if missing:
        raise ArtifactError(f"{path}: missing field(s) {missing}; present: {list(df.columns)}")
    for col in ("layer", "head", *required):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if col in ("layer", "head"):
            bad |= values.fillna(0) % 1 != 0
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            where = f"line {linenos[i]}" + (
                f" (layer {df['layer'].iloc[i]}, head {df['head'].iloc[i]})"
                if col not in ("layer", "head")
                else ""
            )
            got = f"is {rows[i][col]!r}" if col in rows[i] else "is missing"
            raise ArtifactError(
                f"{path}: {where}: field {col!r} {got}, not a finite number "
                f"({int(bad.sum())} such line(s)); delete the file and rerun the rule that makes it"
            )
    dup = df.duplicated(["layer", "head"])
    if dup.any():
        first = df.loc[dup, ["layer", "head"]].iloc[0].tolist()
        raise ArtifactError(f"{path}: (layer, head) {tuple(first)} appears more than once")
    if n_layers is not None and n_heads is not None and len(df) != n_layers * n_heads:
        raise ArtifactError(
            f"{path}: {len(df)} lines, expected {n_layers * n_heads} "
            f"({n_layers} layers x {n_heads} heads); the file is truncated or from another model"
        )
    return df.sort_values(["layer", "head"]).reset_index(drop=True)


def save_tensors(
    path: str | os.PathLike, tensors: Mapping[str, Any], meta: Mapping[str, str]
) -> None:
    """Torch tensors and string metadata as one safetensors file, written atomically (torch is
    imported here, not with this module)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, os.fspath(tmp), metadata=dict(meta))


def load_tensors(
    path: str | os.PathLike, names: Sequence[str], what: str, meta_keys: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors by name, metadata) of a safetensors file that should be ``what`` (e.g. "a theta0
    sweep"): an :class:`ArtifactError` naming the file if it is missing, unreadable, or lacks one
    of ``names`` or of the metadata ``meta_keys``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found; rerun the rule that writes {what}")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in names}
    except Exception as exc:
        raise ArtifactError(f"{path}: not {what} ({exc}); delete it and rerun") from exc
    missing = [k for k in meta_keys if k not in meta]
    if missing:
        raise ArtifactError(f"{path}: no {', '.join(missing)} in its metadata; delete it and rerun")
    return tensors, meta


def finite_or_none(v: Any) -> float | None:
    """``v`` as a float, or None where it is missing (None, pandas' NA) or not finite (NaN, e.g. a
    standard error from one example, or an infinity): JSON has no NaN. The one NaN-to-None
    conversion of the package."""
    if v is None or v is pd.NA:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def json_value(v: Any) -> Any:
    """A table cell as JSON takes it: a missing or non-finite number as None
    (:func:`finite_or_none`), a finite float as a float, a numpy integer as an int; anything else
    (strings, Python ints and booleans) unchanged."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return finite_or_none(v)
    return v


def write_per_example(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write per-example arrays ([n, L, H] each) to an ``.npz`` atomically (float32; integer
    arrays keep their type)."""
    out = {
        k: (
            np.asarray(v, dtype=np.float32)
            if np.issubdtype(np.asarray(v).dtype, np.floating)
            else v
        )
        for k, v in arrays.items()
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **out)


def read_per_example(path: str | os.PathLike, key: str) -> np.ndarray:
    """Array ``key`` ([n, L, H]) of a sidecar written by :func:`write_per_example`."""
    try:
        with np.load(path) as data:
            if key not in data:
                raise ArtifactError(
                    f"{path}: no array {key!r} (has {sorted(data.files)}); rerun the rule that "
                    "makes it"
                )
            return np.asarray(data[key], dtype=np.float64)
    except (OSError, ValueError) as err:
        if isinstance(err, ArtifactError):
            raise
        raise ArtifactError(f"{path}: not a readable .npz ({err}); delete it and rerun") from err
