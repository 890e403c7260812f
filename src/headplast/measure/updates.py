"""Per-head weight update between two checkpoints (theta1 - theta0), read from safetensors.

For query head h of layer l (docs/methods.md, "Weight update"): Uq = Frobenius norm of the change of
head h's rows of the query projection, weights and biases together (its output features); Uo = norm
of the change of head h's columns of the attention output projection (its input features; the
bias is shared by all heads and excluded); Uk, Uv = the same as Uq for the key and value rows of
the key/value head that h reads (``kv_group``: h itself without grouped-query attention; with it,
the group's values, shared by its query heads). U = sqrt(Uq^2 + Uk^2 + Uv^2 + Uo^2); Urel = U /
(Nq + Nk + Nv + No), the N being the norms of the same four slices at theta0. Where each slice
lies (separate or fused projections, ``nn.Linear`` or transposed ``Conv1D`` weights) is the
adapter table's :class:`~headplast.model.adapters.Projection`. Tensors are read one at a time, so
memory stays near one layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForSequenceClassification

from headplast.io import ArtifactError
from headplast.model.adapters import PARTS, ModelLayout, Projection, resolve_layout

WEIGHTS = "model.safetensors"


def layout_from_checkpoint(ckpt_dir: str | os.PathLike) -> tuple[ModelLayout, str]:
    """The layout of a saved checkpoint, built on the meta device (no weights loaded), and the
    base-model prefix (e.g. 'bert') used to match keys saved without it."""
    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / "config.json").exists():
        raise ArtifactError(f"{ckpt_dir}: no config.json; is this a save_pretrained checkpoint?")
    config = AutoConfig.from_pretrained(ckpt_dir)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return resolve_layout(model), model.base_model_prefix


class _Weights:
    """Lazy reader of one safetensors file, matching names with or without the base prefix."""

    def __init__(self, ckpt_dir: Path, prefix: str) -> None:
        path = ckpt_dir / WEIGHTS
        if not path.exists():
            raise ArtifactError(f"{path}: not found (checkpoints are read as safetensors only)")
        self.path = path
        self.handle = safe_open(str(path), framework="pt")
        self.keys = set(self.handle.keys())
        self.prefix = prefix + "."
        self.recent: dict[str, torch.Tensor] = {}

    def get(self, name: str) -> torch.Tensor:
        """The tensor ``name`` in float64. The last few read are kept (a fused query/key/value
        projection's weight and bias serve three parts), so memory stays near one layer."""
        if name in self.recent:
            return self.recent[name]
        for key in (name, name.removeprefix(self.prefix)):
            if key in self.keys:
                if len(self.recent) >= 4:
                    self.recent.pop(next(iter(self.recent)))
                self.recent[name] = self.handle.get_tensor(key).double()
                return self.recent[name]
        raise ArtifactError(
            f"{self.path}: tensor '{name}' not found; the checkpoint does not "
            "match the model layout"
        )


def _unit_norms_sq(
    weight: torch.Tensor, bias: torch.Tensor | None, projection: Projection
) -> torch.Tensor:
    """Squared Frobenius norm of each unit's slice of ``weight`` (and ``bias``) -> [units]."""
    sq = projection.per_unit(weight).pow(2).sum((1, 2))
    if bias is not None:
        sq = sq + projection.per_unit_bias(bias).pow(2).sum(1)
    return sq


def head_updates(init_dir: str | os.PathLike, final_dir: str | os.PathLike) -> list[dict]:
    """Rows ``layer, head, U, Urel, Uq, Uk, Uv, Uo, kv_group`` (in (layer, head) order) for
    theta1 - theta0; ``kv_group`` is the key/value head whose rows give Uk and Uv.

    Exactly 0 for identical checkpoints. Both checkpoints must share one architecture.
    """
    init_dir, final_dir = Path(init_dir), Path(final_dir)
    layout, prefix = layout_from_checkpoint(init_dir)
    final_layout, _ = layout_from_checkpoint(final_dir)
    shape = (layout.n_layers, layout.n_heads, layout.n_kv_heads, layout.head_dim)
    if shape != (
        final_layout.n_layers,
        final_layout.n_heads,
        final_layout.n_kv_heads,
        final_layout.head_dim,
    ):
        raise ArtifactError(f"{init_dir} and {final_dir} have different architectures")
    w0, w1 = _Weights(init_dir, prefix), _Weights(final_dir, prefix)
    groups = [layout.kv_group(h) for h in range(layout.n_heads)]
    rows = []
    for layer, projections in enumerate(layout.projections):
        delta_sq, init_sq = {}, {}
        for part in PARTS:
            proj = projections[part]
            a_w, b_w = w0.get(proj.module + ".weight"), w1.get(proj.module + ".weight")
            a_b = b_b = None
            if proj.bias_sliced:
                a_b, b_b = w0.get(proj.module + ".bias"), w1.get(proj.module + ".bias")
            delta = _unit_norms_sq(b_w - a_w, None if a_b is None else b_b - a_b, proj)
            init = _unit_norms_sq(a_w, a_b, proj)
            if proj.units != layout.n_heads:  # key/value heads: each query head reads its group's
                delta, init = delta[groups], init[groups]
            delta_sq[part], init_sq[part] = delta, init
        U = torch.sqrt(sum(delta_sq.values()))
        denom = sum(v.sqrt() for v in init_sq.values())
        for head in range(layout.n_heads):
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "U": float(U[head]),
                    "Urel": float(U[head] / denom[head]),
                    "Uq": float(delta_sq["query"][head].sqrt()),
                    "Uk": float(delta_sq["key"][head].sqrt()),
                    "Uv": float(delta_sq["value"][head].sqrt()),
                    "Uo": float(delta_sq["output"][head].sqrt()),
                    "kv_group": groups[head],
                }
            )
    return rows
