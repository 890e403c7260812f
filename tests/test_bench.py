"""Smoke test of ``python -m headplast.bench`` on tiny models: structure and output format
only, never timings."""

from __future__ import annotations

import json
import re

from headplast.bench import ratios as bench

LAST_LINE = re.compile(
    r"^sweep_vs_naive_L12=(\d+\.\d+) sweep_vs_naive_L6=(\d+\.\d+) gradfisher_speedup=(\d+\.\d+)$"
)


def test_bench_tiny_smoke(tmp_path, capsys):
    out = tmp_path / "bench"
    summary = bench.main(["--out", str(out), "--tiny", "--full", "--examples", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    match = LAST_LINE.match(lines[-1])
    assert match, lines[-1]
    assert lines[-1] == summary["line"]
    assert float(match.group(1)) > 0 and float(match.group(2)) > 0 and float(match.group(3)) > 0

    names = sorted(p.name for p in out.glob("*.json"))
    assert names == [
        "bench_deberta_v2_L12.json",
        "bench_full.json",
        "bench_minilm_L6.json",
        "summary.json",
    ]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["line"] == lines[-1]
    assert on_disk["all_cached_match_naive"] is True
    for name, layers in (("deberta_v2_L12", 12), ("minilm_L6", 6)):
        r = json.loads((out / f"bench_{name}.json").read_text())
        assert r["n_layers"] == layers
        s = r["sweep"]
        assert s["flop_floor"] == round((layers + 1) / (2 * layers), 4)
        for variant in ("cached_k1", "cached_stacked"):
            assert s[variant]["matches_naive"] is True
            assert s[variant]["seconds"] > 0 and s[variant]["ablated_tokens_per_s"] > 0
        t = r["shared_theta0"]  # one hidden-state sweep for 4 checkpoints gives their I exactly
        assert t["n_theta0"] == 4 and t["max_abs_diff_I"] <= 1e-6 and t["shared_vs_full"] > 0
        g = r["gradfisher"]
        assert g["batch_size"] == 4 and g["max_rel_diff_G_F"] <= 1e-5
        p = r["padding_bench_examples"]
        assert p["real_tokens"] <= p["length_bucketed"]["padded_tokens"]
        assert p["length_bucketed"]["padded_tokens"] <= p["fixed_order"]["padded_tokens"]
    full = json.loads((out / "bench_full.json").read_text())
    assert full["n_examples"] == 8 and full["finite"] is True
    assert full["stage_s"] >= full["importance_s"] > 0


def test_mnli_like_lengths_deterministic():
    a = bench.mnli_like_lengths(1000, seed=3)
    assert a == bench.mnli_like_lengths(1000, seed=3)
    assert 16 <= min(a) and max(a) <= 128
    assert 30 <= sorted(a)[500] <= 60  # median in the MNLI range


def test_deberta_v3_base_config_matches_the_reference_architecture():
    c = bench.deberta_v3_base_config()
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (
        768,
        12,
        12,
        3072,
    )
    assert c.vocab_size == 128100 and c.relative_attention and c.position_buckets == 256
    assert c.pos_att_type == ["p2c", "c2p"] and c.share_att_key and c.norm_rel_ebd == "layer_norm"
    assert c.max_relative_positions == -1 and c.position_biased_input is False


def test_attention_core_skip_is_used_and_its_fallback_is_exact(monkeypatch):
    """The cached sweep reuses the ablated layer's head contexts where the attention core feeds
    the output projection directly (BERT, DeBERTa); without that reuse it is exact as well."""
    import torch

    from headplast.measure import importance, prefix_cache
    from headplast.model.adapters import resolve_layout

    from .conftest import random_batches, tiny_bert, tiny_deberta

    for model in (tiny_bert(), tiny_deberta()):
        layout = resolve_layout(model)
        batch = random_batches(1, batch=3)[0]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            _, cached, core = prefix_cache.forward_capturing(model, layout, inputs)
        assert len(cached) == len(core) == layout.n_layers
        assert all(c is not None for c in core)

    model = tiny_deberta()
    batches = random_batches(2, batch=3)
    naive = importance.naive_sweep(model, batches)
    capture = prefix_cache.forward_capturing

    def without_core(*args):
        logits, cached, core = capture(*args)
        return logits, cached, [None] * len(core)

    monkeypatch.setattr(prefix_cache, "forward_capturing", without_core)
    for sweep_tokens in (None, 10_000):
        fast = importance.ablation_sweep(model, batches, sweep_tokens=sweep_tokens)
        rel = abs(fast.loss_ablate - naive.loss_ablate).max() / abs(naive.loss_ablate).max()
        assert rel <= 1e-5
