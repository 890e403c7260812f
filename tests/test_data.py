"""Task data: canonical files, local formats, loader errors, hub offline, eval subset."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from headplast.data.subset import make_eval_subset
from headplast.data.tasks import (
    DataError,
    file_fingerprint,
    load_glue,
    load_local,
    prepare_task_data,
    read_split,
)

NAMES = ["entailment", "neutral", "contradiction"]
COLS = {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold"}
ROWS = [
    {"sentence1": "a man sleeps", "sentence2": "a person sleeps", "gold": "entailment"},
    {"sentence1": "a dog runs", "sentence2": "a dog runs fast", "gold": "neutral"},
    {"sentence1": "it is hot, very hot", "sentence2": 'it is "cold"', "gold": "contradiction"},
]
EXPECTED = [
    {"premise": "a man sleeps", "hypothesis": "a person sleeps", "label": 0},
    {"premise": "a dog runs", "hypothesis": "a dog runs fast", "label": 1},
    {"premise": "it is hot, very hot", "hypothesis": 'it is "cold"', "label": 2},
]


def _write(path: Path, rows: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "tsv":
        cols = list(rows[0])
        lines = ["\t".join(cols)] + ["\t".join(str(r[c]) for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        import pandas as pd

        pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_local_round_trip(tmp_path: Path, fmt: str) -> None:
    train = _write(tmp_path / f"train.{fmt}", ROWS, fmt)
    val = _write(tmp_path / f"dev.{fmt}", ROWS[:2], fmt)
    tr, va = load_local(train, val, COLS, NAMES)
    assert tr == EXPECTED and va == EXPECTED[:2]


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.txt", ROWS, "tsv")
    assert load_local(train, train, COLS, NAMES, fmt="tsv")[0] == EXPECTED
    with pytest.raises(DataError, match=r"train\.txt.*data\.format"):
        load_local(train, train, COLS, NAMES)
    with pytest.raises(DataError, match=r"data\.format.*'xml'"):
        load_local(train, train, COLS, NAMES, fmt="xml")


def test_int_labels_and_default_columns(tmp_path: Path) -> None:
    rows = [{"premise": "a", "hypothesis": "b", "label": y} for y in (2, 0, "1", "neutral")]
    path = _write(tmp_path / "t.jsonl", rows, "jsonl")
    tr, _ = load_local(path, path, None, NAMES)
    assert [r["label"] for r in tr] == [2, 0, 1, 1]
    tsv = _write(tmp_path / "t.tsv", [{"p": "a", "h": "b", "y": 1}], "tsv")
    cols = {"premise": "p", "hypothesis": "h", "label": "y"}
    assert load_local(tsv, tsv, cols, ["no", "yes"])[0] == [
        {"premise": "a", "hypothesis": "b", "label": 1}
    ]


def test_whole_float_labels(tmp_path: Path) -> None:
    """A label column written as floats (pandas with a missing value, spreadsheets) is read."""
    rows = [{"premise": "a", "hypothesis": "b", "label": y} for y in (2.0, 0.0, "1.0", " 1 ")]
    path = _write(tmp_path / "t.jsonl", rows, "jsonl")
    assert [r["label"] for r in load_local(path, path, None, NAMES)[0]] == [2, 0, 1, 1]
    csv_path = _write(tmp_path / "t.csv", [{"p": "a", "h": "b", "y": "1.0"}], "csv")
    cols = {"premise": "p", "hypothesis": "h", "label": "y"}
    assert load_local(csv_path, csv_path, cols, ["no", "yes"])[0][0]["label"] == 1


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_byte_order_mark_and_crlf(tmp_path: Path, fmt: str) -> None:
    """Files saved by Windows tools ("UTF-8 with BOM", CRLF line ends) read like any other."""
    path = _write(tmp_path / f"train.{fmt}", ROWS, fmt)
    text = path.read_text().replace("\n", "\r\n")
    path.write_bytes(text.encode("utf-8-sig"))
    assert load_local(path, path, COLS, NAMES)[0] == EXPECTED


def test_missing_file_names_path_and_key(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", ROWS, "jsonl")
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(
        DataError, match=r"nope\.jsonl: file not found \(config key data\.validation"
    ):
        load_local(train, missing, COLS, NAMES)
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found \(config key data\.train"):
        load_local(missing, train, COLS, NAMES)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_missing_column(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path / f"train.{fmt}", ROWS, fmt)
    cols = dict(COLS, hypothesis="sentence_2")
    with pytest.raises(DataError) as info:
        load_local(path, path, cols, NAMES)
    msg = str(info.value)
    assert f"train.{fmt}" in msg and "'sentence_2'" in msg and "data.columns.hypothesis" in msg
    assert "['sentence1', 'sentence2', 'gold']" in msg


def test_columns_mapping_incomplete(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", ROWS, "jsonl")
    with pytest.raises(DataError, match=r"data\.columns\.label is missing"):
        load_local(path, path, {"premise": "sentence1", "hypothesis": "sentence2"}, NAMES)


@pytest.mark.parametrize(("fmt", "line"), [("tsv", 3), ("csv", 3), ("jsonl", 2)])
def test_label_outside_set(tmp_path: Path, fmt: str, line: int) -> None:
    rows = [dict(ROWS[0]), dict(ROWS[1], gold="maybe"), dict(ROWS[2])]
    path = _write(tmp_path / f"train.{fmt}", rows, fmt)
    with pytest.raises(DataError) as info:
        load_local(path, path, COLS, NAMES)
    msg = str(info.value)
    assert f"train.{fmt}: line {line}: column 'gold' has label 'maybe'" in msg
    assert "['entailment', 'neutral', 'contradiction']" in msg and "0..2" in msg


@pytest.mark.parametrize("bad", [3, -1, "7", True, 1.5, "1.5", 2.0000001, ""])
def test_int_label_out_of_range(tmp_path: Path, bad) -> None:
    path = _write(
        tmp_path / "t.jsonl", [{"premise": "a", "hypothesis": "b", "label": bad}], "jsonl"
    )
    with pytest.raises(DataError, match=r"t\.jsonl: line 1: column 'label' has label"):
        load_local(path, path, None, NAMES)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_empty_split(tmp_path: Path, fmt: str) -> None:
    train = _write(tmp_path / f"train.{fmt}", ROWS, fmt)
    empty = tmp_path / f"dev.{fmt}"
    empty.write_text("sentence1\tsentence2\tgold\n" if fmt == "tsv" else "")
    with pytest.raises(DataError, match=rf"dev\.{fmt}: the validation split is empty"):
        load_local(train, empty, COLS, NAMES)


def test_missing_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [{"premise": None, "hypothesis": "b", "label": 0}], "jsonl")
    with pytest.raises(DataError, match=r"t\.jsonl: line 1: column 'premise' \(premise\) has no"):
        load_local(path, path, None, NAMES)


def test_prepare_local_writes_canonical_files_and_meta(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.csv", ROWS, "csv")
    val = _write(tmp_path / "dev.csv", ROWS[1:], "csv")
    spec = {"source": "local", "train": str(train), "validation": str(val), "columns": COLS}
    spec["label_names"] = NAMES
    out = tmp_path / "out"
    meta = prepare_task_data(spec, out / "train.jsonl", out / "validation.jsonl", out / "meta.json")
    assert read_split(out / "train.jsonl") == EXPECTED
    assert read_split(out / "validation.jsonl") == EXPECTED[1:]
    assert json.loads((out / "meta.json").read_text()) == meta
    assert meta["source"] == "local" and meta["label_names"] == NAMES
    assert (meta["num_labels"], meta["n_train"], meta["n_validation"]) == (3, 3, 2)
    digest = hashlib.sha256((out / "train.jsonl").read_bytes()).hexdigest()
    assert meta["fingerprints"]["train"] == digest == file_fingerprint(out / "train.jsonl")
    assert meta["fingerprints"]["validation"] == file_fingerprint(out / "validation.jsonl")
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "train.jsonl", "validation.jsonl"]


def test_prepare_synthetic_is_deterministic(tmp_path: Path) -> None:
    spec = {"source": "synthetic", "n_train": 30, "n_validation": 9, "seed": 4}
    metas = [
        prepare_task_data(spec, d / "train.jsonl", d / "validation.jsonl", d / "meta.json")
        for d in (tmp_path / "a", tmp_path / "b")
    ]
    assert metas[0] == metas[1]
    assert metas[0]["label_names"] == ["entailment", "neutral", "contradiction"]
    assert (metas[0]["n_train"], metas[0]["n_validation"]) == (30, 9)
    spec["seed"] = 5
    other = prepare_task_data(
        spec, tmp_path / "c/t.jsonl", tmp_path / "c/v.jsonl", tmp_path / "c/m"
    )
    assert other["fingerprints"] != metas[0]["fingerprints"]


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"source": "hub"}, r"data\.source: 'hub'"),
        ({"source": "glue"}, r"data\.name is missing"),
        ({"source": "glue", "name": "cola"}, r"data\.name: GLUE task 'cola'"),
        ({"source": "local", "train": "x.tsv"}, r"data\.validation is missing"),
        ({"source": "synthetic", "n_train": 3, "seed": 0}, r"data\.n_validation is missing"),
    ],
)
def test_prepare_spec_errors(tmp_path: Path, spec: dict, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        prepare_task_data(spec, tmp_path / "t.jsonl", tmp_path / "v.jsonl", tmp_path / "m.json")
    assert not list(tmp_path.iterdir())


def test_glue_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))  # nothing cached
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_glue("mnli", "validation_matched")
    assert time.monotonic() - start < 20
    msg = str(info.value)
    assert "hub is unreachable" in msg and "make demo" in msg and "source: local" in msg
    spec = {"source": "glue", "name": "rte", "validation_split": "validation"}
    with pytest.raises(DataError, match="hub is unreachable"):
        prepare_task_data(spec, tmp_path / "t.jsonl", tmp_path / "v.jsonl", tmp_path / "m.json")


def test_read_split_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found"):
        read_split(tmp_path / "nope.jsonl")
    path = tmp_path / "s.jsonl"
    path.write_text('{"premise": "a", "hypothesis": "b", "label": 0}\n{"premise": "a", "hyp')
    with pytest.raises(DataError, match=r"s\.jsonl:2: corrupt or truncated line"):
        read_split(path)
    path.write_text('{"premise": "a", "label": 0}\n')
    with pytest.raises(DataError, match=r"s\.jsonl:1: missing key\(s\) \['hypothesis'\]"):
        read_split(path)
    path.write_text('{"premise": "a", "hypothesis": "b", "label": "neutral"}\n')
    with pytest.raises(DataError, match=r"s\.jsonl:1: label 'neutral' is not an int"):
        read_split(path)


def test_file_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_fingerprint(path) == expected
    path.write_bytes(b"abd")
    assert file_fingerprint(path) != expected


def test_eval_subset_deterministic_and_sorted() -> None:
    a = make_eval_subset(9815, 1024, seed=999)
    assert a == make_eval_subset(9815, 1024, seed=999)
    assert a == sorted(a) and len(set(a)) == 1024 and 0 <= a[0] and a[-1] < 9815
    assert all(type(i) is int for i in a)
    assert make_eval_subset(9815, 1024, seed=998) != a
    assert make_eval_subset(5, 5, seed=0) == [0, 1, 2, 3, 4]


def test_eval_subset_independent_of_other_randomness() -> None:
    import random

    import numpy as np
    import torch

    a = make_eval_subset(1000, 50, seed=999)
    np.random.seed(1)
    torch.manual_seed(1)
    random.seed(1)
    np.random.default_rng(7).random(10)
    assert make_eval_subset(1000, 50, seed=999) == a
    expected = sorted(np.random.default_rng(999).choice(1000, size=50, replace=False).tolist())
    assert a == expected


def test_eval_subset_bounds_are_allowed() -> None:
    """The smallest and the largest subset are valid sizes: one example (the rng's draw) and the
    whole split (0 and n + 1 are refused below)."""
    import numpy as np

    assert (
        make_eval_subset(100, 1, seed=999)
        == np.random.default_rng(999).choice(100, 1, replace=False).tolist()
    )
    assert make_eval_subset(1, 1, seed=0) == [0]
    assert make_eval_subset(100, 100, seed=3) == list(range(100))


@pytest.mark.parametrize("size", [0, -3, 101])
def test_eval_subset_errors(size: int) -> None:
    with pytest.raises(
        DataError, match=rf"eval_subset\.size = {size}: .*validation split size \(100\)"
    ):
        make_eval_subset(100, size, seed=0)


def test_eval_subset_all_is_the_whole_split():
    from headplast.data.subset import make_eval_subset

    assert make_eval_subset(7, "all", 999) == list(range(7))
    with pytest.raises(DataError, match="eval_subset.size = every"):
        make_eval_subset(7, "every", 999)
