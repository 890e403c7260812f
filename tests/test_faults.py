"""Issue 7: bad input, faults and reruns. Each case tries the fault for real: a bad config through
`snakemake -n`, bad data and models through the rules' scripts, NaN weights, killed processes,
corrupt per-head files and Snakemake retries.

Two DAG runs giving the same bytes are in tests/test_workflow.py (they read the finished tiny
DAG); training kill/resume (SIGTERM and SIGKILL, identical theta1) is in tests/test_training.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from headplast.data.subset import make_eval_subset
from headplast.data.tasks import prepare_task_data
from headplast.io import ArtifactError, read_head_jsonl, write_json
from headplast.measure.checks import NonFiniteError
from headplast.measure.heads import GRADFISHER_FIELDS, IMPORTANCE_FIELDS, UPDATE_FIELDS, join_heads
from headplast.model.adapters import UnsupportedModelError
from tests.nan_hooks import nan_gate_gradient, nan_when_ablated
from tests.script_runner import SCRIPTS, run_script
from tests.workflow_utils import DELETE, REPO, Replace, make_workdir, run_snakemake

PY = sys.executable


# ----------------------------------------------------------------------------------- helpers


def visible_files(folder: Path) -> list[str]:
    """Files a later rule could read: everything but the hidden temporaries of atomic writes."""
    return sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def tiny_src(tmp_path_factory):
    """The workflow tests' tiny random BERT (with the MiniLM tokenizer)."""
    from tests.make_tiny_model import make_tiny_model

    return Path(make_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model")))


def save_ckpt(src: Path, out: Path, mutate=None) -> Path:
    """A classification checkpoint (3 labels) of the tiny model, as the init rule writes it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=3)
    if mutate is not None:
        with torch.no_grad():
            mutate(model)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory):
    """Canonical validation split (generated NLI) and an eval subset of 12 of its examples."""
    d = tmp_path_factory.mktemp("data")
    meta = prepare_task_data(
        {"source": "synthetic", "n_train": 10, "n_validation": 30, "seed": 0},
        d / "train.jsonl",
        d / "validation.jsonl",
        d / "meta.json",
    )
    write_json(d / "subset.json", {"indices": make_eval_subset(meta["n_validation"], 12, 0)})
    return {"validation": str(d / "validation.jsonl"), "subset": str(d / "subset.json")}


def measure_inputs(ckpt: Path, eval_data: dict) -> dict:
    """The inputs of importance_pre and gradfisher_pre: theta0 (``ckpt``) and the eval data."""
    return {
        "init_model": str(ckpt / "model.safetensors"),
        "init_config": str(ckpt / "config.json"),
        **eval_data,
    }


MEASURE_PARAMS = {
    "max_length": 48,
    "tokens_per_batch": 256,
    "sweep_tokens": 512,
    "precision": "fp32",
}


def run_importance(ckpt, eval_data, out_dir):
    return run_script(
        "importance",
        out_dir,
        measure_inputs(ckpt, eval_data),
        {
            "jsonl": str(out_dir / "importance_pre.jsonl"),
            "per_example": str(out_dir / "importance_pre.npz"),
        },
        MEASURE_PARAMS,
    )


def run_gradfisher(ckpt, eval_data, out_dir):
    params = {k: v for k, v in MEASURE_PARAMS.items() if k != "sweep_tokens"}
    return run_script(
        "gradfisher",
        out_dir,
        measure_inputs(ckpt, eval_data),
        {
            "jsonl": str(out_dir / "gradfisher_pre.jsonl"),
            "per_example": str(out_dir / "gradfisher_pre.npz"),
        },
        {**params, "eps": 1e-20},
    )


# ------------------------------------------------------------------------------------ config


CONFIG_CASES = {
    "unknown_task": (
        {"tasks": {"nli_a": {"data": Replace({"source": "glue", "name": "mnlx"})}}},
        ["`tasks.nli_a.data.name`", "'mnlx'", "allowed: mnli, rte, qnli"],
    ),
    "seeds_not_integers": (
        {"seeds": [1, "two", 2.5]},
        ["`seeds[1]`", "'two'", "`seeds[2]`", "2.5", "allowed: an integer >= 0"],
    ),
    "subset_size_not_positive": (
        {"eval_subset": {"size": 0}},
        ["`eval_subset.size`", "0 is not allowed", "allowed: an integer >= 1 or `all`"],
    ),
    "unknown_precision": (
        {"precision": "fp8"},
        ["`precision`", "'fp8'", "allowed: auto, bf16, fp16, fp32"],
    ),
    "top_k_not_positive": (
        {"analysis": {"top_k": 0}},
        ["`analysis.top_k`", "0 is less than the minimum of 1", "allowed: an integer >= 1"],
    ),
    "typo_seed_for_seeds": (
        {"seeds": DELETE, "seed": [1, 2]},
        ["`seed`: unknown key, did you mean `seeds`?", "`seeds`: missing (required)"],
    ),
    "typo_nested": (
        {"tasks": {"nli_a": {"train": {"learning_rte": 0.1}}}},
        ["`tasks.nli_a.train.learning_rte`: unknown key, did you mean `learning_rate`?"],
    ),
}


@pytest.mark.snakemake
@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_error_names_key_value_and_allowed(tmp_path, case):
    overrides, expected = CONFIG_CASES[case]
    wd = make_workdir(tmp_path, overrides)
    proc = run_snakemake(wd, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid configuration" in out
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out}"


@pytest.mark.snakemake
def test_valid_test_config_passes_dry_run(tmp_path):
    run_snakemake(make_workdir(tmp_path), "-n", "--quiet")


@pytest.mark.dag
def test_subset_larger_than_split_fails_in_eval_subset_rule(tmp_path):
    wd = make_workdir(tmp_path, {"eval_subset": {"size": 100}})  # validation has 60 examples
    proc = run_snakemake(wd, "results/data/nli_a/eval_subset.json", check=False)
    assert proc.returncode != 0
    assert "eval_subset" in proc.stdout + proc.stderr
    log = (wd / "logs" / "eval_subset" / "nli_a.log").read_text()
    assert "config key `eval_subset.size` = 100" in log
    assert "results/data/nli_a/validation.jsonl has 60 examples" in log
    assert not (wd / "results" / "data" / "nli_a" / "eval_subset.json").exists()


def test_top_k_larger_than_heads_fails_in_stats_script(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    cols = [
        "I_pre",
        "I_post",
        "G",
        "F",
        "Ppred",
        "U",
        "Urel",
        "Uq",
        "Uk",
        "Uv",
        "Uo",
        "A_js",
        "C_rel",
    ]
    heads = pd.DataFrame({"layer": np.repeat([0, 1], 4), "head": np.tile(range(4), 2)})
    for c in cols:
        heads[c] = rng.random(8)
    heads.to_csv(tmp_path / "heads.csv", index=False)
    curve = [
        {"order": o, "kind": k, "step": j, "n_removed": 8 * j, "fraction": j, "removed": []}
        | {"loss": 1.0 + j, "acc": 0.5 - 0.2 * j}
        for o, k in (("I_pre", "score"), ("random_0", "random"))
        for j in (0, 1)
    ]
    (tmp_path / "pruning.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))
    inputs = {"heads": str(tmp_path / "heads.csv"), "pruning": str(tmp_path / "pruning.jsonl")}
    params = {"top_k": 9, "n_permutations": 9, "n_bootstrap": 9, "seed": 0}
    with pytest.raises(ValueError, match=r"top_k = 9 .* 8 heads.*`analysis\.top_k` to at most 8"):
        run_script(
            "stats",
            tmp_path,
            inputs,
            {"stats": str(tmp_path / "stats.json")},
            params,
        )
    assert not (tmp_path / "stats.json").exists()
    run_script(  # K = number of heads is allowed
        "stats",
        tmp_path,
        inputs,
        {"stats": str(tmp_path / "stats.json")},
        {**params, "top_k": 8},
    )
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["parameters"]["top_k"] == 8
    assert stats["pruning"]["auc"] == {"I_pre": pytest.approx(0.4)}


# -------------------------------------------------------------------------------------- data

LOCAL = {
    "source": "local",
    "train": "raw/train.tsv",
    "validation": "raw/validation.tsv",
    "columns": {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold"},
    "label_names": ["entailment", "not_entailment"],
}


def _local_workdir(tmp_path, val_label="entailment"):
    wd = make_workdir(
        tmp_path, {"seeds": [1], "tasks": {"nli_a": {"data": Replace(LOCAL)}, "nli_b": DELETE}}
    )
    (wd / "raw").mkdir()
    header = "sentence1\tsentence2\tgold\n"
    (wd / "raw" / "train.tsv").write_text(
        header
        + "a man sleeps\ta person sleeps\tentailment\n"
        + "a dog runs\ta cat runs\tnot_entailment\n"
    )
    (wd / "raw" / "validation.tsv").write_text(
        header + "it rains\tit is wet\tentailment\n" + f"it is hot\tit is cold\t{val_label}\n"
    )
    return wd


@pytest.mark.snakemake
def test_missing_local_file_is_named_by_prepare_data(tmp_path):
    wd = _local_workdir(tmp_path)
    (wd / "raw" / "validation.tsv").unlink()
    proc = run_snakemake(wd, "-n", "results/data/nli_a/meta.json", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "prepare_data" in out and "raw/validation.tsv" in out, out


@pytest.mark.dag
def test_label_outside_set_fails_prepare_data_naming_file_and_column(tmp_path):
    wd = _local_workdir(tmp_path, val_label="maybe")
    proc = run_snakemake(wd, "results/data/nli_a/meta.json", check=False)
    assert proc.returncode != 0
    log = (wd / "logs" / "prepare_data" / "nli_a.log").read_text()
    assert (
        "raw/validation.tsv: line 3: column 'gold' has label 'maybe', not in the label set" in log
    )
    data = wd / "results" / "data" / "nli_a"
    assert not data.exists() or visible_files(data) == []
    # fixed, the same rule runs through
    _ = (wd / "raw" / "validation.tsv").write_text(
        (wd / "raw" / "validation.tsv").read_text().replace("maybe", "not_entailment")
    )
    run_snakemake(wd, "results/data/nli_a/meta.json")
    assert json.loads((data / "meta.json").read_text())["n_validation"] == 2


# ------------------------------------------------------------------------------------- model


def _neox_checkpoint(src: Path, out: Path) -> Path:
    """A GPT-NeoX checkpoint: its fused query_key_value interleaves q, k and v per head, a layout
    the adapter table does not know."""
    from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForSequenceClassification

    tok = AutoTokenizer.from_pretrained(src)
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(
        vocab_size=tok.vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=64,
        num_labels=3,
    )
    cfg.pad_token_id = tok.pad_token_id
    GPTNeoXForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_unsupported_architecture_names_model_type_in_measure_and_init(
    tiny_src, eval_data, tmp_path
):
    ckpt = _neox_checkpoint(tiny_src, tmp_path / "neox")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(UnsupportedModelError, match="model type 'gpt_neox' has no known attention"):
        run_importance(ckpt, eval_data, out_dir)
    with pytest.raises(UnsupportedModelError, match="'gpt_neox'"):
        run_gradfisher(ckpt, eval_data, out_dir)
    assert visible_files(out_dir) == ["gradfisher.log", "importance.log"]
    # theta0 is refused at the first rule, before any fine-tuning
    from headplast.train.theta0 import init_checkpoint

    with pytest.raises(UnsupportedModelError, match="'gpt_neox'"):
        init_checkpoint(ckpt, 3, 1, tmp_path / "ckpt_init")
    assert not (tmp_path / "ckpt_init").exists()


def test_trust_remote_code_is_off_by_default(tiny_src, tmp_path):
    """A checkpoint that ships its own modelling code is refused, and the code never runs."""
    import shutil

    from headplast.measure.stage import load_checkpoint
    from headplast.model.loading import load_model

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert (
        schema["properties"]["models"]["additionalProperties"]["properties"]["trust_remote_code"][
            "default"
        ]
        is False
    )

    ckpt = tmp_path / "custom"
    shutil.copytree(tiny_src, ckpt)
    marker = tmp_path / "remote_code_ran"
    (ckpt / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import BertConfig, BertForSequenceClassification\n"
        "class EvilConfig(BertConfig):\n    model_type = 'evil'\n"
        "class EvilModel(BertForSequenceClassification):\n    config_class = EvilConfig\n"
    )
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg.update(
        model_type="evil",
        auto_map={
            "AutoConfig": "evil.EvilConfig",
            "AutoModelForSequenceClassification": "evil.EvilModel",
        },
    )
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_model(ckpt, 3)
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_checkpoint(ckpt, torch.device("cpu"))
    assert not marker.exists()


def test_checkpoints_are_read_from_safetensors_only(tiny_src, tmp_path, monkeypatch):
    """A folder with only pickle weights (pytorch_model.bin) is refused by both loaders, and
    both ask transformers for safetensors explicitly."""
    import shutil

    from transformers import AutoModelForSequenceClassification

    from headplast.measure.stage import load_checkpoint
    from headplast.model.loading import ModelLoadError, load_model

    ckpt = tmp_path / "pickle_only"
    shutil.copytree(tiny_src, ckpt)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_src, num_labels=3)
    torch.save(model.state_dict(), ckpt / "pytorch_model.bin")
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="no model.safetensors"):
        load_checkpoint(ckpt, torch.device("cpu"))
    with pytest.raises(ModelLoadError, match="no \\*.safetensors"):
        load_model(ckpt, 3)

    seen = []
    real = AutoModelForSequenceClassification.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs.get("use_safetensors"))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", classmethod(spy))
    good = save_ckpt(tiny_src, tmp_path / "good")
    seen.clear()
    load_checkpoint(good, torch.device("cpu"))
    load_model(good, 3)
    assert seen == [True, True]


# ----------------------------------------------------------------------------------- numbers


def _nan_value_head(layer: int, head: int):
    def mutate(model):
        attn = model.bert.encoder.layer[layer].attention.self
        d = attn.attention_head_size
        attn.value.weight[head * d : (head + 1) * d] = float("nan")

    return mutate


def test_nan_weights_fail_both_measures_and_write_nothing(tiny_src, eval_data, tmp_path):
    ckpt = save_ckpt(tiny_src, tmp_path / "nan_ckpt", _nan_value_head(1, 2))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(NonFiniteError, match="non-finite loss with all gates 1 at batch 0"):
        run_importance(ckpt, eval_data, out_dir)
    with pytest.raises(NonFiniteError, match="non-finite loss with all gates 1 at batch 0"):
        run_gradfisher(ckpt, eval_data, out_dir)
    assert visible_files(out_dir) == ["gradfisher.log", "importance.log"]
    assert [p.name for p in out_dir.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("script", "inject", "layer", "head", "what"),
    [
        ("importance", nan_when_ablated, 1, 2, "loss with the head ablated"),
        ("gradfisher", nan_gate_gradient, 0, 3, "gate gradient"),
    ],
)
def test_non_finite_for_one_head_names_head_and_batch(
    tiny_src, eval_data, tmp_path, monkeypatch, script, inject, layer, head, what
):
    import headplast.measure.stage as measures

    real = measures.load_checkpoint

    def load(ckpt_dir, device):
        model, tok = real(ckpt_dir, device)
        inject(model, layer, head)
        return model, tok

    monkeypatch.setattr(measures, "load_checkpoint", load)
    ckpt = save_ckpt(tiny_src, tmp_path / "ckpt")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    runner = run_importance if script == "importance" else run_gradfisher
    with pytest.raises(NonFiniteError, match=rf"{what} at batch 0, layer {layer}, head {head} "):
        runner(ckpt, eval_data, out_dir)
    assert visible_files(out_dir) == [f"{script}.log"]
    monkeypatch.setattr(measures, "load_checkpoint", real)  # the same checkpoint is fine
    runner(ckpt, eval_data, out_dir)
    assert f"{script}.log" in visible_files(out_dir) and len(visible_files(out_dir)) == 3


# ----------------------------------------------------------------------------------- outputs


def _wait_for(proc, path: Path, text: str, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_write_killed_mid_file_leaves_only_a_hidden_temporary(tmp_path):
    target = tmp_path / "importance_pre.jsonl"
    code = f"""
import json, sys, time
from headplast.io import write_head_jsonl
real, n = json.dumps, [0]
def slow(obj, **kw):
    n[0] += 1
    if n[0] == 60:
        open({str(tmp_path / "progress")!r}, "w").write("half written")
        time.sleep(120)
    return real(obj, **kw)
json.dumps = slow
rows = [{{"layer": l, "head": h, "I": 0.5, "pad": "x" * 400}} for l in range(12) for h in range(12)]
write_head_jsonl({str(target)!r}, rows)
"""
    proc = subprocess.Popen([PY, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, tmp_path / "progress", "half written")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert not target.exists()
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(".importance_pre.jsonl.")]
    assert len(temps) == 1 and temps[0].stat().st_size > 8000  # the partial content, hidden
    assert visible_files(tmp_path) == ["progress"]


def test_measure_killed_mid_way_leaves_nothing_then_reruns(tiny_src, eval_data, tmp_path):
    """The importance script in its own process, slowed down and SIGKILLed in the ablation sweep;
    no output (or a file a rule would read) remains, and the rerun writes a complete file."""
    ckpt = save_ckpt(tiny_src, tmp_path / "ckpt")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    progress = tmp_path / "progress"
    smk = {
        "input": measure_inputs(ckpt, eval_data),
        "output": {
            "jsonl": str(out_dir / "importance_pre.jsonl"),
            "per_example": str(out_dir / "importance_pre.npz"),
        },
        "params": MEASURE_PARAMS,
        "log": [str(out_dir / "importance.log")],
    }
    code = f"""
import json, runpy, sys, time
from types import SimpleNamespace
import headplast.measure.stage as measures
sys.path.insert(0, {str(REPO)!r})
from tests.script_runner import Named as _Named
real = measures.load_checkpoint
calls = [0]
def load(ckpt_dir, device):
    model, tok = real(ckpt_dir, device)
    def slow(module, args, kwargs):
        calls[0] += 1
        if calls[0] == 3:
            open({str(progress)!r}, "w").write("sweeping")
        time.sleep(0.5)
    model.register_forward_pre_hook(slow, with_kwargs=True)
    return model, tok
measures.load_checkpoint = load
s = json.loads({json.dumps(json.dumps(smk))})
smk = SimpleNamespace(input=_Named(**s["input"]), output=_Named(**s["output"]),
    params=_Named(**s["params"]), log=s["log"], threads=1, scriptdir={str(SCRIPTS)!r})
runpy.run_path({str(SCRIPTS / "importance.py")!r}, init_globals={{"snakemake": smk}})
"""
    proc = subprocess.Popen([PY, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, progress, "sweeping")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert visible_files(out_dir) == ["importance.log"]
    run_importance(ckpt, eval_data, out_dir)
    df = read_head_jsonl(out_dir / "importance_pre.jsonl", ["I", "loss_base", "loss_ablate"], 2, 4)
    assert len(df) == 8


# --------------------------------------------------------------------------------- aggregation

FIELDS = {
    "importance_pre": IMPORTANCE_FIELDS,
    "importance_post": IMPORTANCE_FIELDS,
    "gradfisher_pre": GRADFISHER_FIELDS,
    "update": UPDATE_FIELDS,
    "function_change": ("A_js", "C_rel"),
}


@pytest.fixture
def head_files(tmp_path):
    paths = {}
    for name, fields in FIELDS.items():
        lines = [
            json.dumps(
                {
                    "layer": lay,
                    "head": h,
                    **{f: 0.1 * (lay * 3 + h + i) for i, f in enumerate(fields)},
                }
            )
            for lay in range(2)
            for h in range(3)
        ]
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("\n".join(lines) + "\n")
    return paths


def _join(paths):
    return join_heads(
        paths["importance_pre"],
        paths["importance_post"],
        paths["gradfisher_pre"],
        paths["update"],
        paths["function_change"],
    )


def _edit(path: Path, fn) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(fn(lines)))


CORRUPTIONS = {
    "cut_mid_line": (
        "update",
        lambda ls: ls[:-1] + [ls[-1][:25]],
        r"update\.jsonl:6: corrupt or truncated line",
    ),
    "missing_last_line": (
        "importance_post",
        lambda ls: ls[:-1],
        r"importance_post\.jsonl: 5 lines do not form a complete 2 x 3 grid",
    ),
    "missing_line_of_first_file": (
        "importance_pre",
        lambda ls: ls[:2] + ls[3:],
        r"importance_pre\.jsonl: 5 lines do not form a complete 2 x 3 grid",
    ),
    "missing_last_layer_of_first_file": (
        "importance_pre",
        lambda ls: ls[:3],
        r"disagree on the layer x head grid \(\S*importance_pre\.jsonl: 1 x 3 heads; "
        r"\S*importance_post\.jsonl: 2 x 3 heads",
    ),
    "negative_head": (  # (1, 2) written as (1, -1): six lines, heads 0-2 seen, still not a grid
        "update",
        lambda ls: ls[:-1] + [ls[-1].replace('"head": 2', '"head": -1')],
        r"update\.jsonl: 6 lines do not form a complete 2 x 3 grid",
    ),
    "duplicate_head": (
        "gradfisher_pre",
        lambda ls: ls[:4] + [ls[3]] + ls[5:],
        r"gradfisher_pre\.jsonl: \(layer, head\) \(1, 0\) appears more than once",
    ),
    "field_missing_everywhere": (
        "update",
        lambda ls: [
            json.dumps({k: v for k, v in json.loads(x).items() if k != "Urel"}) + "\n" for x in ls
        ],
        r"update\.jsonl: missing field\(s\) \['Urel'\]",
    ),
    "field_missing_on_one_line": (
        "update",
        lambda ls: (
            ls[:2]
            + [json.dumps({k: v for k, v in json.loads(ls[2]).items() if k != "Uo"}) + "\n"]
            + ls[3:]
        ),
        r"update\.jsonl: line 3 \(layer 0, head 2\): field 'Uo' is missing, not a finite number",
    ),
    "infinite_value": (
        "gradfisher_pre",
        lambda ls: ls[:1] + [ls[1].replace('"G": ', '"G": Infinity, "x": ')] + ls[2:],
        r"gradfisher_pre\.jsonl: line 2 \(layer 0, head 1\): field 'G' is inf",
    ),
    "text_value": (
        "importance_pre",
        lambda ls: [ls[0].replace('"I": 0.0', '"I": "high"')] + ls[1:],
        r"importance_pre\.jsonl: line 1 \(layer 0, head 0\): field 'I' is 'high'",
    ),
    "empty_file": ("importance_post", lambda ls: [], r"importance_post\.jsonl: empty file"),
    "not_an_object": (
        "update",
        lambda ls: ["[1, 2]\n"] + ls[1:],
        r"update\.jsonl:1: expected a JSON object",
    ),
}


def test_join_of_valid_files(head_files):
    df = _join(head_files)
    assert len(df) == 6 and df[["layer", "head"]].drop_duplicates().shape[0] == 6


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_aggregation_rejects_corrupt_input(head_files, tmp_path, case):
    name, fn, pattern = CORRUPTIONS[case]
    _edit(head_files[name], fn)
    with pytest.raises(ArtifactError, match=pattern):
        _join(head_files)


def test_heads_script_writes_nothing_on_truncated_input(head_files, tmp_path):
    _edit(head_files["importance_post"], lambda ls: ls[:-1] + [ls[-1][:30]])
    inputs = {k: str(v) for k, v in head_files.items()}
    inputs["update_jsonl"] = inputs.pop("update")
    with pytest.raises(ArtifactError, match=r"importance_post\.jsonl:6: corrupt or truncated"):
        run_script("heads", tmp_path, inputs, {"heads": str(tmp_path / "heads.csv")})
    assert not (tmp_path / "heads.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".heads.csv")]


# ---------------------------------------------------------------------------------- training


@pytest.mark.dag
def test_finetune_runtime_grows_with_each_retry(tmp_path):
    """The real finetune rule under Snakemake's --retries: a stand-in script records the runtime
    Snakemake gives each attempt and fails twice; the third attempt succeeds."""
    wd = make_workdir(tmp_path, {"seeds": [1], "tasks": {"nli_b": DELETE}})
    (wd / "workflow" / "scripts" / "finetune.py").write_text(
        "import pathlib\n"
        "sm = snakemake\n"
        "with open('attempts.txt', 'a') as fh:\n"
        "    fh.write(f'{sm.resources.runtime}\\n')\n"
        "attempt = len(pathlib.Path('attempts.txt').read_text().split())\n"
        "if attempt < 3:\n"
        "    raise SystemExit(f'simulated failure of attempt {attempt}')\n"
        "for p in sm.output:\n"
        "    pathlib.Path(p).parent.mkdir(parents=True, exist_ok=True)\n"
        "    pathlib.Path(p).write_text('{}')\n"
    )
    for f in (
        "results/tiny_bert/nli_a/random/seed1/ckpt_init/model.safetensors",
        "results/tiny_bert/nli_a/random/seed1/ckpt_init/config.json",
        "results/data/nli_a/train.jsonl",
        "results/data/nli_a/validation.jsonl",
        "results/data/nli_a/selection.json",
    ):
        (wd / f).parent.mkdir(parents=True, exist_ok=True)
        (wd / f).write_text("{}")
    run_snakemake(
        wd,
        "results/tiny_bert/nli_a/random/seed1/run_config.json",
        "--retries",
        "2",
        "--allowed-rules=finetune",
    )
    runtimes = [int(x) for x in (wd / "attempts.txt").read_text().split()]
    runtime = yaml.safe_load((wd / "test_config.yaml").read_text())["resources"]["finetune"][
        "runtime"
    ]
    assert runtimes == [runtime, 2 * runtime, 3 * runtime]
