"""Update magnitude against a direct slice computation on saved checkpoints."""

from __future__ import annotations

import math
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from headplast.io import ArtifactError
from headplast.measure.updates import head_updates
from headplast.model.adapters import resolve_layout

from .conftest import tiny_bert, tiny_deberta


def _save(model, path):
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.mark.parametrize("make", [tiny_bert, tiny_deberta])
def test_update_equals_direct_slices(tmp_path, make):
    m0 = make(seed=0)
    m1 = make(seed=0)
    with torch.no_grad():
        for p in m1.parameters():
            p.add_(0.01 * torch.randn_like(p))
    rows = head_updates(_save(m0, tmp_path / "a"), _save(m1, tmp_path / "b"))
    m0.requires_grad_(False)
    m1.requires_grad_(False)
    lay0, lay1 = resolve_layout(m0), resolve_layout(m1)
    d = lay0.head_dim
    worst = 0.0
    for r in rows:
        lay, h = r["layer"], r["head"]
        sl = slice(h * d, (h + 1) * d)
        a, b = lay0.layers[lay], lay1.layers[lay]
        parts, init = {}, {}
        for key, name in (("Uq", "query"), ("Uk", "key"), ("Uv", "value")):
            ma, mb = getattr(a, name), getattr(b, name)
            dw = (mb.weight[sl] - ma.weight[sl]).double()
            db = (mb.bias[sl] - ma.bias[sl]).double()
            parts[key] = math.sqrt(float((dw**2).sum() + (db**2).sum()))
            init[key] = math.sqrt(
                float((ma.weight[sl].double() ** 2).sum() + (ma.bias[sl].double() ** 2).sum())
            )
        parts["Uo"] = float((b.output.weight[:, sl] - a.output.weight[:, sl]).double().norm())
        init["Uo"] = float(a.output.weight[:, sl].double().norm())
        U = math.sqrt(sum(v**2 for v in parts.values()))
        for key, v in parts.items():
            worst = max(worst, abs(r[key] - v))
        worst = max(worst, abs(r["U"] - U), abs(r["Urel"] - U / sum(init.values())))
    print(f"[maxdiff] update vs direct slices: {worst:.3e}")
    assert worst <= 1e-6
    assert len(rows) == lay0.n_layers * lay0.n_heads


def test_update_of_identical_checkpoints_is_exactly_zero(tmp_path):
    m = tiny_deberta()
    rows = head_updates(_save(m, tmp_path / "a"), _save(m, tmp_path / "b"))
    assert all(r[k] == 0.0 for r in rows for k in ("U", "Urel", "Uq", "Uk", "Uv", "Uo"))


def test_update_localised_to_one_head(tmp_path):
    m0, m1 = tiny_bert(), tiny_bert()
    d = resolve_layout(m1).head_dim
    with torch.no_grad():
        resolve_layout(m1).layers[2].value.weight[1 * d : 2 * d] += 1.0
    rows = head_updates(_save(m0, tmp_path / "a"), _save(m1, tmp_path / "b"))
    moved = [(r["layer"], r["head"]) for r in rows if r["U"] > 0]
    assert moved == [(2, 1)]
    assert rows[2 * 4 + 1]["Uv"] == pytest.approx(math.sqrt(d * 32))


def test_a_tensor_missing_from_a_checkpoint_is_named_with_its_file(tmp_path):
    a = _save(tiny_bert(seed=0), tmp_path / "a")
    b = _save(tiny_bert(seed=0), tmp_path / "b")
    name = "bert.encoder.layer.2.attention.self.value.weight"
    tensors = load_file(b / "model.safetensors")
    del tensors[name]
    save_file(tensors, b / "model.safetensors", {"format": "pt"})
    with pytest.raises(
        ArtifactError, match=rf"^{re.escape(str(b))}/model\.safetensors: tensor '{name}' not found"
    ):
        head_updates(a, b)
