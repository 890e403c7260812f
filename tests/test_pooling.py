"""The token the task head reads (first, last non-padding, mean) on tiny random models: pooled
features, the shared theta0 sweep and the probe against the direct per-checkpoint path, and the
padding a decoder needs (docs/methods.md, "The token the task head reads").

References do not share the code under test: pooled features are checked by applying the model's
own head to them against its full forward, and by hand (the last real token from the attention
mask, the masked mean of the base model's output); the shared sweep's importance against the full
per-checkpoint ablation sweep.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from headplast.measure.importance import ablation_sweep
from headplast.measure.shared_sweep import importance_from_theta0_sweep, theta0_hidden_sweep
from headplast.model.adapters import resolve_classifier
from headplast.model.classifier import EncoderMismatchError, classifier_logits, pooled_features
from headplast.model.loading import ModelLoadError, prepare_padding
from headplast.model.tiny import tiny_model
from headplast.train.probe import evaluate_classifier, fit_probe
from tests.conftest import random_batches

#: (family, config overrides, pooling): each pooling on the families that use it.
CASES = {
    "modernbert-cls": ("modernbert", {}, "first"),
    "modernbert-mean": ("modernbert", {"classifier_pooling": "mean"}, "mean"),
    "llama": ("llama", {}, "last"),
    "qwen2": ("qwen2", {}, "last"),
    "gpt2": ("gpt2", {}, "last"),
}


def _build(case: str, seed: int = 0):
    family, overrides, _ = CASES[case]
    return tiny_model(family, seed, num_hidden_layers=2, **overrides)


def _batches(n: int = 2, batch: int = 5, seed: int = 0):
    return random_batches(n, batch, 12, seed=seed, token_types=False)


def _logits(model, batches) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [model(**{k: v for k, v in b.items() if k != "labels"}).logits for b in batches]
        )


def _same_encoder_new_head(model, seed: int):
    """Another seed's theta0: the same encoder, a head initialised from ``seed``."""
    classifier = resolve_classifier(model)
    torch.manual_seed(seed)
    other = type(model)(model.config).eval()
    encoder = {k: v for k, v in model.state_dict().items() if classifier.is_encoder(k)}
    other.load_state_dict(encoder, strict=False)
    return other


@pytest.mark.parametrize("case", list(CASES))
def test_pooled_features_are_what_the_head_reads(case):
    """The model's head applied to the pooled features gives the full forward's logits; the
    features equal the last real token's state (right padding: attention-mask length - 1) or the
    masked mean of the base model's output, computed by hand."""
    model = _build(case)
    assert resolve_classifier(model).pooling == CASES[case][2]
    batches = _batches()
    features, labels = pooled_features(model, batches)
    ref = _logits(model, batches)
    with torch.no_grad():
        got = classifier_logits(model, features, chunk=3)
    diff = float((got - ref).abs().max())
    print(f"[maxdiff] {case} head on pooled features vs full forward: {diff:.3e}")
    assert features.shape == (10, 32) and diff <= 1e-6
    assert torch.equal(labels, torch.cat([b["labels"] for b in batches]))
    with torch.no_grad():
        by_hand = []
        for b in batches:
            mask = b["attention_mask"]
            hidden = model.base_model(input_ids=b["input_ids"], attention_mask=mask)[0]
            pooling = CASES[case][2]
            if pooling == "first":
                by_hand.append(hidden[:, 0])
            elif pooling == "last":
                by_hand.append(hidden[torch.arange(len(mask)), mask.sum(1) - 1])
            else:
                m = mask[..., None].float()
                by_hand.append((hidden * m).sum(1) / m.sum(1))
    assert torch.allclose(features, torch.cat(by_hand), rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_shared_sweep_equals_the_full_sweep_for_each_pooling(case):
    """One theta0 sweep of the first seed's theta0 gives every theta0's importance_pre (another
    seed's random head; a probed head) as the full per-checkpoint sweep does."""
    batches = _batches(2, 6, seed=1)
    first = _build(case, seed=1)
    probe = _same_encoder_new_head(first, seed=2)
    x, y = pooled_features(probe, _batches(3, 8, seed=4))
    fit_probe(probe, x, y, epochs=3, learning_rate=1e-2, batch_size=None, weight_decay=0.0, seed=2)
    sweep = theta0_hidden_sweep(first, batches, sweep_tokens=150)
    assert sweep.pooling == CASES[case][2] and sweep.ablate.shape == (2, 4, 12, 32)
    worst = 0.0
    for model in (first, _same_encoder_new_head(first, seed=3), probe):
        full = ablation_sweep(model, batches, sweep_tokens=150).rows()
        shared = importance_from_theta0_sweep(model, sweep).rows()
        worst = max(
            worst, max(abs(a[k] - b[k]) for a, b in zip(full, shared, strict=True) for k in a)
        )
        assert np.ptp([r["I"] for r in shared]) > 0
    print(f"[maxdiff] {case} shared theta0 sweep vs full sweep: {worst:.3e}")
    assert worst <= 1e-6


@pytest.mark.parametrize("case", ["modernbert-mean", "llama", "gpt2"])
def test_probe_on_pooled_features_is_the_checkpoints_head(case):
    """A probe fitted on pooled features changes only the head and learns; the fitted head's
    loss and accuracy on the features equal those of the model's full forward on the batches."""
    model = _build(case)
    classifier = resolve_classifier(model)
    encoder = {k: v.clone() for k, v in model.state_dict().items() if classifier.is_encoder(k)}
    batches = _batches(3, 8, seed=5)
    x, y = pooled_features(model, batches)
    before = evaluate_classifier(model, x, y)
    fit = fit_probe(
        model, x, y, epochs=30, learning_rate=3e-2, batch_size=None, weight_decay=0.0, seed=0
    )
    after = evaluate_classifier(model, x, y)
    assert fit.train_loss[-1] < fit.train_loss[0] and after["loss"] < before["loss"]
    state = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in encoder.items())
    direct = _logits(model, batches)
    loss = float(torch.nn.functional.cross_entropy(direct, y))
    acc = float((direct.argmax(-1) == y).float().mean())
    print(f"[maxdiff] {case} probe loss on features vs direct: {abs(loss - after['loss']):.3e}")
    assert loss == pytest.approx(after["loss"], abs=1e-6) and acc == after["accuracy"]


def test_a_sweep_of_another_pooling_is_refused():
    """ModernBERT's encoder is the same whatever its classifier_pooling, so the fingerprint
    matches; the sweep's pooling does not, and a cls sweep is not applied to a mean head."""
    cls = _build("modernbert-cls")
    mean = copy.deepcopy(cls)
    mean.config.classifier_pooling = "mean"
    sweep = theta0_hidden_sweep(cls, _batches(1, 4))
    with pytest.raises(EncoderMismatchError, match="'first'-pooled.*'mean' pooling"):
        importance_from_theta0_sweep(mean, sweep)


def test_right_padded_decoder_batches_give_each_example_its_own_logits():
    """With the pad token id set and right padding, each example of a padded batch gets the
    logits it gets alone (its positions and its last real token are those of the unpadded
    input)."""
    for family in ("llama", "gpt2"):
        model = tiny_model(family, num_hidden_layers=2)
        batch = _batches(1, 5)[0]
        padded = _logits(model, [batch])
        alone = []
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
            n = int(mask.sum())
            alone.append(_logits(model, [{"input_ids": ids[None, :n]}]))
        assert (batch["attention_mask"] == 0).any()
        torch.testing.assert_close(padded, torch.cat(alone), rtol=0, atol=1e-5)


class _Tokenizer:
    """The attributes :func:`prepare_padding` reads and writes of a tokenizer without a pad
    token (a decoder's, as GPT-2's and Llama's are)."""

    def __init__(self, eos: str | None = "</s>", unk: str | None = None) -> None:
        self.ids = {"</s>": 2, "<unk>": 3}
        self.eos_token, self.unk_token = eos, unk
        self.pad_token = None
        self.padding_side = "left"

    @property
    def pad_token_id(self) -> int | None:
        return None if self.pad_token is None else self.ids[self.pad_token]


def test_prepare_padding_for_a_decoder_without_a_pad_token():
    model = tiny_model("llama", pad_token_id=None, use_cache=True)
    tok = _Tokenizer()
    changed = prepare_padding(tok, model)
    assert (tok.pad_token, tok.padding_side) == ("</s>", "right")
    assert model.config.pad_token_id == 2 and model.config.use_cache is False
    assert resolve_classifier(model).pad_token_id == 2 and len(changed) == 4
    assert prepare_padding(tok, model) == []  # nothing left to change
    tok = _Tokenizer(eos=None, unk="<unk>")
    prepare_padding(tok, tiny_model("gpt2"))
    assert tok.pad_token == "<unk>"
    with pytest.raises(ModelLoadError, match="no pad, end-of-sequence or unknown token"):
        prepare_padding(_Tokenizer(eos=None), tiny_model("gpt2"))
    bert_tok = _Tokenizer()
    assert prepare_padding(bert_tok, tiny_model("bert")) == []  # a first-token head: untouched
    assert bert_tok.pad_token is None and bert_tok.padding_side == "left"
