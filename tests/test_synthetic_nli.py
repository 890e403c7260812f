"""The offline NLI generator: deterministic, balanced, disjoint splits, all template families."""

from __future__ import annotations

import collections
import json

import pytest

from headplast.data.synthetic_nli import (
    LABEL_NAMES,
    Attribute,
    Event,
    _attribute_label,
    _event_label,
    ancestors,
    generate_nli,
    write_synthetic_nli,
)

E, N, C = 0, 1, 2


@pytest.fixture(scope="module")
def data() -> tuple[list[dict], list[dict]]:
    return generate_nli(1500, 600, seed=0)


def test_label_names() -> None:
    assert LABEL_NAMES == ["entailment", "neutral", "contradiction"]


def test_same_seed_identical_different_seed_different(data) -> None:
    assert generate_nli(1500, 600, seed=0) == data
    other = generate_nli(1500, 600, seed=1)
    assert other[0] != data[0] and other[1] != data[1]


def test_validation_does_not_depend_on_train_size(data) -> None:
    assert generate_nli(30, 600, seed=0)[1] == data[1]


def test_sizes_schema_and_text(data) -> None:
    train, validation = data
    assert (len(train), len(validation)) == (1500, 600)
    for r in train + validation:
        assert set(r) == {"premise", "hypothesis", "label"}
        assert r["label"] in (0, 1, 2) and type(r["label"]) is int
        for text in (r["premise"], r["hypothesis"]):
            assert text == text.lower() and text.replace(" ", "").isalpha()
        assert r["premise"] != r["hypothesis"]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 100])
def test_label_balance(n: int) -> None:
    train, validation = generate_nli(n, n, seed=3)
    for split in (train, validation):
        assert len(split) == n
        counts = collections.Counter(r["label"] for r in split)
        full = [counts.get(k, 0) for k in range(3)]
        assert max(full) - min(full) <= 1


def test_balance_exact(data) -> None:
    train, validation = data
    assert collections.Counter(r["label"] for r in train) == {0: 500, 1: 500, 2: 500}
    assert collections.Counter(r["label"] for r in validation) == {0: 200, 1: 200, 2: 200}


def test_no_overlap_and_no_duplicates(data) -> None:
    train, validation = data
    pairs_tr = {(r["premise"], r["hypothesis"]) for r in train}
    pairs_va = {(r["premise"], r["hypothesis"]) for r in validation}
    assert len(pairs_tr) == len(train) and len(pairs_va) == len(validation)
    assert not pairs_tr & pairs_va
    assert not {r["premise"] for r in train} & {r["premise"] for r in validation}


def test_each_premise_with_every_label(data) -> None:
    by_premise = collections.defaultdict(set)
    for r in data[0]:
        by_premise[r["premise"]].add(r["label"])
    assert sum(labels == {0, 1, 2} for labels in by_premise.values()) >= 490


def test_template_families_present(data) -> None:
    rows = data[0] + data[1]

    def has(label: int, pred) -> bool:
        return any(r["label"] == label and pred(r["premise"], r["hypothesis"]) for r in rows)

    # hypernym entailment, both under affirmation and under negation
    assert has(
        E, lambda p, h: "not" not in p.split() and "instrument" in h and "instrument" not in p
    )
    assert has(E, lambda p, h: "not" in p.split() and "not" in h.split())
    # negation and antonym contradictions
    assert has(C, lambda p, h: "not" not in p.split() and "not" in h.split())
    assert has(C, lambda p, h: p.endswith("is empty") and h.endswith("is full"))
    # unverifiable additions
    assert has(N, lambda p, h: h.startswith(p) and len(h) > len(p))
    # "not" is no label cue: every label occurs with and without it in the hypothesis
    for label in (E, N, C):
        assert has(label, lambda p, h: "not" in h.split())
        assert has(label, lambda p, h: "not" not in h.split())


def test_vocabulary_is_rich() -> None:
    train, _ = generate_nli(3000, 0, seed=5)
    assert len({r["premise"] for r in train}) == 1000
    words = {w for r in train for w in (r["premise"] + " " + r["hypothesis"]).split()}
    assert len(words) > 300


@pytest.mark.parametrize(
    ("premise", "hypothesis", "label"),
    [
        (Event("man", "playing", "guitar"), Event("person", "playing", "instrument"), E),
        (Event("man", "playing", "instrument"), Event("man", "playing", "guitar"), N),
        (Event("man", "playing", "guitar"), Event("man", "playing", "guitar", neg=True), C),
        (Event("man", "playing", "guitar"), Event("man", "playing", "instrument", neg=True), C),
        (Event("man", "playing", "instrument"), Event("man", "playing", "guitar", neg=True), N),
        (
            Event("man", "playing", "instrument", neg=True),
            Event("man", "playing", "guitar", neg=True),
            E,
        ),
        (
            Event("man", "playing", "guitar", neg=True),
            Event("man", "playing", "instrument", neg=True),
            N,
        ),
        (Event("man", "playing", "guitar", neg=True), Event("man", "playing", "violin"), N),
        (Event("man", "playing", "guitar"), Event("woman", "playing", "guitar"), C),
        (
            Event("man", "playing", "guitar"),
            Event("man", "playing", "guitar", place="in the park"),
            N,
        ),
        (
            Event("man", "playing", "guitar", place="in the park"),
            Event("man", "playing", "guitar", place="outdoors"),
            E,
        ),
        (
            Event("man", "playing", "guitar", place="in the park"),
            Event("man", "playing", "guitar", place="in the kitchen"),
            C,
        ),
        (
            Event("man", "playing", "guitar", time="at night"),
            Event("man", "playing", "guitar", time="in the morning"),
            C,
        ),
        (Event("man", "playing", "guitar", adj="tall"), Event("man", "playing", "guitar"), E),
        (
            Event("man", "playing", "guitar", adj="tall"),
            Event("man", "playing", "guitar", adj="short"),
            C,
        ),
    ],
)
def test_event_label_rules(premise: Event, hypothesis: Event, label: int) -> None:
    assert _event_label(premise, hypothesis) == label


@pytest.mark.parametrize(
    ("premise", "hypothesis", "label"),
    [
        ((("empty", False),), (("full", False),), C),
        ((("empty", False),), (("empty", True),), C),
        ((("empty", False),), (("full", True),), E),
        ((("empty", True),), (("full", False),), N),  # contrary pair
        ((("open", True),), (("closed", False),), E),  # complementary pair
        ((("open", True),), (("closed", True),), C),
        ((("empty", False),), (("heavy", False),), N),
        ((("empty", False), ("old", False)), (("old", False),), E),
    ],
)
def test_attribute_label_rules(premise, hypothesis, label) -> None:
    p = Attribute("container", "box", premise)
    assert _attribute_label(p, Attribute("container", "box", hypothesis)) == label


def test_attribute_hypernym_subject() -> None:
    p = Attribute("container", "box", (("empty", False),))
    assert _attribute_label(p, Attribute("container", "container", (("empty", False),))) == E
    q = Attribute("container", "container", (("empty", False),))
    assert _attribute_label(q, Attribute("container", "box", (("empty", False),))) == N


def test_text_rendering() -> None:
    assert Event("man", "playing", "guitar").text() == "a man is playing a guitar"
    assert (
        Event("man", "eating", "apple", neg=True, adj="old", definite=True).text()
        == "the old man is not eating an apple"
    )
    assert Attribute("container", "box", (("empty", True),)).text() == "the box is not empty"
    assert ancestors("puppy") == ["dog", "animal"]


def test_write_synthetic_nli(tmp_path) -> None:
    train_path, val_path = tmp_path / "a" / "train.jsonl", tmp_path / "a" / "validation.jsonl"
    write_synthetic_nli(train_path, val_path, 12, 6, seed=2)
    train = [json.loads(line) for line in train_path.read_text().splitlines()]
    validation = [json.loads(line) for line in val_path.read_text().splitlines()]
    assert (train, validation) == generate_nli(12, 6, seed=2)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["train.jsonl", "validation.jsonl"]
