"""theta0's checks and names: max_length against the model's position limit (at init, before any
training), the task's label names in every checkpoint, a warning for one-class training data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, DebertaV2Config, ElectraConfig, RobertaConfig

from headplast.model.adapters import MaxLengthError, check_max_length, max_input_length
from headplast.model.loading import ModelLoadError
from headplast.train.finetune import finetune
from headplast.train.theta0 import init_checkpoint
from tests.make_tiny_model import make_tiny_model

torch.set_num_threads(1)
LABELS = ["entailment", "not_entailment"]


@pytest.mark.parametrize(
    ("config", "limit"),
    [
        (BertConfig(max_position_embeddings=64), 64),
        (ElectraConfig(max_position_embeddings=40), 40),
        (RobertaConfig(max_position_embeddings=514, pad_token_id=1), 512),
        (RobertaConfig(max_position_embeddings=40, pad_token_id=3), 36),
        (DebertaV2Config(max_position_embeddings=64, position_biased_input=False), None),
        (DebertaV2Config(max_position_embeddings=64, position_biased_input=True), 64),
    ],
)
def test_max_input_length(config, limit):
    assert max_input_length(config) == limit


def test_error_names_key_value_and_limit():
    check_max_length(RobertaConfig(max_position_embeddings=514, pad_token_id=1), 512)
    with pytest.raises(MaxLengthError) as err:
        check_max_length(RobertaConfig(max_position_embeddings=514, pad_token_id=1), 513)
    assert str(err.value) == (
        "config key `max_length` is 513, but the model (roberta, absolute position embeddings) "
        "takes at most 512 tokens per input = max_position_embeddings 514 - (pad_token_id + 1); "
        "set `max_length` to 512 or less"
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")  # max_position_embeddings 128 in both
    return {f: Path(make_tiny_model(str(root / f), f)) for f in ("bert", "deberta")}


def test_init_checkpoint_rejects_max_length_beyond_bert_positions(models, tmp_path):
    with pytest.raises(MaxLengthError, match=r"`max_length` is 129, .* at most 128 tokens"):
        init_checkpoint(models["bert"], 2, 0, tmp_path / "no", max_length=129)
    assert not tmp_path.joinpath("no").exists() and not list(tmp_path.iterdir())
    info = init_checkpoint(models["bert"], 2, 0, tmp_path / "ok", max_length=128)
    assert info["max_input_length"] == 128


def test_relative_positions_have_no_limit(models, tmp_path):
    info = init_checkpoint(models["deberta"], 2, 0, tmp_path / "d", max_length=100_000)
    assert info["max_input_length"] is None


def _config(ckpt: Path) -> dict:
    return json.loads((ckpt / "config.json").read_text())


def _write(path: Path, labels: list[int]) -> Path:
    with path.open("w") as fh:
        for i, label in enumerate(labels):
            row = {"premise": f"the cat sat {i}", "hypothesis": "a dog ran", "label": label}
            fh.write(json.dumps(row) + "\n")
    return path


@pytest.mark.training
def test_label_names_in_theta0_and_theta1_and_one_class_warning(models, tmp_path, caplog):
    init = tmp_path / "ckpt_init"
    info = init_checkpoint(models["bert"], 2, 0, init, label_names=LABELS, max_length=32)
    assert info["id2label"] == {0: "entailment", 1: "not_entailment"}
    cfg = _config(init)
    assert cfg["id2label"] == {"0": "entailment", "1": "not_entailment"}
    assert cfg["label2id"] == {"entailment": 0, "not_entailment": 1}

    train = _write(tmp_path / "train.jsonl", [1] * 8)  # one class only
    validation = _write(tmp_path / "validation.jsonl", [0, 1, 0, 1])
    hp = {"learning_rate": 1e-3, "num_train_epochs": 1, "per_device_train_batch_size": 4}
    with caplog.at_level(logging.WARNING, logger="headplast.train.finetune"):
        rc = finetune(init, train, validation, tmp_path / "ckpt_final", tmp_path / "tr", hp, 0, 32)
    assert rc["train_label_counts"] == {"not_entailment": 8}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "all 8 training examples (after max_train_samples) have the label not_entailment" in m
        for m in warnings
    ), warnings
    final = _config(tmp_path / "ckpt_final")
    assert final["id2label"] == cfg["id2label"] and final["label2id"] == cfg["label2id"]


@pytest.mark.training
def test_two_classes_no_warning(models, tmp_path, caplog):
    init = tmp_path / "ckpt_init"
    init_checkpoint(models["bert"], 2, 0, init, label_names=LABELS)
    train = _write(tmp_path / "train.jsonl", [0, 1] * 4)
    hp = {"learning_rate": 1e-3, "num_train_epochs": 1, "per_device_train_batch_size": 4}
    with caplog.at_level(logging.WARNING, logger="headplast.train.finetune"):
        rc = finetune(init, train, train, tmp_path / "final", tmp_path / "tr", hp, 0, 32)
    assert rc["train_label_counts"] == {"entailment": 4, "not_entailment": 4}
    assert not [r for r in caplog.records if "training examples" in r.getMessage()]


def test_label_names_must_match_the_label_count(models, tmp_path):
    with pytest.raises(ValueError, match="do not name the 3 labels"):
        init_checkpoint(models["bert"], 3, 0, tmp_path / "x", label_names=LABELS)


def test_model_folder_without_tokenizer_files_is_named(models, tmp_path):
    folder = tmp_path / "weights_only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((models["bert"] / name).read_bytes())
    with pytest.raises(ModelLoadError, match=r"weights_only: no tokenizer files \(one of"):
        init_checkpoint(folder, 2, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tokenizer_of_another_model_is_named(models, tmp_path):
    folder = tmp_path / "small_vocab"
    config = BertConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # MiniLM's: 30522 tokens
        (folder / name).write_bytes((models["bert"] / name).read_bytes())
    with pytest.raises(ModelLoadError, match="tokenizer has 30522 tokens but the model embeds"):
        init_checkpoint(folder, 2, 0, tmp_path / "out")
