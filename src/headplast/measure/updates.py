"""Per-head weight update between two checkpoints (theta1 - theta0), read from safetensors.

For head h of layer l (features h*d:(h+1)*d):
Uq, Uk, Uv = Frobenius norm of the change of head h's rows of the query/key/value projections,
weights and biases together (output dimension); Uo = norm of the change of head h's columns of
the attention output projection (input dimension; its bias is shared by all heads and excluded).
U = sqrt(Uq^2 + Uk^2 + Uv^2 + Uo^2); Urel = U / (Nq + Nk + Nv + No), the N being the norms of
the same four slices at theta0. Tensors are read one at a time, so memory stays near one layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForSequenceClassification

from headplast.io import ArtifactError
from headplast.model.adapters import ModelLayout, resolve_layout

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

    def get(self, name: str) -> torch.Tensor:
        for key in (name, name.removeprefix(self.prefix)):
            if key in self.keys:
                return self.handle.get_tensor(key).double()
        raise ArtifactError(
            f"{self.path}: tensor '{name}' not found; the checkpoint does not "
            "match the model layout"
        )


def _row_norms_sq(w: torch.Tensor, b: torch.Tensor | None, H: int, d: int) -> torch.Tensor:
    """Squared Frobenius norm of head h's rows (weight [H*d, D] and bias [H*d]) -> [H]."""
    sq = w.reshape(H, d, -1).pow(2).sum((1, 2))
    if b is not None:
        sq = sq + b.reshape(H, d).pow(2).sum(1)
    return sq


def _col_norms_sq(w: torch.Tensor, H: int, d: int) -> torch.Tensor:
    """Squared Frobenius norm of head h's columns of weight [D, H*d] -> [H]."""
    return w.reshape(w.shape[0], H, d).pow(2).sum((0, 2))


def head_updates(init_dir: str | os.PathLike, final_dir: str | os.PathLike) -> list[dict]:
    """Rows ``layer, head, U, Urel, Uq, Uk, Uv, Uo`` (in (layer, head) order) for theta1 - theta0.

    Exactly 0 for identical checkpoints. Both checkpoints must share one architecture.
    """
    init_dir, final_dir = Path(init_dir), Path(final_dir)
    layout, prefix = layout_from_checkpoint(init_dir)
    final_layout, _ = layout_from_checkpoint(final_dir)
    if (final_layout.n_layers, final_layout.n_heads, final_layout.head_dim) != (
        layout.n_layers,
        layout.n_heads,
        layout.head_dim,
    ):
        raise ArtifactError(f"{init_dir} and {final_dir} have different architectures")
    w0, w1 = _Weights(init_dir, prefix), _Weights(final_dir, prefix)
    H, d = layout.n_heads, layout.head_dim
    rows = []
    for layer, names in enumerate(layout.names):
        delta_sq, init_sq = {}, {}
        for part in ("query", "key", "value"):
            base = names[part]
            a_w, b_w = w0.get(base + ".weight"), w1.get(base + ".weight")
            a_b, b_b = w0.get(base + ".bias"), w1.get(base + ".bias")
            delta_sq[part] = _row_norms_sq(b_w - a_w, b_b - a_b, H, d)
            init_sq[part] = _row_norms_sq(a_w, a_b, H, d)
        a_w, b_w = w0.get(names["output"] + ".weight"), w1.get(names["output"] + ".weight")
        delta_sq["output"] = _col_norms_sq(b_w - a_w, H, d)
        init_sq["output"] = _col_norms_sq(a_w, H, d)
        U = torch.sqrt(sum(delta_sq.values()))
        denom = sum(v.sqrt() for v in init_sq.values())
        for head in range(H):
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
                }
            )
    return rows
