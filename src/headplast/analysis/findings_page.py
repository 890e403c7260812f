"""``results/findings.html``: the page a researcher reads first (docs/methods.md, "Findings").

One self-contained HTML file (no script, no external resource: it opens offline in any browser,
and inside the Snakemake report). Its styles are scoped to ``.hp-findings`` so that the report can
embed it. Numbers are printed by :func:`fmt` and carried unrounded in ``data-value`` attributes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from headplast.analysis.findings import order_words

STYLE = """
.hp-findings { font-family: system-ui, sans-serif; max-width: 72rem; margin: 1rem auto;
  color: #1a1a1a; line-height: 1.45; }
.hp-findings h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.hp-findings h2 { font-size: 1.3rem; border-bottom: 1px solid #ccc; margin-top: 2rem; }
.hp-findings h3 { font-size: 1.1rem; margin-top: 1.4rem; }
.hp-findings table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
.hp-findings th, .hp-findings td { border: 1px solid #ccc; padding: .2rem .5rem; }
.hp-findings th { background: #f2f2f2; text-align: left; }
.hp-findings td.num { text-align: right; font-variant-numeric: tabular-nums; }
.hp-findings .headline { background: #f6f8fa; border-left: 4px solid #3b6ea5;
  padding: .5rem 1rem; }
.hp-findings .warn { color: #8a4b00; }
.hp-findings .muted { color: #666; }
"""


def fmt(value: Any, spec: str = "+.2f") -> str:
    """A number as the page prints it ("-" for a missing one)."""
    if value is None:
        return "-"
    return format(float(value), spec)


def span(low: Any, high: Any, spec: str = "+.2f") -> str:
    """An interval or band as the page prints it: "low to high"."""
    return f"{fmt(low, spec)} to {fmt(high, spec)}"


def interval_text(row: Mapping[str, Any]) -> str:
    """A pair's interval cell: "lo to hi", or why there is none."""
    if row.get("rho") is None:
        return "-"
    if not row.get("informative"):
        return f"not informative ({row.get('n_seeds', 0)} seeds)"
    return span(row["ci_low"], row["ci_high"])


def p_text(row: Mapping[str, Any], key: str) -> str:
    """A head-level p cell: "0.004", or "0.004 (Holm 0.03)" for an exploratory test."""
    adj = row.get(f"{key}_adj")
    text = fmt(row.get(key), ".3g")
    return text if adj is None else f"{text} (Holm {fmt(adj, '.3g')})"


def layer_interval_text(row: Mapping[str, Any]) -> str:
    """The layer-controlled rho's interval cell, like :func:`interval_text`."""
    if row.get("rho_layer") is None:
        return "-"
    if not row.get("informative"):
        return f"not informative ({row.get('n_seeds', 0)} seeds)"
    return span(row.get("layer_ci_low"), row.get("layer_ci_high"))


def disattenuated_text(value: float | None) -> str:
    """The disattenuated rho's cell; one beyond +-1 carries the words that say what it means."""
    if value is not None and abs(value) > 1:
        return f"{fmt(value)} (beyond ±1: reliabilities underestimated)"
    return fmt(value)


def fewer_seeds(row: Mapping[str, Any]) -> str:
    """ " (1 of 2 seeds)" where the ceiling rests on fewer seeds than the rho (a seed whose
    split-half reliability is not positive has none), else ""."""
    n, of = row.get("ceiling_n_seeds", 0), row.get("n_seeds", 0)
    return f" ({n} of {of} seeds)" if row.get("noise_ceiling") is not None and n < of else ""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _cell(text: str, value: Any = None, cls: str = "num", field: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    if field:
        attrs += f' data-field="{field}"'
    if value is not None:
        attrs += f' data-value="{_e(repr(float(value)))}"'
    return f"<td{attrs}>{_e(text)}</td>"


def _table(head: Sequence[str], rows: Sequence[str], cls: str) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _sentences(lines: Sequence[str], cls: str) -> str:
    if not lines:
        return ""
    return f'<ul class="{cls}">' + "".join(f"<li>{_e(s)}</li>" for s in lines) + "</ul>"


def pairs_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The pairs table: one row per pair, ``data-pair`` naming it."""
    body = []
    for r in rows:
        cells = [
            f'<td class="pair">{_e(r["pair"])}{" (primary)" if r.get("primary") else ""}</td>',
            _cell(fmt(r["rho"]), r["rho"], field="rho"),
            _cell(interval_text(r), None, field="interval"),
            _cell(p_text(r, "p_head"), r.get("p_head"), field="p_head"),
            _cell(fmt(r.get("rho_layer")), r.get("rho_layer"), field="rho_layer"),
            _cell(layer_interval_text(r), None, field="layer_interval"),
            _cell(p_text(r, "p_head_layer"), r.get("p_head_layer"), field="p_head_layer"),
            _cell(str(r["n_seeds"]), r["n_seeds"], field="n_seeds"),
            _cell(
                fmt(r["noise_ceiling"]) + fewer_seeds(r), r["noise_ceiling"], field="noise_ceiling"
            ),
            _cell(
                disattenuated_text(r["rho_disattenuated"]) + fewer_seeds(r),
                r["rho_disattenuated"],
                field="rho_disattenuated",
            ),
            _cell(fmt(r["r_xx"]), r["r_xx"], field="r_xx"),
            _cell(fmt(r["r_yy"]), r["r_yy"], field="r_yy"),
        ]
        body.append(f'<tr data-pair="{_e(r["pair"])}">{"".join(cells)}</tr>')
    head = [
        "pair x~y",
        "rho (pooled over seeds)",
        "95 % seed interval",
        "head-level p",
        "layer-controlled rho",
        "its 95 % seed interval",
        "its head-level p (within layers)",
        "seeds",
        "noise ceiling",
        "disattenuated rho",
        "reliability of x",
        "reliability of y",
    ]
    return _table(head, body, "pairs")


def random_p_text(row: Mapping[str, Any]) -> str:
    """A pruning or freeze row's p cell: "0.004 (Holm 0.02)", or "-"."""
    p, adj = row.get("p_random"), row.get("p_adj")
    if p is None:
        return "-"
    return fmt(p, ".3g") + ("" if adj is None else f" (Holm {fmt(adj, '.3g')})")


def _random_cells(r: Mapping[str, Any], spec: str) -> str:
    """The cells pruning and freeze rows share: the random draws, the prediction interval, the
    effect paired by seed with its interval, p, seeds and the verdict."""
    pi, eci = r.get("pi") or [None, None], r.get("effect_ci") or [None, None]
    return (
        _cell(f"{fmt(r.get('random_mean'), spec)} ({r.get('n_random', 0)} draws)",
              r.get("random_mean"), field="random_mean")
        + _cell(span(pi[0], pi[1], spec), field="prediction_interval")
        + _cell(fmt(r.get("effect"), "+.3f"), r.get("effect"), field="effect")
        + _cell(span(eci[0], eci[1], "+.3f"), field="effect_interval")
        + _cell(random_p_text(r), r.get("p_random"), field="p_random")
        + _cell(str(r["n_seeds"]), r["n_seeds"], field="n_seeds")
        + _cell(r["position"] or "no verdict", None, cls="", field="position")
    )  # fmt: skip


_RANDOM_HEAD = [
    "random draws (mean)",
    "95 % prediction interval of a random draw",
    "paired by seed: minus random",
    "its 95 % seed interval",
    "p against random",
    "seeds",
    "against random",
]


def pruning_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Area under the accuracy-vs-removed-heads curve per order, against the random orders."""
    body = [
        f'<tr data-order="{_e(r["order"])}"><td>{_e(order_words(r["order"]))}</td>'
        + _cell(fmt(r["auc"], ".3f"), r["auc"], field="auc")
        + _cell(fmt(r["auc_sd"], ".3f"), r["auc_sd"], field="auc_sd")
        + _random_cells(r, ".3f")
        + "</tr>"
        for r in rows
    ]
    head = ["order", "area (mean over seeds)", "sd", *_RANDOM_HEAD]
    return _table(head, body, "pruning")


def freeze_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Accuracy change from freezing each score order's heads, against the random draws."""
    body = [
        f'<tr data-order="{_e(r["order"])}"><td>largest {_e(r["order"])} frozen</td>'
        + _cell(fmt(r["delta_acc"], "+.3f"), r["delta_acc"], field="delta_acc")
        + _cell(span(r["ci_low"], r["ci_high"], "+.3f"), field="interval")
        + _random_cells(r, "+.3f")
        + "</tr>"
        for r in rows
    ]
    head = ["frozen heads", "accuracy change (mean)", "95 % interval", *_RANDOM_HEAD]
    return _table(head, body, "freeze")


def advice_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per measure: examples measured, its split-half reliability, examples it asks for."""
    body = [
        f'<tr data-measure="{_e(r["measure"])}"><td>{_e(r["measure"])}</td>'
        + _cell(f"{r['n_examples']:,}", r["n_examples"], field="n_examples")
        + _cell(fmt(r["reliability"]), r["reliability"], field="reliability")
        + _cell(
            "-" if r["n_for_target"] is None else f"{r['n_for_target']:,}",
            r["n_for_target"],
            field="n_for_target",
        )
        + "</tr>"
        for r in rows
    ]
    target = rows[0]["target"] if rows else 0.9
    head = ["measure", "examples measured", "split-half reliability", f"examples for {target}"]
    return _table(head, body, "advice")


#: A methods-comparison row's label on the page.
_METHOD_ITEM = {
    "full~lora": "Urel: full fine-tuning ~ LoRA",
    "full": "I_pre~Urel under full fine-tuning (primary)",
    "lora": "I_pre~Urel under LoRA",
}


def _verdict_text(row: Mapping[str, Any]) -> str:
    if row.get("called") is None:
        return "no verdict"
    return "association called" if row["called"] else "not distinguishable from none"


def methods_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One start's full-vs-LoRA rows: the Urel comparison with its top-K overlap, then each
    method's I_pre~Urel."""
    body = []
    for r in rows:
        ci = {"rho": r.get("rho"), "informative": r.get("informative"),
              "n_seeds": r.get("n_seeds"), "ci_low": r.get("rho_low"),
              "ci_high": r.get("rho_high")}  # fmt: skip
        chance = fmt(r.get("overlap_chance"), ".1f")
        overlap = (
            "-"
            if r.get("overlap") is None
            else f"{fmt(r['overlap'], '.1f')} of {r['k']} (chance {chance})"
        )
        p = fmt(r.get("p_head"), ".3g") + (
            "" if r.get("p_holm") is None else f" (Holm {fmt(r['p_holm'], '.3g')})"
        )
        cells = [
            f"<td>{_e(_METHOD_ITEM.get(r['method'], r['method']))}</td>",
            _cell(fmt(r.get("rho")), r.get("rho"), field="rho"),
            _cell(interval_text(ci), None, field="interval"),
            _cell(p, r.get("p_head"), field="p_head"),
            _cell(overlap, r.get("overlap"), field="overlap"),
            _cell(str(r.get("n_seeds") or 0), r.get("n_seeds"), field="n_seeds"),
            _cell(_verdict_text(r), None, cls="", field="verdict"),
        ]
        body.append(f'<tr data-method="{_e(r["method"])}">{"".join(cells)}</tr>')
    head = [
        "comparison",
        "rho (pooled over seeds)",
        "95 % seed interval",
        "head-level p",
        "top-K Urel overlap",
        "seeds",
        "verdict",
    ]
    return _table(head, body, "methods")


def methods_section(runs: Sequence[Mapping[str, Any]]) -> str:
    """A (model, task)'s "Full fine-tuning and LoRA": per start its table and sentences."""
    parts = ['<section class="methods"><h3>Full fine-tuning and LoRA</h3>']
    parts.append(
        '<p class="muted">Do the two methods move the same heads? Spearman of their Urel per '
        "seed, pooled over the seeds usable under both, with its head-level permutation test; "
        "the top-K Urel overlap against chance; each method's I_pre~Urel. Exploratory: the "
        "full~LoRA test and LoRA's I_pre~Urel are Holm-adjusted within their family (methods)."
        "</p>"
    )
    for run in runs:
        parts.append(f'<div class="methods-run" data-start="{_e(run["start"])}">')
        rows = [r for r in run["rows"] if r["item"] != "not_compared"]
        if rows:
            parts.append(methods_table(rows))
        parts.append(_sentences(run["sentences"], "methods-sentences") + "</div>")
    return "".join(parts) + "</section>"


def run_section(run: Mapping[str, Any]) -> str:
    """One (model, task, start): seeds, pairs, pruning, freeze and subset advice."""
    s = run["sentences"]
    rid = f"{run['model']}/{run['task']}/{run['start']}"
    parts = [f'<section class="run" data-run="{_e(rid)}">']
    parts.append(f"<h3>{_e(run['model'])} · {_e(run['task'])} · {_e(run['start'])} start</h3>")
    parts.append(_sentences(s["seeds"], "seeds" + (" warn" if run["degenerate"] else "")))
    if run["no_usable_seed"]:
        return "".join(parts) + "</section>"
    parts.append(pairs_table(run["pairs"]))
    parts.append(_sentences(s["pairs"], "pair-sentences"))
    if run["pruning"]:
        parts.append(
            "<h4>Pruning (cross-fitted: each order scored on the half of the eval subset it was "
            "not computed on)</h4>" + pruning_table(run["pruning"])
        )
        parts.append(_sentences(s["pruning"], "pruning-sentences"))
    if run["freeze"]:
        parts.append("<h4>Freeze interventions</h4>" + freeze_table(run["freeze"]))
        parts.append(_sentences(s["freeze"], "freeze-sentences"))
    if run["subset_advice"]:
        parts.append("<h4>Eval subset size</h4>" + advice_table(run["subset_advice"]))
        parts.append(_sentences(s["subset_advice"], "advice-sentences"))
    return "".join(parts) + "</section>"


def headline(runs: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]]) -> str:
    """The box a reader sees first: per (model, task), the question's main pair (I_pre~Urel) in
    each start, the freeze verdicts, how the starts differ, and (where both ran) whether full
    fine-tuning and LoRA move the same heads."""
    items = []
    for t in tasks:
        lines = []
        for run in runs:
            if (run["model"], run["task"]) != (t["model"], t["task"]):
                continue
            if run["no_usable_seed"]:
                lines.append(f"{run['start']} start: {run['sentences']['seeds'][0]}")
                continue
            main = [s for s in run["sentences"]["pairs"] if s.startswith("I_pre and Urel")]
            lines += [f"{run['start']} start: {m}" for m in main[:1]]
            lines += [f"{run['start']} start: {m}" for m in run["sentences"]["freeze"]]
        lines += t["sentences"][-1:]
        for run in t.get("methods") or []:  # full fine-tuning and LoRA, where both ran
            lines += [x for x in run["sentences"] if x.startswith("Urel under full fine-tuning")]
        items.append(
            f"<h3>{_e(t['model'])} · {_e(t['task'])}</h3>" + _sentences(lines, "headline-lines")
        )
    return '<div class="headline">' + "".join(items) + "</div>"


def render_page(findings: Mapping[str, Any], explorer_href: str = "explorer.html") -> str:
    """The whole page from ``findings`` = ``{"runs": [...], "tasks": [...], "config": {...}}``
    (the ``findings.json`` the same rule writes)."""
    runs, tasks, cfg = findings["runs"], findings["tasks"], findings.get("config", {})
    body = [
        '<div class="hp-findings">',
        "<h1>Findings: do the heads that matter move?</h1>",
        '<p class="muted">Per attention head: importance by gate ablation before (I_pre) and '
        "after (I_post) fine-tuning, the gate gradient G, Ppred, and the relative weight update "
        "Urel. Every sentence below is generated from the numbers in the tables by the rules in "
        "the repository's docs/methods.md (section Findings); a different result changes the "
        "words. The primary question is I_pre~Urel (does a head's importance before fine-tuning "
        "go with how much it moves?) per model, task and start, judged by its head-level "
        "permutation test at 0.05; every other verdict is exploratory, its p Holm-adjusted "
        "within its family (the pairs; the pruning orders; the freeze orders). "
        f"Seeds {_e(', '.join(str(s) for s in cfg.get('seeds', [])))}; eval subset "
        f"{_e(cfg.get('eval_subset', '-'))} examples. Heads, measure by measure: "
        f'<a href="{_e(explorer_href)}">the heads explorer</a>.</p>',
        "<h2>What was found</h2>",
        headline(runs, tasks),
    ]
    for t in tasks:
        body.append(f'<h2 data-task="{_e(t["model"])}/{_e(t["task"])}">')
        body.append(f"{_e(t['model'])} · {_e(t['task'])}</h2>")
        body.append("<h3>How the starts differ</h3>" + _sentences(t["sentences"], "starts"))
        if t.get("methods"):
            body.append(methods_section(t["methods"]))
        for run in runs:
            if (run["model"], run["task"]) == (t["model"], t["task"]):
                body.append(run_section(run))
    body.append("</div>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Findings: head importance vs plasticity</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
