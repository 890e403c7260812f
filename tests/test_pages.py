"""The pages we ship, opened in headless Chromium: findings.html shows pair_stats.json's numbers,
explorer.html shows a hovered head's values; neither logs a console error nor requests anything
(both work offline)."""

import json
import math
import re

import pandas as pd
import pytest

from headplast.analysis.explorer import explorer_data, render_explorer
from headplast.analysis.findings import FINDINGS_PAIRS
from headplast.analysis.findings_page import fmt, render_page
from tests.browser import hover_cell, open_page
from tests.test_explorer import heads_mean
from tests.test_findings import one_run


def expected_interval(rho: dict) -> str:
    if not rho.get("informative"):
        return f"not informative ({rho['n']} seeds)"
    lo, hi = rho["ci"]
    return f"{fmt(lo)} to {fmt(hi)}"


def check_findings_table(page, results, run: str) -> int:
    """Every findings pair of ``run``'s pair_stats.json has its row with the same numbers."""
    pair_stats = json.loads((results / run / "summary/pair_stats.json").read_text())
    section = page.locator(f'section[data-run="{run}"]')
    findings = json.loads((results / "findings.json").read_text())
    (block_of_run,) = [
        r for r in findings["runs"] if "/".join((r["model"], r["task"], r["start"])) == run
    ]
    withheld = {r["pair"]: bool(r.get("noise_sides")) for r in block_of_run["pairs"]}
    checked = 0
    for name in FINDINGS_PAIRS:
        block = pair_stats["pairs"].get(name)
        row = section.locator(f'tr[data-pair="{name}"]')
        assert row.count() == 1, f"{run}: no row for {name}"
        if block is None:
            continue

        def cell(field, row=row):
            return row.locator(f'[data-field="{field}"]').inner_text().strip()

        assert cell("rho") == fmt(block["rho"]["mean"])
        assert cell("interval") == expected_interval(block["rho"])
        assert cell("n_seeds") == str(block["rho"]["n"])
        if withheld.get(name):  # a side at noise level: ceiling and disattenuation withheld
            assert cell("noise_ceiling") == "-" and cell("rho_disattenuated") == "-"
        else:
            assert cell("noise_ceiling").startswith(fmt(block["noise_ceiling"]["mean"]))
            assert cell("rho_disattenuated").startswith(fmt(block["rho_disattenuated"]["mean"]))
        checked += 1
    return checked


@pytest.mark.dag
def test_findings_page_shows_pair_stats_in_chromium(finished, browser):
    results = finished / "results"
    findings = json.loads((results / "findings.json").read_text())
    runs = [f"{r['model']}/{r['task']}/{r['start']}" for r in findings["runs"]]
    assert len(runs) == 4  # 2 tasks x 2 starts
    with open_page(browser, results / "findings.html") as page:
        assert page.title().startswith("Findings")
        headline = page.locator(".headline")
        assert headline.is_visible()
        first_table = page.locator("table.pairs").first.bounding_box()
        assert headline.bounding_box()["y"] < first_table["y"]  # the answer comes first
        assert sum(check_findings_table(page, results, run) for run in runs) == 4 * len(
            FINDINGS_PAIRS
        )
        # every sentence of findings.json is on the page, as written
        text = page.inner_text("body")
        for r in findings["runs"]:
            for lines in r["sentences"].values():
                for s in lines:
                    assert s in text
        page.click("text=the heads explorer")
        page.wait_for_selector("#explorer-plot")
        assert page.title() == "Heads explorer"


def parse_cell(text: str) -> tuple[float, float | None]:
    mean, _, se = text.partition(" ± ")
    return float(mean), (float(se) if se else None)


def check_head_table(page, heads_by_start: dict, layer: int, head: int) -> None:
    """The details table names the head and gives each start's mean +- se of every measure."""
    table = page.locator("#head-details")
    assert table.get_attribute("data-layer") == str(layer)
    assert table.get_attribute("data-head") == str(head)
    assert f"layer {layer}, head {head}" in table.locator("caption").inner_text()
    for start, df in heads_by_start.items():
        r = df[(df["layer"] == layer) & (df["head"] == head)].iloc[0]
        for measure in ("Urel", "I_pre", "G"):
            text = table.locator(f'tr[data-measure="{measure}"] td[data-start="{start}"]')
            mean, se = parse_cell(text.inner_text())
            assert mean == pytest.approx(r[f"{measure}_mean"], rel=1e-3, abs=1e-12)
            want_se = r[f"{measure}_sd"] / math.sqrt(r["n_seeds"])
            assert se == pytest.approx(want_se, rel=1e-3, abs=1e-12)


@pytest.mark.dag
def test_explorer_hover_shows_the_heads_values_in_chromium(finished, browser):
    results = finished / "results"
    model, task = "tiny_bert", "nli_b"
    heads = {
        s: pd.read_csv(results / model / task / s / "summary/heads_mean.csv")
        for s in ("random", "probe")
    }
    with open_page(browser, results / "explorer.html") as page:
        page.select_option("#run", f"{model}/{task}")
        hover_cell(page, layer=1, head=2)
        page.wait_for_selector("#head-details[data-layer='1'][data-head='2']")
        check_head_table(page, heads, 1, 2)
        # the scatter: hover the head with the largest Urel of the probe start
        page.select_option("#start", "probe")
        page.select_option("#x", "I_pre")
        page.select_option("#y", "Urel")
        top = heads["probe"].sort_values("Urel_mean").iloc[-1]
        pos = page.evaluate(
            """([x, y]) => { const gd = document.getElementById('explorer-plot');
            const fl = gd._fullLayout, r = gd.getBoundingClientRect();
            return {x: r.left + fl.xaxis2._offset + fl.xaxis2.l2p(x),
                    y: r.top + fl.yaxis2._offset + fl.yaxis2.l2p(y)}; }""",
            [float(top["I_pre_mean"]), float(top["Urel_mean"])],
        )
        page.mouse.move(pos["x"] - 20, pos["y"] + 20)
        page.mouse.move(pos["x"], pos["y"], steps=5)
        la, h = int(top["layer"]), int(top["head"])
        page.wait_for_selector(f"#head-details[data-layer='{la}'][data-head='{h}']")
        check_head_table(page, heads, la, h)
        # the grid follows the selectors
        z = page.evaluate("() => document.getElementById('explorer-plot').data[0].z")
        assert z[la][h] == pytest.approx(float(top["Urel_mean"]))


def test_pages_from_synthetic_results_render_without_errors(browser, tmp_path):
    """The fast tier's browser check: both pages, built from synthetic summaries, open and work
    in Chromium (no DAG run)."""
    from headplast.analysis.findings import build_findings

    findings = build_findings(
        {
            ("m", "t", "random"): one_run({1: 0.3, 2: 0.5, 3: 0.4}),
            ("m", "t", "probe"): one_run({1: -0.5, 2: -0.45, 3: -0.52}),
        },
        {"seeds": [1, 2, 3], "eval_subset": 64},
    )
    (tmp_path / "findings.html").write_text(render_page(findings), encoding="utf-8")
    data = explorer_data(
        {("m", "t", "random"): heads_mean(), ("m", "t", "probe"): heads_mean(shift=1.0)}
    )
    (tmp_path / "explorer.html").write_text(render_explorer(data), encoding="utf-8")
    with open_page(browser, tmp_path / "findings.html") as page:
        text = page.inner_text(".headline")
        assert "The starts differ" in text
        assert re.search(r"I_pre and Urel \(primary question\): a [\w ]*positive association", text)
    with open_page(browser, tmp_path / "explorer.html") as page:
        hover_cell(page, layer=1, head=2)
        page.wait_for_selector("#head-details[data-layer='1'][data-head='2']")
        cell = page.locator('#head-details tr[data-measure="Urel"] td[data-start="probe"]')
        assert parse_cell(cell.inner_text())[0] == pytest.approx(1.12)
