"""``results/explorer.html``: every head's measures, interactive (docs/methods.md, "Findings").

One self-contained page (plotly's JavaScript embedded: it works offline) with a selector over the
(model, task) pairs and starts: the layer x head grid of any measure, a scatter of any two, and,
on hovering or clicking a head in either, all its measures in every start as the mean over seeds
with its standard error (sd over seeds / sqrt(seeds)). Plotly draws; the page's own script only
swaps the arrays a selector picks and fills the head's table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from headplast.io import finite_or_none

#: Per-seed uncertainty columns of heads.csv: their seed means are not measures of their own.
_UNCERTAINTY_SUFFIXES = ("_se", "_ci_low", "_ci_high")
#: The measures shown first where present (grid; scatter x and y).
DEFAULT_VIEW = ("Urel", "I_pre", "Urel")


def measures_of(heads_mean: pd.DataFrame) -> list[str]:
    """The measures of a ``heads_mean.csv``: every ``<m>_mean`` column whose ``m`` is not a
    per-seed uncertainty, in the file's order."""
    out = []
    for c in heads_mean.columns:
        if c.endswith("_mean"):
            m = c.removesuffix("_mean")
            if not m.endswith(_UNCERTAINTY_SUFFIXES):
                out.append(m)
    return out


def _grid(values: np.ndarray, layer: np.ndarray, head: np.ndarray, shape: tuple[int, int]):
    g = np.full(shape, np.nan)
    g[layer, head] = values
    return [[finite_or_none(v) for v in row] for row in g]


def explorer_data(runs: Mapping[tuple[str, str, str], pd.DataFrame]) -> dict[str, Any]:
    """The page's data from each run's ``heads_mean.csv`` frame, keyed (model, task, start):
    ``{"model/task": {"layers", "heads", "measures", "starts": {start: {"n_seeds", "mean":
    {measure: grid}, "se": {measure: grid}}}}}``, grids indexed [layer][head], null where
    undefined (a standard error with one seed). Runs without heads (no usable seed) are left
    out."""
    out: dict[str, Any] = {}
    for (model, task, start), df in runs.items():
        if df.empty:
            continue
        layer, head = df["layer"].to_numpy(int), df["head"].to_numpy(int)
        shape = (int(layer.max()) + 1, int(head.max()) + 1)
        key = f"{model}/{task}"
        entry = out.setdefault(
            key, {"layers": shape[0], "heads": shape[1], "measures": [], "starts": {}}
        )
        n = df["n_seeds"].to_numpy(float)
        measures = measures_of(df)
        entry["measures"] = list(dict.fromkeys([*entry["measures"], *measures]))
        block: dict[str, Any] = {"n_seeds": int(n.max()), "mean": {}, "se": {}}
        for m in measures:
            block["mean"][m] = _grid(df[f"{m}_mean"].to_numpy(float), layer, head, shape)
            se = df[f"{m}_sd"].to_numpy(float) / np.sqrt(n)
            block["se"][m] = _grid(se, layer, head, shape)
        entry["starts"][start] = block
    return out


def _default(measures: list[str], i: int) -> str:
    want = DEFAULT_VIEW[i]
    return want if want in measures else measures[min(i, len(measures) - 1)]


def initial_figure(data: Mapping[str, Any]) -> Any:
    """The plotly figure the page opens on: the first (model, task) and start, the grid of Urel
    and the scatter of I_pre against Urel (or the first measures)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    key = next(iter(data))
    entry = data[key]
    start = next(iter(entry["starts"]))
    block = entry["starts"][start]
    ms = entry["measures"]
    grid_m, x_m, y_m = (_default(ms, i) for i in range(3))
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"{grid_m} (layer x head)", f"{y_m} vs {x_m}"),
        horizontal_spacing=0.12,
    )
    fig.add_trace(
        go.Heatmap(
            z=block["mean"][grid_m],
            colorscale="Viridis",
            colorbar={"x": 0.44, "len": 0.9},
            hovertemplate="layer %{y}, head %{x}<br>%{z:.4g}<extra></extra>",
            name="grid",
        ),
        row=1,
        col=1,
    )
    xs, ys, labels, ids = _scatter(entry, block, x_m, y_m)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            text=labels,
            customdata=ids,
            hovertemplate="%{text}<br>x %{x:.4g}<br>y %{y:.4g}<extra></extra>",
            marker={"size": 7, "color": "#3b6ea5"},
            name="heads",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="head", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="layer", dtick=1, autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text=x_m, row=1, col=2)
    fig.update_yaxes(title_text=y_m, row=1, col=2)
    fig.update_layout(height=520, margin={"t": 60, "l": 60, "r": 20, "b": 50}, showlegend=False)
    return fig


def _scatter(entry, block, x_m, y_m):
    xs, ys, labels, ids = [], [], [], []
    for la in range(entry["layers"]):
        for h in range(entry["heads"]):
            x, y = block["mean"][x_m][la][h], block["mean"][y_m][la][h]
            if x is None or y is None:
                continue
            xs.append(x)
            ys.append(y)
            labels.append(f"layer {la}, head {h}")
            ids.append([la, h])
    return xs, ys, labels, ids


SCRIPT = """
const DATA = __DATA__;
const gd = document.getElementById('explorer-plot');
const sel = (id) => document.getElementById(id);
function fill(select, values, chosen) {
  select.innerHTML = '';
  for (const v of values) { const o = document.createElement('option'); o.value = v;
    o.textContent = v; o.selected = (v === chosen); select.appendChild(o); }
}
function entry() { return DATA[sel('run').value]; }
function block() { return entry().starts[sel('start').value]; }
function update() {
  const e = entry(), b = block(), g = sel('grid').value, xm = sel('x').value, ym = sel('y').value;
  const xs = [], ys = [], text = [], ids = [];
  for (let l = 0; l < e.layers; l++) for (let h = 0; h < e.heads; h++) {
    const x = b.mean[xm] ? b.mean[xm][l][h] : null, y = b.mean[ym] ? b.mean[ym][l][h] : null;
    if (x === null || y === null) continue;
    xs.push(x); ys.push(y); text.push('layer ' + l + ', head ' + h); ids.push([l, h]);
  }
  Plotly.restyle(gd, {z: [b.mean[g] || []]}, [0]);
  Plotly.restyle(gd, {x: [xs], y: [ys], text: [text], customdata: [ids]}, [1]);
  Plotly.relayout(gd, {'xaxis2.title.text': xm, 'yaxis2.title.text': ym,
    'annotations[0].text': g + ' (layer x head)', 'annotations[1].text': ym + ' vs ' + xm});
}
function fmt(v) { return v === null || v === undefined ? '-' : Number(v).toPrecision(4); }
function show(l, h) {
  const e = entry(), starts = Object.keys(e.starts);
  let html = '<caption>layer ' + l + ', head ' + h + ' (' + sel('run').value +
    '): mean over seeds ± standard error</caption><thead><tr><th>measure</th>';
  for (const s of starts) html += '<th>' + s + ' start (' + e.starts[s].n_seeds + ' seeds)</th>';
  html += '</tr></thead><tbody>';
  for (const m of e.measures) {
    html += '<tr data-measure="' + m + '"><td>' + m + '</td>';
    for (const s of starts) {
      const b = e.starts[s], mean = b.mean[m] ? b.mean[m][l][h] : null;
      const se = b.se[m] ? b.se[m][l][h] : null;
      html += '<td data-start="' + s + '">' + fmt(mean) + (se === null ? '' : ' ± ' + fmt(se)) +
        '</td>';
    }
    html += '</tr>';
  }
  const t = sel('head-details'); t.innerHTML = html + '</tbody>';
  t.dataset.layer = l; t.dataset.head = h;
}
function onPoint(ev) {
  const p = ev.points[0];
  if (p.curveNumber === 0) show(p.y, p.x); else show(p.customdata[0], p.customdata[1]);
}
fill(sel('run'), Object.keys(DATA), Object.keys(DATA)[0]);
function onRun() {
  const e = entry();
  fill(sel('start'), Object.keys(e.starts), Object.keys(e.starts)[0]);
  for (const [id, i] of [['grid', 0], ['x', 1], ['y', 2]]) {
    const want = __DEFAULT__[i];
    fill(sel(id), e.measures, e.measures.includes(want) ? want : e.measures[0]);
  }
  update();
}
sel('run').addEventListener('change', onRun);
for (const id of ['start', 'grid', 'x', 'y']) sel(id).addEventListener('change', update);
gd.on('plotly_hover', onPoint);
gd.on('plotly_click', onPoint);
onRun();
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Heads explorer</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem 2rem; color: #1a1a1a; }
label { margin-right: 1rem; } select { margin-left: .3rem; }
table { border-collapse: collapse; font-size: .9rem; margin-top: .5rem; }
th, td { border: 1px solid #ccc; padding: .15rem .5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
</style></head><body>
<h1>Heads explorer</h1>
<p>Each head's measures, mean over the seeds used. Hover or click a head in the grid or the
scatter: its table below gives every measure in every start with its standard error across seeds.
Definitions: docs/methods.md in the workflow's repository; what they add up to:
<a href="findings.html">the findings page</a>.</p>
<div>
<label>model / task<select id="run"></select></label>
<label>start<select id="start"></select></label>
<label>grid<select id="grid"></select></label>
<label>scatter x<select id="x"></select></label>
<label>scatter y<select id="y"></select></label>
</div>
__PLOT__
<table id="head-details"><caption>Hover or click a head.</caption></table>
</body></html>
"""


def render_explorer(data: Mapping[str, Any]) -> str:
    """The whole page (about 5 MB: plotly's JavaScript is embedded)."""
    if not data:
        return PAGE.replace("__PLOT__", "<p>No run has a usable seed: nothing to explore.</p>")
    fig = initial_figure(data)
    defaults = [_default(next(iter(data.values()))["measures"], i) for i in range(3)]
    script = SCRIPT.replace("__DATA__", json.dumps(data, allow_nan=False)).replace(
        "__DEFAULT__", json.dumps(defaults)
    )
    plot = fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="explorer-plot",
        post_script=script,
        config={"responsive": True, "displaylogo": False},
    )
    return PAGE.replace("__PLOT__", plot)
