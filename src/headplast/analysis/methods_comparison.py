"""Full fine-tuning and LoRA side by side: do the two methods move the same heads?

Per (model, task, start) with runs under both methods (docs/methods.md, "Findings"), on the seeds
usable under both (each method's summaries decide its degenerate seeds: ``pair_stats.json``'s
``seeds``):

- each seed's Spearman rho between full fine-tuning's and LoRA's Urel across heads, pooled over
  the seeds on Fisher's z with its seed interval (:func:`headplast.analysis.summary.
  fisher_z_pool`) and tested at the level of heads (:func:`headplast.analysis.head_permutation.
  pooled_permutation_test`: LoRA's head labels shuffled alike in every seed). Both methods start
  from the same theta0 and are measured on the same eval examples, so two Urel rankings that are
  stable across seeds but unrelated across heads give nearly the same rho in every seed: the seed
  interval alone would call them associated; the head-level test does not;
- each seed's top-K Urel overlap (K = ``analysis.top_k``) against the chance overlap K*K/n, and
  its mean over the seeds;
- each method's own I_pre~Urel pooled rho, interval and head-level p, as its ``pair_stats.json``
  gives them (each over its own usable seeds).

The verdict on "full~lora" follows the pairs' rule (:func:`headplast.analysis.findings.
association_call`: the head-level test rejects and the seed interval excludes 0; strength words
from the interval), exploratory, its p Holm-adjusted within the run's "methods" family: the
full~lora test and LoRA's I_pre~Urel test (full fine-tuning's I_pre~Urel is the page's primary
question, judged unadjusted in its own run section). Fewer than 3 seeds: no verdict. No torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from headplast.analysis.correlation import spearman
from headplast.analysis.findings import verdict_clause
from headplast.analysis.head_permutation import holm, pooled_permutation_test
from headplast.analysis.statistics import topk_overlap
from headplast.analysis.summary import MIN_INFORMATIVE_SEEDS, fisher_z_pool
from headplast.io import ArtifactError, finite_or_none, json_value

KEY = ["layer", "head"]
#: The measure whose rankings the methods are compared on.
MEASURE = "Urel"
#: The pair each method's own question is read from (its pair_stats.json).
PAIR = "I_pre~Urel"
#: The item of the methods' Urel comparison.
ACROSS = "Urel full~lora"
#: The item of a run that cannot be compared (no seed usable under both methods).
NOT_COMPARED = "not_compared"

COLUMNS = [
    "model",
    "task",
    "start",
    "item",  # ACROSS, PAIR (one row per method) or NOT_COMPARED
    "method",  # "full~lora" for ACROSS; "full" or "lora" for PAIR
    "rho",  # pooled over seeds on Fisher's z
    "rho_low",
    "rho_high",  # its 95 % seed interval (Fisher's z)
    "informative",  # at least MIN_INFORMATIVE_SEEDS seeds
    "p_head",  # head-level permutation p of the pooled rho
    "p_holm",  # Holm-adjusted within the run's "methods" family (None outside it)
    "called",  # an association is called (association_call); None: no verdict made
    "primary",  # full fine-tuning's I_pre~Urel: the page's primary question
    "overlap",  # ACROSS: mean over seeds of the top-K Urel overlap
    "overlap_chance",  # K*K/n
    "k",
    "n_heads",
    "n_seeds",
    "seeds",  # ";"-joined
    "per_seed_rho",  # "seed:rho;..." (ACROSS; PAIR: pair_stats' per-seed values)
    "per_seed_overlap",  # "seed:overlap;..." (ACROSS)
    "note",  # why a run is not compared; which seeds one method alone could use
]


def _cell(values: Mapping[Any, Any]) -> str:
    return ";".join(
        f"{k}:{'' if v is None else format(float(v), '.6f')}" for k, v in values.items()
    )


def _urel_matrix(
    heads_full: Mapping[int, pd.DataFrame], heads_lora: Mapping[int, pd.DataFrame], seeds
) -> tuple[np.ndarray, np.ndarray]:
    """[S, N] Urel of each method, heads aligned on (layer, head) and the same in every seed."""
    xs, ys, ref = [], [], None
    for s in seeds:
        for name, frames in (("full fine-tuning", heads_full), ("LoRA", heads_lora)):
            if s not in frames:
                raise ArtifactError(f"seed {s}: no heads table of {name}")
            if MEASURE not in frames[s].columns:
                raise ArtifactError(f"seed {s}: the heads table of {name} has no {MEASURE}")
        a = heads_full[s][[*KEY, MEASURE]].sort_values(KEY)
        b = heads_lora[s][[*KEY, MEASURE]].sort_values(KEY)
        keys_a = list(map(tuple, a[KEY].to_numpy().tolist()))
        keys_b = list(map(tuple, b[KEY].to_numpy().tolist()))
        if keys_a != keys_b or (ref is not None and keys_a != ref):
            raise ArtifactError(
                f"seed {s}: full fine-tuning's and LoRA's heads differ ({len(keys_a)} vs "
                f"{len(keys_b)} rows) or differ from another seed's; both must come from the "
                "same model"
            )
        ref = keys_a
        xs.append(a[MEASURE].to_numpy(float))
        ys.append(b[MEASURE].to_numpy(float))
    return np.stack(xs), np.stack(ys)


def _pair_row(method: str, pair_stats: Mapping[str, Any]) -> dict[str, Any]:
    """One method's I_pre~Urel as its summaries pooled it."""
    rho = ((pair_stats.get("pairs") or {}).get(PAIR) or {}).get("rho") or {}
    low, high = rho.get("ci") or [None, None]
    values = rho.get("values") or {}
    return {
        "item": PAIR,
        "method": method,
        "rho": rho.get("mean"),
        "rho_low": low,
        "rho_high": high,
        "informative": bool(rho.get("informative")),
        "p_head": (rho.get("head_test") or {}).get("p"),
        "primary": method == "full",
        "n_seeds": int(rho.get("n") or 0),
        "seeds": ";".join(str(s) for s in pair_stats.get("seeds", [])),
        "per_seed_rho": _cell(values),
        "note": "" if rho else f"{PAIR} not in {method}'s summaries",
    }


def compare_run(
    heads_full: Mapping[int, pd.DataFrame],
    heads_lora: Mapping[int, pd.DataFrame],
    pair_stats_full: Mapping[str, Any],
    pair_stats_lora: Mapping[str, Any],
    top_k: int = 20,
    n_permutations: int = 10_000,
    perm_seed: int = 0,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """The rows of one (model, task, start), without those three names and before the Holm
    adjustment (:func:`compare_methods` adds both): the :data:`ACROSS` row and one :data:`PAIR`
    row per method, or one :data:`NOT_COMPARED` row whose ``note`` says why. ``heads_*``: the
    per-seed heads tables of each method (at least the seeds usable under both)."""
    usable = {
        "full": [int(s) for s in pair_stats_full.get("seeds", [])],
        "lora": [int(s) for s in pair_stats_lora.get("seeds", [])],
    }
    seeds = [s for s in usable["full"] if s in usable["lora"]]
    if not seeds:
        why = [
            f"{name}: {ps['no_usable_seed']}"
            for name, ps in (("full", pair_stats_full), ("lora", pair_stats_lora))
            if ps.get("no_usable_seed")
        ] or [
            f"no seed is usable under both methods (full: {usable['full']}, lora: {usable['lora']})"
        ]
        note = "not compared: " + "; ".join(why)
        return [{"item": NOT_COMPARED, "method": "full~lora", "note": note}]
    alone = sorted(set(usable["full"]) ^ set(usable["lora"]))
    x, y = _urel_matrix(heads_full, heads_lora, seeds)
    n = x.shape[1]
    k = min(int(top_k), n)
    rhos = {s: finite_or_none(spearman(x[i], y[i]).rho) for i, s in enumerate(seeds)}
    overlaps = {s: topk_overlap(x[i], y[i], k)["overlap"] for i, s in enumerate(seeds)}
    pooled = fisher_z_pool(list(rhos.values()), level, n_heads=n)
    test = pooled_permutation_test(x, y, n_permutations=n_permutations, seed=perm_seed)
    low, high = pooled["ci"]
    across = {
        "item": ACROSS,
        "method": "full~lora",
        "rho": pooled["mean"],
        "rho_low": low,
        "rho_high": high,
        "informative": pooled["informative"],
        "p_head": test["p"],
        "primary": False,
        "overlap": float(np.mean(list(overlaps.values()))),
        "overlap_chance": k * k / n,
        "k": k,
        "n_heads": n,
        "n_seeds": pooled["n"],
        "seeds": ";".join(str(s) for s in seeds),
        "per_seed_rho": _cell(rhos),
        "per_seed_overlap": _cell(overlaps),
        "note": (
            f"seed(s) {', '.join(map(str, alone))} usable under one method only: left out"
            if alone
            else ""
        ),
    }
    return [across, _pair_row("full", pair_stats_full), _pair_row("lora", pair_stats_lora)]


def _in_family(row: Mapping[str, Any]) -> bool:
    """The "methods" family: the informative full~lora test and LoRA's informative I_pre~Urel."""
    return (
        bool(row.get("informative"))
        and row.get("p_head") is not None
        and (row["item"] == ACROSS or (row["item"] == PAIR and row["method"] == "lora"))
    )


def compare_methods(runs: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> pd.DataFrame:
    """``methods_comparison.csv``: :func:`compare_run` of each ``runs[(model, task, start)]``
    (its keyword arguments), then per run the Holm adjustment of its "methods" family
    (``p_holm``) and each row's verdict (``called``: :func:`headplast.analysis.findings.
    association_call` on the interval and the decisive p, Holm-adjusted in the family and raw for
    full fine-tuning's I_pre~Urel; None where no verdict is made: fewer than 3 seeds, or
    nothing measured)."""
    rows = []
    for (model, task, start), kwargs in runs.items():
        run_rows = [
            {"model": model, "task": task, "start": start, **r} for r in compare_run(**kwargs)
        ]
        family = [i for i, r in enumerate(run_rows) if _in_family(r)]
        adjusted = holm([run_rows[i]["p_head"] for i in family])
        for i, p in zip(family, adjusted, strict=True):
            run_rows[i]["p_holm"] = p
        for r in run_rows:
            if r["item"] == NOT_COMPARED or r.get("rho") is None or not r.get("informative"):
                r["called"] = None
                continue
            p = r.get("p_holm") if _in_family(r) else r.get("p_head")
            r["called"] = verdict_clause(r["rho"], r["rho_low"], r["rho_high"], p, "rho")[0]
        rows += run_rows
    table = pd.DataFrame(rows, columns=COLUMNS)
    num = ["rho", "rho_low", "rho_high", "p_head", "p_holm", "overlap", "overlap_chance"]
    table[num] = table[num].apply(pd.to_numeric)
    counts = ["k", "n_heads", "n_seeds"]  # integers with gaps: "5", not "5.0", in the CSV
    table[counts] = table[counts].apply(pd.to_numeric).astype("Int64")
    return table.reset_index(drop=True)


# --------------------------------------------------------------------------- the findings page


def _per_seed(text: Any) -> dict[str, float | None]:
    if not isinstance(text, str) or not text.strip():
        return {}
    out = {}
    for part in text.split(";"):
        seed, _, value = part.partition(":")
        out[seed.strip()] = float(value) if value.strip() else None
    return out


def _flag(v: Any) -> bool | None:
    """A boolean cell as pandas reads it back (True/False, "True"/"False", NaN for None)."""
    v = json_value(v)
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v.strip().lower() == "true"
    return bool(v)


def table_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The CSV's rows as plain values (None for missing; per-seed cells as dicts)."""
    out = []
    for r in table.to_dict("records"):
        row = {k: json_value(v) for k, v in r.items()}
        for col in ("informative", "called", "primary"):
            row[col] = _flag(r.get(col))
        row["per_seed_rho"] = _per_seed(r.get("per_seed_rho"))
        row["per_seed_overlap"] = _per_seed(r.get("per_seed_overlap"))
        for col in ("note", "seeds", "method", "item"):
            row[col] = "" if row.get(col) is None else str(row[col])
        for col in ("k", "n_heads", "n_seeds"):
            row[col] = None if row.get(col) is None else int(row[col])
        out.append(row)
    return out


def _not_informative(what: str, row: Mapping[str, Any]) -> str:
    seeds = ", ".join(f"seed {k} {v:+.2f}" for k, v in row["per_seed_rho"].items() if v is not None)
    return (
        f"{what}: with {row['n_seeds']} seed(s) the interval over seeds is not informative (at "
        f"least {MIN_INFORMATIVE_SEEDS} are needed); the pooled rho is {row['rho']:+.2f}"
        + (f" ({seeds})." if seeds else ".")
    )


def _verdict_sentence(
    what: str, row: Mapping[str, Any], p_adj: float | None, missing: str, called_tail: str = ""
) -> str:
    """One rho's sentence: ``missing`` where there is no rho, "not informative" below three
    seeds, else the verdict clause (``p_adj`` the Holm-adjusted p, None where the raw p decides)
    followed by ``called_tail`` where an association is called."""
    if row["rho"] is None:
        return f"{what}: {missing}"
    if not row["informative"]:
        return _not_informative(what, row)
    called, clause = verdict_clause(
        row["rho"], row["rho_low"], row["rho_high"], row["p_head"], "rho", p_adj
    )
    return f"{what}: {clause}{called_tail if called else ''}."


def run_sentences(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sentences of one (model, task, start): the seeds compared, the full~lora verdict, the
    top-K overlap against chance, each method's I_pre~Urel."""
    start = rows[0]["start"]
    if rows[0]["item"] == NOT_COMPARED:
        return [f"The {start} start: {rows[0]['note']}."]
    across = next(r for r in rows if r["item"] == ACROSS)
    seeds = across["seeds"].replace(";", ", ")
    note = f"; {across['note']}" if across["note"] else ""
    out = [f"The {start} start: seeds compared {seeds} (usable under both methods){note}."]
    more_or_less = "more" if (across["rho"] or 0) > 0 else "less"
    out.append(
        _verdict_sentence(
            f"Urel under full fine-tuning and under LoRA, {start} start (exploratory)",
            across,
            across["p_holm"],
            "no seed gave a correlation (a method's Urel is constant).",
            f": the heads that move more under full fine-tuning move {more_or_less} under LoRA"
            + (" too" if more_or_less == "more" else ""),
        )
    )
    ov = across["per_seed_overlap"]
    if across["overlap"] is not None and across["k"]:
        per = ", ".join(f"seed {s} {int(v)}" for s, v in ov.items() if v is not None)
        out.append(
            f"Top-{across['k']} Urel heads shared by the two methods: {across['overlap']:.1f} of "
            f"{across['k']} on average over seeds ({per}), against {across['overlap_chance']:.1f} "
            f"by chance ({across['n_heads']} heads)."
        )
    for r in rows:
        if r["item"] != PAIR:
            continue
        name = "full fine-tuning" if r["method"] == "full" else "LoRA"
        label = " (the primary question)" if r["primary"] else " (exploratory)"
        p_adj = r["p_holm"] if r["method"] == "lora" else None
        out.append(
            _verdict_sentence(
                f"I_pre and Urel under {name}{label}", r, p_adj, "not in the summaries."
            )
        )
    return out


def methods_sections(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The findings page's "Full fine-tuning and LoRA" blocks: per (model, task), ``runs`` (per
    start: ``start``, ``rows`` of :func:`table_rows` and ``sentences`` of :func:`run_sentences`).
    Empty without a table (one method run)."""
    if table is None or table.empty:
        return []
    rows = table_rows(table)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key in dict.fromkeys((r["model"], r["task"], r["start"]) for r in rows):
        run = [r for r in rows if (r["model"], r["task"], r["start"]) == key]
        block = out.setdefault(key[:2], {"model": key[0], "task": key[1], "runs": []})
        block["runs"].append({"start": key[2], "rows": run, "sentences": run_sentences(run)})
    return list(out.values())
