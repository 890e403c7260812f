"""``python -m headplast.bench.gpu --tiny`` on the CPU: every stage runs, is counted and lands in
bench_gpu.json; never timings."""

from __future__ import annotations

import json
import re

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
