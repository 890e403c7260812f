"""headplast.data.selection: the rows that choose theta1, drawn from the train split."""

from __future__ import annotations

import random

import pytest

from headplast.data.selection import (
    SELECTION_DEFAULTS,
    draw_selection,
    indices_sha256,
    read_selection,
    selection_record,
    selection_size,
    split_rows,
)
from headplast.io import ArtifactError, write_json


def test_size_is_the_fraction_capped_and_leaves_rows_on_both_sides():
    assert selection_size(1000, 0.1, 2000) == 100
    assert selection_size(393_000, 0.1, 2000) == 2000  # MNLI: the cap
    assert selection_size(2490, 0.1, 2000) == 249  # RTE
    assert selection_size(120, 0.1, 2000) == 12
    assert selection_size(5, 0.01, 10) == 1  # at least one row drawn
    assert selection_size(3, 0.99, 10) == 2  # at least one row left to train on
    assert selection_size(2, 0.5, 1) == 1
    with pytest.raises(ValueError, match=r"selection.fraction.*\(0, 1\)"):
        selection_size(100, 1.0, 10)
    with pytest.raises(ValueError, match=r"selection.fraction"):
        selection_size(100, 0.0, 10)
    with pytest.raises(ValueError, match=r"selection.max_examples"):
        selection_size(100, 0.1, 0)
    with pytest.raises(ValueError, match="selection.split: validation"):
        selection_size(1, 0.5, 10)


def test_draw_is_seeded_sorted_and_a_uniform_sample():
    a = draw_selection(200, 0.1, 2000, seed=0)
    assert a == sorted(random.Random(0).sample(range(200), 20))
    assert a == draw_selection(200, 0.1, 2000, seed=0)  # the same rows every time
    assert a != draw_selection(200, 0.1, 2000, seed=1)
    assert len(set(a)) == 20 and 0 <= min(a) and max(a) < 200


def test_record_names_the_rows_their_labels_and_the_splits():
    labels = [i % 3 for i in range(120)]
    rec = selection_record({}, labels, 60)
    assert rec["settings"] == SELECTION_DEFAULTS
    assert rec["split"] == "train" and rec["n_examples"] == 12 == len(rec["indices"])
    assert rec["indices"] == draw_selection(120, 0.1, 2000, 0)
    assert rec["indices_sha256"] == indices_sha256(rec["indices"])
    counts = {str(k): sum(labels[i] == k for i in rec["indices"]) for k in range(3)}
    assert rec["label_counts"] == {k: v for k, v in counts.items() if v}
    assert (rec["n_train_split"], rec["n_validation_split"]) == (120, 60)
    val = selection_record({"split": "validation"}, labels, 60)
    assert val["indices"] == list(range(60)) and val["label_counts"] == {}
    with pytest.raises(ValueError, match=r"unknown `selection` key.*'size'"):
        selection_record({"size": 3}, labels, 60)
    with pytest.raises(ValueError, match="selection.split.*'test'"):
        selection_record({"split": "test"}, labels, 60)


def test_split_rows_takes_the_selection_rows_out_of_training():
    train, val = [f"t{i}" for i in range(10)], [f"v{i}" for i in range(4)]
    rec = {"split": "train", "indices": [1, 4, 7]}
    kept, rows, sel = split_rows(train, val, rec)
    assert kept == [0, 2, 3, 5, 6, 8, 9] and rows == [train[i] for i in kept]
    assert sel == ["t1", "t4", "t7"] and not set(rows) & set(sel)
    assert not (set(rows) | set(sel)) & set(val)  # no validation row anywhere
    for none in (None, {"split": "validation", "indices": [0, 1, 2, 3]}):
        kept, rows, sel = split_rows(train, val, none)
        assert rows == train and kept == list(range(10)) and sel == val
    with pytest.raises(ArtifactError, match="selection.json"):
        split_rows(train, val, {"split": "train", "indices": [3, 10]})


def test_read_selection_refuses_a_record_of_other_data(tmp_path):
    rec = selection_record({}, [0, 1] * 50, 30)
    write_json(tmp_path / "s.json", rec)
    assert read_selection(tmp_path / "s.json", 100, 30) == rec
    with pytest.raises(ArtifactError, match="train split of 100 rows, this one has 99"):
        read_selection(tmp_path / "s.json", 99, 30)
    with pytest.raises(ArtifactError, match="validation split of 30 rows"):
        read_selection(tmp_path / "s.json", 100, 31)
    write_json(tmp_path / "bad.json", {"size": 3})
    with pytest.raises(ArtifactError, match="not a selection record"):
        read_selection(tmp_path / "bad.json")
