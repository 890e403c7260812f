"""The per-head table: the join of every per-head measure on (layer, head)."""

from __future__ import annotations

import os

import pandas as pd

from headplast.io import ArtifactError, read_head_jsonl

IMPORTANCE_FIELDS = (
    "I",
    "loss_base",
    "loss_ablate",
    "acc_base",
    "acc_ablate",
    "I_se",
    "I_ci_low",
    "I_ci_high",
    "acc_delta",
    "acc_delta_se",
    "I_kl",
    "I_kl_se",
)
GRADFISHER_FIELDS = ("G", "F", "Ppred", "G_signed", "G_se", "F_se")
UPDATE_FIELDS = ("U", "Urel", "Uq", "Uk", "Uv", "Uo")
#: The key/value head whose rows give a query head's Uk and Uv: the last column of heads.csv,
#: equal to ``head`` without grouped-query attention (and for update files written before the
#: column existed). An identifier, not a measure. See docs/methods.md, "Grouped-query attention".
KV_GROUP = "kv_group"
FUNCTION_FIELDS = ("A_js", "C_rel")

#: The columns every heads.csv has (docs/outputs.md), first and in this order.
HEADS_COLUMNS: tuple[str, ...] = (
    "layer",
    "head",
    "I_pre",
    "I_post",
    "G",
    "F",
    "Ppred",
    *UPDATE_FIELDS,
    *FUNCTION_FIELDS,
)

#: Per-head uncertainty and the label-free importance, after G_signed in heads.csv.
#: Not in HEADS_COLUMNS, which stays the required minimum.
UNCERTAINTY_COLUMNS: tuple[str, ...] = (
    "I_pre_se",
    "I_pre_ci_low",
    "I_pre_ci_high",
    "I_post_se",
    "I_post_ci_low",
    "I_post_ci_high",
    "I_kl_pre",
    "I_kl_pre_se",
    "I_kl_post",
    "I_kl_post_se",
    "G_se",
    "F_se",
)


def _importance_names(f: str, when: str) -> str:
    """heads.csv name of importance field ``f`` at ``when`` (pre/post): I -> I_pre,
    I_se -> I_pre_se, I_kl -> I_kl_pre, I_kl_se -> I_kl_pre_se, loss_base -> loss_base_pre."""
    if f.startswith("I_kl"):
        return f"I_kl_{when}{f[len('I_kl') :]}"
    if f == "I" or f.startswith("I_"):
        return f"I_{when}{f[1:]}"
    return f"{f}_{when}"


def _grid(df: pd.DataFrame, path) -> tuple[int, int]:
    """(L, H) of a complete layer x head grid, or an error naming the file."""
    n_layers, n_heads = int(df["layer"].max()) + 1, int(df["head"].max()) + 1
    if len(df) != n_layers * n_heads or df["layer"].min() < 0 or df["head"].min() < 0:
        raise ArtifactError(
            f"{path}: {len(df)} lines do not form a complete {n_layers} x {n_heads} grid of heads; "
            "the file is truncated; delete it and rerun the rule that makes it"
        )
    return n_layers, n_heads


def join_heads(
    importance_pre: str | os.PathLike,
    importance_post: str | os.PathLike,
    gradfisher_pre: str | os.PathLike,
    update: str | os.PathLike,
    function_change: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """One row per head with I_pre, I_post (and their losses/accuracies), G, F, Ppred, G_signed,
    U, Urel, Uq, Uk, Uv, Uo, and A_js, C_rel when ``function_change`` is given (the pruning
    orders join the other four files only), and last ``kv_group`` (:data:`KV_GROUP`). Every
    input is validated: same L x H grid, one line per head."""
    inputs = (
        (importance_pre, IMPORTANCE_FIELDS, {}),
        (
            importance_post,
            IMPORTANCE_FIELDS,
            {f: _importance_names(f, "post") for f in IMPORTANCE_FIELDS},
        ),
        (gradfisher_pre, GRADFISHER_FIELDS, {}),
        (update, UPDATE_FIELDS, {}),
        *([(function_change, FUNCTION_FIELDS, {})] if function_change is not None else []),
    )
    frames, shapes = [], []
    for path, fields, _ in inputs:
        df = read_head_jsonl(path, fields)
        frames.append(df)
        shapes.append(_grid(df, path))
    if len(set(shapes)) > 1:
        found = "; ".join(
            f"{path}: {L} x {H} heads" for (path, _, _), (L, H) in zip(inputs, shapes, strict=True)
        )
        raise ArtifactError(
            f"the per-head files disagree on the layer x head grid ({found}); one is truncated "
            "or from another model: delete it and rerun the rule that makes it"
        )
    shape = shapes[0]
    pre = frames[0]
    pre_names = [_importance_names(f, "pre") for f in IMPORTANCE_FIELDS]
    parts = [pre.rename(columns=dict(zip(IMPORTANCE_FIELDS, pre_names, strict=True)))]
    for df, (_, fields, rename) in zip(frames[1:], inputs[1:], strict=True):
        parts.append(df[["layer", "head", *fields]].rename(columns=rename))
    groups = frames[3][["layer", "head"]].copy()
    groups[KV_GROUP] = frames[3][KV_GROUP] if KV_GROUP in frames[3] else frames[3]["head"]
    parts.append(groups)
    out = parts[0][["layer", "head", *pre_names]]
    for df in parts[1:]:
        out = out.merge(df, on=["layer", "head"], how="inner", validate="one_to_one")
    if len(out) != shape[0] * shape[1]:
        raise ArtifactError("the per-head files do not cover the same heads; rerun the measures")
    cols = [c for c in (*HEADS_COLUMNS, "G_signed", *UNCERTAINTY_COLUMNS) if c in out.columns]
    rest = [c for c in out.columns if c not in (*cols, KV_GROUP)]
    return out[[*cols, *rest, KV_GROUP]].astype({"layer": int, "head": int, KV_GROUP: int})
