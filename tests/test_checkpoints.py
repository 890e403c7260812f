"""Importing an existing fine-tune as theta1: refusals and the label mapping, on tiny models.

theta0 is a tiny BERT (2 layers x 4 heads, MiniLM tokenizer) with a seeded 3-label classifier.
The "public fine-tune" is that network with perturbed weights and its own label order; the
imported theta1 must give, for the task's label order (entailment, neutral, contradiction),
the original's logits with the columns permuted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from headplast.model.loading import load_model
from headplast.train.checkpoints import CheckpointMismatchError, import_final, label_permutation
from headplast.train.theta0 import init_checkpoint
from tests.make_tiny_model import make_tiny_model

torch.set_num_threads(1)

TASK_LABELS = ["entailment", "neutral", "contradiction"]
# the fine-tune's order: 0 contradiction, 1 entailment, 2 neutral (TextAttack's MNLI order),
# so the task's labels sit at the fine-tune's outputs [1, 2, 0]
FT_ORDER = {0: "contradiction", 1: "entailment", 2: "neutral"}
EXPECTED_PERM = [1, 2, 0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    src = Path(make_tiny_model(str(root / "pretrained")))
    init_dir = root / "ckpt_init"
    init_checkpoint(src, 3, 0, init_dir)
    (root / "meta.json").write_text(json.dumps({"label_names": TASK_LABELS}))
    words = "the a cat dog sat ran on under big small red blue".split()
    with open(root / "validation.jsonl", "w") as fh:
        for i in range(12):
            row = {"premise": " ".join(words[i % 5 : i % 5 + 4]), "hypothesis": words[i]}
            fh.write(json.dumps({**row, "label": i % 3}) + "\n")
    return root, init_dir


def _fine_tune(root: Path, init_dir: Path, name: str, id2label: dict, **config_changes) -> Path:
    """A save_pretrained folder: theta0's network (optionally reconfigured), perturbed weights,
    the given id2label, the same tokenizer."""
    base = load_model(init_dir)
    cfg = BertConfig.from_dict({**base.config.to_dict(), **config_changes})
    cfg.id2label, cfg.label2id = dict(id2label), {v: k for k, v in id2label.items()}
    torch.manual_seed(7)
    model = BertForSequenceClassification(cfg)
    if not config_changes:
        model.load_state_dict(base.state_dict())
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    out = root / name
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(init_dir).save_pretrained(out)
    return out


def _import(setup, source, name, label_map=None):
    root, init_dir = setup
    return import_final(
        source,
        init_dir,
        root / "meta.json",
        root / "validation.jsonl",
        root / name / "ckpt_final",
        label_map=label_map,
        max_length=32,
    )


def _logits(folder: Path) -> torch.Tensor:
    model = load_model(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(
        ["the cat sat", "a dog ran on a big red"],
        ["blue", "small dog"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        return model(**enc).logits


@pytest.mark.parametrize("mapped_by", ["id2label", "label_map"])
@pytest.mark.training
def test_permuted_label_order_is_mapped(setup, mapped_by):
    root, init_dir = setup
    if mapped_by == "id2label":
        ft = _fine_tune(root, init_dir, "ft_named", FT_ORDER)
        label_map = None
    else:
        ft = _fine_tune(root, init_dir, "ft_generic", {i: f"LABEL_{i}" for i in FT_ORDER})
        label_map = {f"LABEL_{i}": name for i, name in FT_ORDER.items()}
    rc = _import(setup, ft, f"imported_{mapped_by}", label_map)
    out = root / f"imported_{mapped_by}" / "ckpt_final"
    assert rc["label_permutation"] == EXPECTED_PERM
    assert rc["theta1_source"] == str(ft) and rc["imported"] is True
    assert set(rc["validation"]) == {"theta0", "theta1"}
    original, imported = _logits(ft), _logits(out)
    assert torch.allclose(imported, original[:, EXPECTED_PERM], atol=1e-6)
    assert not torch.allclose(imported, original, atol=1e-3)
    assert load_model(out).config.id2label == dict(enumerate(TASK_LABELS))
    # theta1's recorded accuracy is that of the original with its labels renamed
    rows = [json.loads(line) for line in (root / "validation.jsonl").open()]
    model, tok = load_model(ft).eval(), AutoTokenizer.from_pretrained(ft)
    enc = tok(
        [r["premise"] for r in rows],
        [r["hypothesis"] for r in rows],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        pred = model(**enc).logits.argmax(-1).tolist()
    correct = sum(
        TASK_LABELS.index(FT_ORDER[p]) == r["label"] for p, r in zip(pred, rows, strict=True)
    )
    assert rc["validation"]["theta1"]["accuracy"] == pytest.approx(correct / len(rows))


@pytest.mark.parametrize(
    ("id2label", "label_map", "message"),
    [
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, None, "generic label names"),
        ({0: "entailment", 1: "Entailment", 2: "neutral"}, None, "duplicate label names"),
        ({0: "entailment", 1: "neutral", 2: "other"}, None, r"no label named \['contradiction'\]"),
        ({0: "entailment", 1: "neutral"}, None, "has 2 labels; the task has 3"),
        (
            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
            {"LABEL_0": "entailment", "LABEL_1": "entailment", "LABEL_2": "neutral"},
            "to a different task label",
        ),
        (
            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
            {"LABEL_0": "entailment", "LABEL_1": "neutral"},
            r"not mapped \['LABEL_2'\]",
        ),
        (
            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
            {"LABEL_0": "entailment", "LABEL_1": "neutral", "LABEL_2": "contra"},
            r"not task labels \['contra'\]",
        ),
    ],
)
def test_ambiguous_label_mappings_are_refused(id2label, label_map, message):
    with pytest.raises(CheckpointMismatchError, match=message):
        label_permutation(id2label, TASK_LABELS, label_map, "some/fine-tune")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_hidden_layers": 3}, "different layouts"),
        ({"num_attention_heads": 2}, "different layouts"),
        ({"intermediate_size": 48}, "different encoder parameters"),
        ({"max_position_embeddings": 64}, "different encoder parameters"),
    ],
)
@pytest.mark.training
def test_a_different_network_is_refused_naming_both(setup, changes, message):
    root, init_dir = setup
    name = "ft_" + "_".join(f"{k}{v}" for k, v in changes.items())
    ft = _fine_tune(root, init_dir, name, FT_ORDER, **changes)
    with pytest.raises(CheckpointMismatchError, match=message) as err:
        _import(setup, ft, name)
    assert str(init_dir) in str(err.value) and str(ft) in str(err.value)
    assert not (root / name / "ckpt_final").exists()


@pytest.mark.training
def test_a_different_model_type_is_refused(setup, tmp_path):
    root, init_dir = setup
    other = Path(make_tiny_model(str(tmp_path / "deberta"), "deberta"))
    init_checkpoint(other, 3, 0, tmp_path / "deberta_cls")
    with pytest.raises(CheckpointMismatchError, match=re.escape("model types: bert vs deberta-v2")):
        _import(setup, tmp_path / "deberta_cls", "deberta")
