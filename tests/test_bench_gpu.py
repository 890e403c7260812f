"""``python -m headplast.bench.gpu --tiny`` on the CPU: every stage runs, is counted and lands in
bench_gpu.json; never timings."""

from __future__ import annotations

import json
import re

import pytest
import torch

from headplast.bench import gpu as bench_gpu

LAST_LINE = re.compile(
    r"^measure_examples_per_s=\d+\.\d\d finetune_steps_per_s=\d+\.\d{3} measure_peak_share=n/a$"
)


def test_bench_gpu_tiny_runs_every_stage(tmp_path, capsys):
    out = bench_gpu.main(["--tiny", "--device", "cpu", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(lines[-1]) and lines[-1] == out["line"]
    on_disk = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert on_disk["line"] == out["line"]
    stages = on_disk["stages"]
    assert list(stages) == ["finetune", *bench_gpu.MEASURE_STAGES, "measure_total"]
    for name, row in stages.items():
        assert row["seconds"] > 0 and row["examples_per_s"] > 0 and row["flops"] > 0, name
        assert row["peak_share"] is None  # a CPU has no entry in the peak table
    total = sum(stages[n]["flops"] for n in bench_gpu.MEASURE_STAGES)
    assert stages["measure_total"]["flops"] == total
    # the pruning stage evaluates ~17 orders x 10 steps: more work than one sweep of the heads
    assert stages["pruning"]["flops"] > stages["theta1_sweep"]["flops"]
    assert on_disk["theta1_moved"] is True and on_disk["n_examples"] == 8
    assert stages["finetune"]["steps_per_s"] > 0 and on_disk["steps"] == 3


def test_peak_table_and_override():
    cpu = torch.device("cpu")
    assert bench_gpu.peak_tflops(cpu, "bf16", None) is None
    assert bench_gpu.peak_tflops(cpu, "bf16", 100.0) == 100.0
    assert bench_gpu.PEAK_TFLOPS["H200"]["bf16"] > bench_gpu.PEAK_TFLOPS["H200"]["fp32"]


def test_flops_are_counted_not_guessed():
    lin = torch.nn.Linear(8, 4, bias=False)
    assert bench_gpu.counted_flops(lambda: lin(torch.ones(3, 8))) == 2 * 3 * 8 * 4


@pytest.mark.parametrize(
    ("arch", "kv_heads"), [("ModernBERT-base", 4), ("Qwen2.5-0.5B", 2), ("Llama-3.2-1B", 2)]
)
def test_bench_gpu_arch_tiny(arch, kv_heads, tmp_path):
    """``--arch`` builds the named architecture of the built-in table (tiny: 3 layers x 4 heads,
    the family's features kept: grouped key/value heads, ModernBERT's local layers) and runs
    every stage on it."""
    argv = ["--tiny", "--device", "cpu", "--arch", arch, "--out", str(tmp_path)]
    out = bench_gpu.main([*argv, "--examples", "4", "--flop-examples", "2", "--steps", "2"])
    assert out["arch"] == arch and out["model"] == f"{arch} architecture (random weights) [tiny]"
    assert out["shape"]["layers"] == 3 and out["shape"]["heads"] == 4
    assert out["shape"]["kv_heads"] == kv_heads
    stages = out["stages"]
    assert all(stages[n]["flops"] > 0 and stages[n]["seconds"] > 0 for n in stages)
    assert all(stages[n]["peak_mem_mb"] is None for n in stages)  # a CPU: no GPU counter
    assert out["theta1_moved"] is True
    assert json.loads((tmp_path / "bench_gpu.json").read_text())["arch"] == arch


def test_bench_gpu_names_the_known_architectures(capsys):
    with pytest.raises(SystemExit):
        bench_gpu.parse_args(["--arch", "nobody/no-such-model"])
    err = capsys.readouterr().err
    assert "'nobody/no-such-model' is not a known architecture" in err
    assert "Llama-3.2-1B" in err and "answerdotai/ModernBERT-base" in err
    assert bench_gpu.parse_args([]).arch == "microsoft/deberta-v3-base"
