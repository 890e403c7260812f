"""headplast.analysis.methods_comparison: full fine-tuning and LoRA side by side, on simulated
heads tables with a known truth (LoRA's Urel independent of full's: the verdict's false-positive
rate; equal plus small noise: its power), and the rows, Holm family and sentences by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from headplast.analysis.methods_comparison import (
    ACROSS,
    COLUMNS,
    NOT_COMPARED,
    PAIR,
    compare_methods,
    methods_sections,
)

LAYERS, HEADS = 4, 6  # 24 heads


def _heads(urel: np.ndarray) -> pd.DataFrame:
    layer, head = np.divmod(np.arange(urel.size), HEADS)
    return pd.DataFrame({"layer": layer, "head": head, "Urel": urel})


def _pair_stats(seeds, rho=0.3, ci=(0.1, 0.5), p=0.01, n=None, informative=True):
    return {
        "seeds": list(seeds),
        "pairs": {
            PAIR: {
                "rho": {
                    "mean": rho,
                    "ci": list(ci),
                    "n": len(seeds) if n is None else n,
                    "informative": informative,
                    "values": {str(s): rho for s in seeds},
                    "head_test": {"p": p},
                }
            }
        },
    }


def _simulate(rng, truth: str, n_seeds=4, noise=0.3):
    """Per seed: full's Urel = a + noise, LoRA's = b + noise with b independent of a (null) or
    b = a (effect); a and b are stable across seeds, so every seed's rho is nearly the same."""
    n = LAYERS * HEADS
    a = rng.standard_normal(n)
    b = rng.standard_normal(n) if truth == "null" else a
    full = {s: _heads(a + noise * rng.standard_normal(n)) for s in range(1, n_seeds + 1)}
    lora = {s: _heads(b + noise * rng.standard_normal(n)) for s in range(1, n_seeds + 1)}
    seeds = list(full)
    return {
        "heads_full": full,
        "heads_lora": lora,
        "pair_stats_full": _pair_stats(seeds),
        "pair_stats_lora": _pair_stats(seeds),
        "top_k": 5,
        "n_permutations": 199,
    }


def _call_rate(truth: str, runs: int = 60) -> float:
    rng = np.random.default_rng(30 if truth == "null" else 31)
    sims = {("m", "t", f"s{i}"): _simulate(rng, truth) for i in range(runs)}
    table = compare_methods(sims)
    across = table[table["item"] == ACROSS]
    assert len(across) == runs
    return float(across["called"].astype(bool).mean())


def test_independent_urel_is_called_at_most_at_the_test_level():
    """Null: LoRA's Urel ranking unrelated to full's but stable across seeds, where the seed
    interval alone excludes 0 in most runs: the head-level test keeps the call rate at 5 %
    (plus 3 Monte Carlo s.e. over 60 runs)."""
    rate = _call_rate("null")
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 60), rate


def test_equal_urel_with_small_noise_is_called_in_nearly_every_run():
    rate = _call_rate("effect")
    assert rate >= 0.95, rate


def test_rows_numbers_and_holm_family():
    rng = np.random.default_rng(0)
    sim = _simulate(rng, "effect", n_seeds=3, noise=0.1)
    sim["pair_stats_lora"] = _pair_stats([1, 2, 3], rho=0.2, ci=(0.05, 0.35), p=0.03)
    table = compare_methods({("m", "t", "random"): sim})
    assert list(table.columns) == COLUMNS
    across = table[table["item"] == ACROSS].iloc[0]
    assert across["n_seeds"] == 3 and across["seeds"] == "1;2;3"
    assert across["k"] == 5 and across["overlap_chance"] == pytest.approx(25 / 24)
    assert across["rho"] > 0.9 and across["rho_low"] > 0.8 and across["called"]
    assert across["overlap"] >= 4
    # the family: full~lora and LoRA's I_pre~Urel, Holm over two tests; full's pair stays raw
    lora = table[(table["item"] == PAIR) & (table["method"] == "lora")].iloc[0]
    full = table[(table["item"] == PAIR) & (table["method"] == "full")].iloc[0]
    p_min = min(across["p_head"], 0.03)
    assert min(across["p_holm"], lora["p_holm"]) == pytest.approx(2 * p_min)
    assert lora["p_holm"] == pytest.approx(max(0.03, 2 * p_min))  # Holm: m, then m - 1
    assert math.isnan(full["p_holm"]) and full["primary"] and full["called"]
    assert lora["called"] == bool(lora["p_holm"] <= 0.05)


def test_seeds_usable_under_both_only_and_not_compared_runs():
    rng = np.random.default_rng(1)
    sim = _simulate(rng, "effect", n_seeds=4)
    sim["pair_stats_full"] = _pair_stats([1, 2, 3])  # seed 4 degenerate under full
    sim["pair_stats_lora"] = _pair_stats([2, 3, 4])  # seed 1 degenerate under LoRA
    none = _simulate(rng, "effect", n_seeds=2)
    none["pair_stats_lora"] = {"seeds": [], "pairs": {}, "no_usable_seed": "no usable seed: x"}
    table = compare_methods({("m", "t", "random"): sim, ("m", "t", "probe"): none})
    across = table[table["item"] == ACROSS].iloc[0]
    assert across["seeds"] == "2;3" and across["n_seeds"] == 2
    assert not across["informative"] and pd.isna(across["called"])
    assert "1, 4 usable under one method only" in across["note"]
    nc = table[table["item"] == NOT_COMPARED].iloc[0]
    assert nc["start"] == "probe" and "lora: no usable seed: x" in nc["note"]
    sections = methods_sections(table)
    assert [r["start"] for r in sections[0]["runs"]] == ["random", "probe"]
    random, probe = (r["sentences"] for r in sections[0]["runs"])
    assert "interval over seeds is not informative" in random[1]
    assert probe == ["The probe start: not compared: lora: no usable seed: x."]


def test_sentences_from_the_csv_read_back(tmp_path):
    rng = np.random.default_rng(2)
    table = compare_methods({("m", "t", "random"): _simulate(rng, "effect")})
    path = tmp_path / "methods_comparison.csv"
    table.to_csv(path, index=False)
    sections = methods_sections(pd.read_csv(path))
    (run,) = sections[0]["runs"]
    text = " ".join(run["sentences"])
    assert "under LoRA, random start (exploratory): a strong positive association" in text
    assert "move more under LoRA too" in text and "Holm-adjusted" in text
    assert "Top-5 Urel heads shared by the two methods" in text
    assert "I_pre and Urel under full fine-tuning (the primary question): a" in text
    assert "I_pre and Urel under LoRA (exploratory)" in text
    assert methods_sections(None) == [] and methods_sections(table.iloc[:0]) == []


def test_heads_that_differ_between_methods_are_refused():
    from headplast.io import ArtifactError

    rng = np.random.default_rng(3)
    sim = _simulate(rng, "null", n_seeds=3)
    sim["heads_lora"][2] = sim["heads_lora"][2].iloc[1:]
    with pytest.raises(ArtifactError, match="seed 2: full fine-tuning's and LoRA's heads differ"):
        compare_methods({("m", "t", "random"): sim})


def test_the_script_writes_the_table_and_the_page_shows_it(tmp_path):
    """workflow/scripts/compare_methods.py on synthetic files, as the rule calls it (two runs of
    one model and task, 3 seeds, the probe start's seed 3 degenerate under LoRA); its table on
    the findings page as a "Full fine-tuning and LoRA" section, and no section without it."""
    from headplast.analysis.findings import build_findings
    from headplast.analysis.findings_page import render_page
    from headplast.io import write_json
    from tests.script_runner import run_script
    from tests.test_findings import one_run

    rng = np.random.default_rng(4)
    runs, seed_runs = ["m/t/random", "m/t/probe"], []
    files = {"heads_full": [], "heads_lora": [], "pair_stats_full": [], "pair_stats_lora": []}
    for run in runs:
        sim = _simulate(rng, "effect", n_seeds=3)
        if run.endswith("probe"):
            sim["pair_stats_lora"] = _pair_stats([1, 2])
        for method in ("full", "lora"):
            d = tmp_path / run / method
            d.mkdir(parents=True)
            write_json(d / "pair_stats.json", sim[f"pair_stats_{method}"])
            files[f"pair_stats_{method}"].append(str(d / "pair_stats.json"))
            for s, df in sim[f"heads_{method}"].items():
                df.to_csv(d / f"heads{s}.csv", index=False)
                files[f"heads_{method}"].append(str(d / f"heads{s}.csv"))
        seed_runs += [f"{run}/{s}" for s in (1, 2, 3)]
    params = {"runs": runs, "seed_runs": seed_runs, "top_k": 5, "n_permutations": 99, "seed": 0}
    run_script(
        "compare_methods",
        tmp_path,
        files,
        {"table": str(tmp_path / "methods_comparison.csv")},
        params,
        {},
    )
    table = pd.read_csv(tmp_path / "methods_comparison.csv")
    across = table[table["item"] == ACROSS].set_index("start")
    assert across.loc["random", "seeds"] == "1;2;3" and across.loc["probe", "seeds"] == "1;2"
    assert across.loc["random", "p_head"] == pytest.approx(0.01)  # the smallest p of 99 shuffles
    assert bool(across.loc["random", "called"]) and pd.isna(across.loc["probe", "called"])
    findings_runs = {("m", "t", s): one_run({1: 0.3, 2: 0.5, 3: 0.4}) for s in ("random", "probe")}
    with_methods = build_findings(findings_runs, {"seeds": [1, 2, 3]}, methods_sections(table))
    (task,) = with_methods["tasks"]
    assert [r["start"] for r in task["methods"]] == ["random", "probe"]
    page = render_page(with_methods)
    assert page.count("<h3>Full fine-tuning and LoRA</h3>") == 1
    assert page.count('data-method="full~lora"') == 2 and "move more under LoRA too" in page
    box = page.split('<div class="headline">')[1].split("</div>")[0]
    assert box.count("Urel under full fine-tuning and under LoRA") == 2  # in the box too
    without = build_findings(findings_runs, {"seeds": [1, 2, 3]})
    assert "methods" not in without["tasks"][0]
    assert "Full fine-tuning and LoRA" not in render_page(without)
