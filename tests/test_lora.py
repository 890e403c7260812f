"""LoRA as a training method (headplast.train.lora; docs/methods.md, "LoRA") on tiny random models:
BERT, a grouped-query decoder (Llama: 2 key/value heads for 4 query heads), GPT-2 (fused Conv1D
c_attn, weights stored [in, out]) and ModernBERT (fused Wqkv).

References do not share the code under test: the merged update is B @ A * alpha / r computed here
from each family's own module names, cut into heads by hand ([q | k | v] offsets of a fused map,
a head's key/value group = head // 2 with grouped-query attention), and the freeze is checked
against that rule written out per parameter.
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file

from headplast.measure.updates import head_updates
from headplast.model.tiny import tiny_model
from headplast.train.finetune import _complete_checkpoints, _merge_hparams, finetune
from headplast.train.freeze import HeadFreezer, freeze_callback, head_masks
from headplast.train.lora import lora_settings, merge_lora, wrap_lora
from tests.conftest import random_batches

H, D, HD = 4, 32, 8  # query heads, hidden size, head size of every tiny model
FAMILIES = ("bert", "llama", "gpt2", "modernbert")


def _attention_modules(model, layer: int) -> dict[str, torch.nn.Module]:
    """{part: module} of one layer by each family's own names (the same module thrice for a
    fused map). ``model`` is a transformers model (LoRA layers in it are fine)."""
    kind = model.config.model_type
    if kind == "bert":
        att = model.bert.encoder.layer[layer].attention
        return {"query": att.self.query, "key": att.self.key, "value": att.self.value} | {
            "output": att.output.dense
        }
    if kind == "gpt2":
        att = model.transformer.h[layer].attn
        return dict.fromkeys(("query", "key", "value"), att.c_attn) | {"output": att.c_proj}
    if kind == "modernbert":
        att = model.model.layers[layer].attn
        return dict.fromkeys(("query", "key", "value"), att.Wqkv) | {"output": att.Wo}
    att = model.model.layers[layer].self_attn
    return {"query": att.q_proj, "key": att.k_proj, "value": att.v_proj, "output": att.o_proj}


def _kv_heads(kind: str) -> int:
    return 2 if kind in ("llama", "qwen2", "mistral") else H


def _rows(kind: str, part: str, unit: int) -> slice:
    """The output features of ``unit`` of a query/key/value ``part``: a fused map holds the
    query heads, then the key heads, then the value heads."""
    fused = kind in ("gpt2", "modernbert")
    offset = {"query": 0, "key": H * HD, "value": (H + _kv_heads(kind)) * HD}[part] if fused else 0
    return slice(offset + unit * HD, offset + (unit + 1) * HD)


def _weight(module: torch.nn.Module, kind: str) -> torch.Tensor:
    """A module's weight as [out, in] in float64 (GPT-2's Conv1D stores [in, out])."""
    w = module.weight.detach().double()
    return w.T if kind == "gpt2" else w


def _delta(module: torch.nn.Module, r: int, alpha: float) -> torch.Tensor:
    """B @ A * alpha / r of a LoRA layer, [out, in], float64, from its factors."""
    a = module.lora_A["default"].weight.detach().double()  # [r, in]
    b = module.lora_B["default"].weight.detach().double()  # [out, r]
    assert a.shape[0] == b.shape[1] == r
    return b @ a * (alpha / r)


def _inputs(kind: str, n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    return random_batches(n, batch=4, seed=seed, token_types=kind == "bert")


def _steps(model, kind: str, n: int = 6, freezer: HeadFreezer | None = None) -> None:
    """``n`` AdamW steps (lr 1e-2, weight decay 0.1, gradient clipping) on random batches, with
    ``freezer`` restoring after each."""
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-2,
                            weight_decay=0.1)  # fmt: skip
    for batch in _inputs(kind, n, seed=3):
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if freezer is not None:
            freezer.restore()
    model.eval()


# --------------------------------------------------------------------------------- settings


def test_lora_settings_fill_defaults_and_refuse_what_is_not_a_role():
    s = lora_settings({"r": 4, "target": ["output", "query"]})
    assert s == {"r": 4, "alpha": 8.0, "dropout": 0.0, "target": ["query", "output"]}
    assert lora_settings(None)["target"] == ["query", "key", "value", "output"]
    for bad, match in (
        ({"r": 0}, "lora.r"),
        ({"r": 2.5}, "lora.r"),
        ({"alpha": 0}, "lora.alpha"),
        ({"dropout": 1.0}, "lora.dropout"),
        ({"target": ["q_proj"]}, "roles"),
        ({"target": []}, "roles"),
        ({"target": ["query", "query"]}, "roles"),
        ({"rank": 8}, "unknown lora"),
    ):
        with pytest.raises(ValueError, match=match):
            lora_settings(bad)
    full = _merge_hparams({"learning_rate": 1e-5, "lora": {"r": 4}})
    assert full["method"] == "full" and full["lora"] is None  # a full run carries no LoRA keys
    lora = _merge_hparams({"method": "lora", "lora": {"r": 4}})
    assert lora["lora"]["r"] == 4 and lora["lora"]["alpha"] == 8.0
    with pytest.raises(ValueError, match="method must be one of"):
        _merge_hparams({"method": "adapters"})


@pytest.mark.parametrize("family", FAMILIES)
def test_wrap_trains_the_named_roles_and_the_task_head_only(family):
    """Every layer's modules of the target roles become LoRA layers (a fused map once); what
    trains is their factors and the task head; a fresh LoRA model computes theta0's logits."""
    model = tiny_model(family)
    batch = {k: v for k, v in _inputs(family, 1, seed=0)[0].items() if k != "labels"}
    ref = model(**batch).logits
    peft_model = wrap_lora(model, {"target": ["query", "output"]})
    fused = family in ("gpt2", "modernbert")
    assert len(peft_model.lora_modules) == 3 * 2
    inner = peft_model.get_base_model()
    for layer in range(3):
        mods = _attention_modules(inner, layer)
        assert hasattr(mods["query"], "lora_A") and hasattr(mods["output"], "lora_A")
        assert hasattr(mods["key"], "lora_A") == fused  # the fused map is one module
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or ".modules_to_save." in n for n in trainable)
    assert any(".modules_to_save." in n for n in trainable)
    assert torch.equal(peft_model(**batch).logits, ref)  # B = 0 at the start


# ---------------------------------------------------------------------------- U by hand


def _expected_updates(inner, theta0, r: int, alpha: float) -> dict[tuple[int, int], dict]:
    """{(layer, head): Uq, Uk, Uv, Uo, U, Urel} from the LoRA factors of ``inner`` (the model
    inside a peft model) and the weights and biases of ``theta0``, cut by hand."""
    kind = theta0.config.model_type
    expect = {}
    with torch.no_grad():
        for layer in range(theta0.config.num_hidden_layers):
            mods, mods0 = _attention_modules(inner, layer), _attention_modules(theta0, layer)
            deltas = {p: _delta(m, r, alpha) for p, m in mods.items()}
            for h in range(H):
                g = h // (H // _kv_heads(kind))
                parts, norms = {}, {}
                for key, part, unit in (("Uq", "query", h), ("Uk", "key", g), ("Uv", "value", g)):
                    rows = _rows(kind, part, unit)
                    parts[key] = float(deltas[part][rows].norm())  # LoRA leaves biases alone
                    w0, b0 = _weight(mods0[part], kind)[rows], mods0[part].bias
                    sq = (w0**2).sum() + (0 if b0 is None else (b0.double()[rows] ** 2).sum())
                    norms[key] = math.sqrt(float(sq))
                cols = slice(h * HD, (h + 1) * HD)
                parts["Uo"] = float(deltas["output"][:, cols].norm())
                norms["Uo"] = float(_weight(mods0["output"], kind)[:, cols].norm())
                u = math.sqrt(sum(v**2 for v in parts.values()))
                expect[(layer, h)] = {**parts, "U": u, "Urel": u / sum(norms.values())}
    return expect


def _worst(rows: list[dict], expect: dict) -> float:
    """The largest |difference| between head_updates' rows and the expected values."""
    return max(
        abs(row[key] - v) for row in rows for key, v in expect[(row["layer"], row["head"])].items()
    )


@pytest.mark.parametrize(
    "family,target",
    [
        ("bert", None),
        ("llama", None),
        ("gpt2", None),
        ("modernbert", ["query", "value", "output"]),
    ],
)
def test_update_of_a_lora_run_equals_the_merged_delta_cut_by_hand(tmp_path, family, target):
    """After 6 LoRA steps (r 4, alpha 12: scaling 3), U, Uq, Uk, Uv, Uo and Urel that
    head_updates reads from theta0 and the merged theta1 equal the slices of B @ A * 3 computed
    from the factors and cut by hand, with theta0's norms (biases included) cut by hand. With a
    fused map whose target leaves the key out, every Uk is exactly 0."""
    r, alpha = 4, 12.0
    model = tiny_model(family, seed=0)
    theta0 = copy.deepcopy(model)
    model.save_pretrained(tmp_path / "init", safe_serialization=True)
    peft_model = wrap_lora(model, {"r": r, "alpha": alpha, "target": target or list(
        ("query", "key", "value", "output"))})  # fmt: skip
    _steps(peft_model, family)
    expect = _expected_updates(peft_model.get_base_model(), theta0, r, alpha)
    merge_lora(peft_model).save_pretrained(tmp_path / "final", safe_serialization=True)
    rows = head_updates(tmp_path / "init", tmp_path / "final")
    assert len(rows) == 3 * H
    worst = _worst(rows, expect)
    smallest = min(want["U"] for want in expect.values())
    if target is not None and "key" not in target:
        assert all(row["Uk"] == 0.0 for row in rows)
    print(f"[maxdiff] {family} LoRA U vs B @ A * scaling cut by hand: {worst:.3e}")
    assert smallest > 1e-3  # every head moved: the check is not one of zeros
    assert worst <= 1e-6


# ------------------------------------------------------------------------------- freeze


FROZEN = [(0, 0), (0, 1), (1, 2), (2, 3)]  # with 2 heads a group: group 0 of layer 0 whole


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
def test_freeze_under_lora_keeps_frozen_slices_at_theta0_bit_for_bit(tmp_path, family):
    """LoRA on every role, heads FROZEN held, 6 AdamW steps with weight decay 0.1: the merged
    theta1's frozen query rows and output columns, and the key/value rows of a group frozen whole
    (every frozen head's own without grouped-query attention), are torch.equal to theta0; B's
    rows and A's columns that hold them are exactly 0; a partly frozen group's key/value rows
    and the other heads' slices moved; head_updates gives those slices 0."""
    model = tiny_model(family, seed=0)
    theta0 = copy.deepcopy(model)
    model.save_pretrained(tmp_path / "init", safe_serialization=True)
    peft_model = wrap_lora(model, None)
    freezer = HeadFreezer(peft_model, FROZEN)
    masks = head_masks(peft_model, FROZEN)
    assert masks and all(".lora_A." in n or ".lora_B." in n for n in masks)
    _steps(peft_model, family, freezer=freezer)
    freezer.remove()
    inner = peft_model.get_base_model()
    gqa = _kv_heads(family) < H
    factors_zero = []
    with torch.no_grad():
        for layer, head in FROZEN:
            mods = _attention_modules(inner, layer)
            b_q = mods["query"].lora_B["default"].weight
            factors_zero.append(bool((b_q[_rows(family, "query", head)] == 0).all()))
            a_o = mods["output"].lora_A["default"].weight
            factors_zero.append(bool((a_o[:, head * HD : (head + 1) * HD] == 0).all()))
    assert all(factors_zero)
    merged = merge_lora(peft_model)
    merged.save_pretrained(tmp_path / "final", safe_serialization=True)
    held, moved = [], []
    with torch.no_grad():
        for layer in range(3):
            m1, m0 = _attention_modules(merged, layer), _attention_modules(theta0, layer)
            for head in range(H):
                frozen = (layer, head) in FROZEN
                rows = _rows(family, "query", head)
                cols = slice(head * HD, (head + 1) * HD)
                same_q = torch.equal(
                    _weight(m1["query"], family)[rows], _weight(m0["query"], family)[rows]
                )
                same_o = torch.equal(
                    _weight(m1["output"], family)[:, cols], _weight(m0["output"], family)[:, cols]
                )
                (held if frozen else moved).extend([same_q, same_o])
            for group in range(_kv_heads(family)):
                members = [h for h in range(H) if (h // 2 if gqa else h) == group]
                whole = all((layer, h) in FROZEN for h in members)
                for part in ("key", "value"):
                    rows = _rows(family, part, group)
                    same = torch.equal(
                        _weight(m1[part], family)[rows], _weight(m0[part], family)[rows]
                    )
                    (held if whole else moved).append(same)
    n_whole = 1 if gqa else len(FROZEN)  # groups frozen whole
    assert len(held) == 2 * len(FROZEN) + 2 * n_whole and all(held)
    assert not any(moved)
    if gqa:  # (1, 2) and (2, 3) are frozen, their groups' other heads not: k/v rows moved
        assert len(moved) == 2 * (3 * H - len(FROZEN)) + 2 * (3 * 2 - 1)
    rows = {(r["layer"], r["head"]): r for r in head_updates(tmp_path / "init", tmp_path / "final")}
    for layer, head in FROZEN:
        r = rows[(layer, head)]
        assert r["Uq"] == 0.0 and r["Uo"] == 0.0
        if not gqa or (layer, head) in ((0, 0), (0, 1)):
            assert r["Uk"] == 0.0 and r["Uv"] == 0.0 and r["U"] == 0.0
        else:
            assert r["Uk"] > 0 and r["Uv"] > 0
    print(f"[maxdiff] {family} LoRA freeze: {len(held)} held slices, max |theta1 - theta0| = 0")


def test_fused_map_with_a_role_left_out_keeps_its_rows_at_zero():
    """GPT-2, target query and output: the fused c_attn is wrapped; its key and value rows of B
    are 0 and stay 0 through AdamW with weight decay, so the merged key/value weights are
    theta0's bit for bit while the query rows moved."""
    model = tiny_model("gpt2", seed=0)
    theta0 = copy.deepcopy(model)
    peft_model = wrap_lora(model, {"target": ["query", "output"]})
    _steps(peft_model, "gpt2")
    merged = merge_lora(peft_model)
    for layer in range(3):
        m1, m0 = _attention_modules(merged, layer), _attention_modules(theta0, layer)
        w1, w0 = _weight(m1["query"], "gpt2"), _weight(m0["query"], "gpt2")
        assert torch.equal(w1[H * HD :], w0[H * HD :])  # key and value rows
        assert not torch.equal(w1[: H * HD], w0[: H * HD])


def test_merge_check_passes_a_true_merge_and_refuses_a_wrong_one(monkeypatch, tmp_path):
    """merge_checked: the merged model's logits equal the LoRA model's (to fp32 rounding) and
    the record says by how much; a merge that changes the logits is refused; a saved theta1
    with peft's tensor names is refused."""
    import headplast.train.finetune as ft

    batch = {k: v for k, v in _inputs("llama", 1, seed=1)[0].items() if k != "labels"}
    peft_model = wrap_lora(tiny_model("llama"), None)
    _steps(peft_model, "llama", n=3)
    merged, record = ft.merge_checked(peft_model, batch)
    assert record["examples"] == 4 and 0 <= record["max_abs_logit_diff"] <= record["tolerance"]
    print(f"[maxdiff] llama merge check: {record['max_abs_logit_diff']:.3e}")

    def wrong(model):
        out = merge_lora(model)
        with torch.no_grad():
            out.score.weight.add_(1e-2)
        return out

    monkeypatch.setattr("headplast.train.lora.merge_lora", wrong)
    peft_model = wrap_lora(tiny_model("llama"), None)
    with pytest.raises(RuntimeError, match="changed the logits"):
        ft.merge_checked(peft_model, batch)
    tiny_model("bert").save_pretrained(tmp_path / "a", safe_serialization=True)
    wrap_lora(tiny_model("bert"), None).base_model.model.save_pretrained(
        tmp_path / "b", safe_serialization=True
    )
    with pytest.raises(RuntimeError, match="tensor names differ"):
        ft._same_tensor_names(tmp_path / "a", tmp_path / "b")


def test_full_fp32_turns_tf32_off_inside_and_restores_it(monkeypatch):
    """The merge check's matmuls run without TF32 even where training turned it on."""
    from headplast.train.lora import full_fp32

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    old = (matmul.fp32_precision, cudnn.fp32_precision)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    try:
        matmul.fp32_precision = cudnn.fp32_precision = "tf32"
        with full_fp32():
            assert (matmul.fp32_precision, cudnn.fp32_precision) == ("ieee", "ieee")
        assert (matmul.fp32_precision, cudnn.fp32_precision) == ("tf32", "tf32")
    finally:
        matmul.fp32_precision, cudnn.fp32_precision = old


# ------------------------------------------------------------------- through the Trainer


def _task(root, n_train: int = 48, n_validation: int = 16) -> None:
    rng = random.Random(0)
    words = "the a cat dog sat ran on under big small red blue".split()
    for name, n in (("train", n_train), ("validation", n_validation)):
        with open(root / f"{name}.jsonl", "w") as fh:
            for _ in range(n):
                label = rng.randint(0, 1)
                vocab = words[:6] if label else words[6:]
                premise = " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 9)))
                row = {"premise": premise, "hypothesis": ("yes " if label else "no ") + "a dog"}
                fh.write(json.dumps({**row, "label": label}) + "\n")


@pytest.fixture(scope="module")
def lora_setup(tmp_path_factory):
    from headplast.train.theta0 import init_checkpoint
    from tests.make_tiny_model import make_tiny_model

    root = tmp_path_factory.mktemp("lora")
    src = make_tiny_model(str(root / "src"))
    init_checkpoint(src, 2, 0, root / "ckpt_init")
    _task(root)
    return root


HP_LORA = {
    "learning_rate": 1e-2,
    "num_train_epochs": 2,
    "per_device_train_batch_size": 8,
    "weight_decay": 0.1,
    "method": "lora",
    "lora": {"r": 4, "alpha": 8, "dropout": 0.1},
}


def _finetune(root, name: str, **kw):
    t = time.time()
    rc = finetune(
        root / "ckpt_init", root / "train.jsonl", root / "validation.jsonl",
        root / name / "ckpt_final", root / name / "trainer_out", HP_LORA, seed=0,
        max_length=32, **kw,
    )  # fmt: skip
    print(f"[time] LoRA finetune {name}: {time.time() - t:.1f} s")
    return rc


def _logits(model, root) -> torch.Tensor:
    from headplast.data.batching import encode_pairs, make_batches
    from headplast.model.loading import load_tokenizer

    tok = load_tokenizer(root / "ckpt_init")
    rows = [json.loads(line) for line in (root / "validation.jsonl").read_text().splitlines()]
    out = []
    with torch.no_grad():
        for b in make_batches(encode_pairs(tok, rows, 32), 512):
            b.pop("labels")
            out.append(model.eval()(**b).logits)
    return torch.cat(out)


@pytest.mark.training
def test_lora_finetune_saves_theta1_merged(lora_setup):
    """finetune with method lora: theta1 has theta0's tensor names; its logits equal those of the
    peft model it was merged from (theta0 + the saved adapter) to fp32 precision; every tensor
    outside the wrapped weights and the task head is theta0's bit for bit (biases of the wrapped
    maps included); the record names the method, settings and the merge check."""
    from peft import PeftModel

    from headplast.model.adapters import resolve_classifier
    from headplast.model.loading import load_model

    root = lora_setup
    rc = _finetune(root, "lora")
    out = root / "lora" / "ckpt_final"
    assert rc["method"] == "lora"
    assert rc["lora"]["r"] == 4 and rc["lora"]["alpha"] == 8.0 and rc["lora"]["scaling"] == 2.0
    assert rc["lora"]["target"] == ["query", "key", "value", "output"]
    assert len(rc["lora"]["modules"]) == 2 * 4  # 2 layers x 4 separate maps
    assert rc["hparams"]["method"] == "lora" and rc["hparams"]["lora"]["dropout"] == 0.1
    assert 0 < rc["trainable_parameters"] < rc["num_parameters"]
    check = rc["lora"]["merge_check"]
    assert check["examples"] == 16 and check["max_abs_logit_diff"] <= check["tolerance"]
    assert not (out / "adapter_config.json").exists()  # theta1 loads as a plain model
    theta0 = load_file(root / "ckpt_init" / "model.safetensors")
    theta1 = load_file(out / "model.safetensors")
    assert theta0.keys() == theta1.keys()
    classifier = set(resolve_classifier(load_model(root / "ckpt_init")).classifier_parameters)
    wrapped = {f"{m}.weight" for m in rc["lora"]["modules"]}
    same = [n for n in theta0 if n not in classifier and n not in wrapped]
    assert len(same) > 20 and all(torch.equal(theta0[n], theta1[n]) for n in same)
    assert all(not torch.equal(theta0[n], theta1[n]) for n in wrapped)
    assert any(not torch.equal(theta0[n], theta1[n]) for n in classifier)
    theta0_model = load_model(root / "ckpt_init")
    peft_model = PeftModel.from_pretrained(copy.deepcopy(theta0_model), rc["lora"]["adapter_dir"])
    before, merged = _logits(peft_model, root), _logits(load_model(out), root)
    diff = float((before - merged).abs().max())
    print(f"[maxdiff] LoRA merged theta1 vs peft model logits (16 validation rows): {diff:.3e}")
    assert diff <= 1e-5 * (1 + float(before.abs().max()))
    # U of the run against the adapter's B @ A * scaling cut by hand
    expect = _expected_updates(peft_model.get_base_model(), theta0_model, 4, 8.0)
    worst = _worst(head_updates(root / "ckpt_init", out), expect)
    print(f"[maxdiff] LoRA finetune U vs the saved adapter's B @ A * scaling by hand: {worst:.3e}")
    assert min(e["U"] for e in expect.values()) > 0 and worst <= 1e-6
    assert rc["validation"]["theta1"]["accuracy"] > rc["validation"]["theta0"]["accuracy"]


FROZEN_RUN = [(0, 0), (1, 2)]


@pytest.fixture(scope="module")
def frozen_run(lora_setup):
    """A LoRA fine-tune with FROZEN_RUN held (weight decay 0.1), its Trainer checkpoints kept."""
    rc = _finetune(
        lora_setup, "frozen", callbacks=[freeze_callback(FROZEN_RUN)], keep_checkpoints=True
    )
    return lora_setup, rc


@pytest.mark.training
def test_lora_finetune_with_frozen_heads_keeps_them_at_theta0(frozen_run):
    """The freeze callback on a LoRA fine-tune through the Trainer: the frozen heads' slices of
    the merged theta1 are theta0's bit for bit (the biases whole: LoRA trains none), the other
    slices of the same maps moved; a LoRA checkpoint (adapter, no model.safetensors) counts as
    complete."""
    from headplast.model.loading import load_model

    root, _ = frozen_run
    ckpts = _complete_checkpoints(root / "frozen" / "trainer_out")
    assert ckpts and not (ckpts[-1] / "model.safetensors").exists()
    theta0 = load_file(root / "ckpt_init" / "model.safetensors")
    theta1 = load_file(root / "frozen" / "ckpt_final" / "model.safetensors")
    masks = head_masks(load_model(root / "ckpt_init"), FROZEN_RUN)  # the full model's slices
    assert len(masks) == 2 * 7  # q, k, v weights and biases, output weight, per layer
    for name, m in masks.items():
        assert torch.equal(theta0[name][m == 0], theta1[name][m == 0]), name
        if name.endswith(".bias"):  # LoRA trains no bias
            assert torch.equal(theta0[name], theta1[name]), name
            continue
        assert not torch.equal(theta0[name][m == 1], theta1[name][m == 1]), name


@pytest.mark.training
def test_lora_finetune_resumes_to_the_same_theta1(frozen_run):
    """A LoRA run (with frozen heads) interrupted after its first epoch's checkpoint resumes from
    the adapter checkpoint and ends bit for bit at the uninterrupted run's theta1."""
    root, rc = frozen_run
    trainer_out = root / "resumed" / "trainer_out"
    shutil.copytree(root / "frozen" / "trainer_out", trainer_out)
    steps = sorted(int(p.name.split("-")[1]) for p in trainer_out.glob("checkpoint-*"))
    assert len(steps) == 2
    shutil.rmtree(trainer_out / f"checkpoint-{steps[-1]}")  # killed before the last checkpoint
    resumed = _finetune(root, "resumed", callbacks=[freeze_callback(FROZEN_RUN)])
    assert resumed["resumed"] is True and resumed["resumed_from_step"] == steps[0]
    assert resumed["validation"] == rc["validation"]
    a = load_file(root / "frozen" / "ckpt_final" / "model.safetensors")
    b = load_file(root / "resumed" / "ckpt_final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
