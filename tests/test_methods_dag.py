"""`methods:` and `lora:` in the workflow (dry runs of the tiny DAG, no job run): full
fine-tuning's jobs, paths and params are those of a workflow without methods; LoRA adds its own
twin of every theta1 job under `lora/`, sharing theta0 and what is measured on it; a bad key is
named. The real run (adding LoRA to a finished full-only tree plans no full job; LoRA's theta1
saved merged; a freeze intervention under LoRA holds its heads' slices at theta0 bit for bit) is
in tests/test_families_dag.py."""

from __future__ import annotations

import ast
from collections import Counter

import pytest

from tests.test_workflow import planned_jobs
from tests.workflow_utils import make_workdir, run_snakemake, tiny_config, write_config

#: Each test but the last starts Snakemake (dry runs): the workflow tier.
pytestmark = pytest.mark.snakemake

LORA = "lora/"
# theta1 and what follows it, per (start, seed) of each task: one job per method
THETA1_PER_SEED = (
    "finetune",
    "importance_post",
    "update",
    "pruning",
    "function_change",
    "heads",
    "stats",
    "cases",
    "fig_I_vs_U",
    "fig_I_vs_G",
    "fig_stats",
    "fig_heatmaps",
    "fig_pruning",
)
PER_RUN = ("summary_seeds", "fig_summary", "summary_pruning", "fig_pruning_mean", "fig_training")
THETA0 = (
    "init_checkpoint",
    "probe_features",
    "probe_checkpoint",
    "theta0_sweep",
    "importance_pre_shared",
    "gradfisher_pre",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("methods"))


def _plan(workdir, overrides=None):
    write_config(workdir, tiny_config(overrides))
    return planned_jobs(workdir, "--forceall")


def test_default_methods_plan_exactly_the_jobs_of_a_workflow_without_methods(workdir):
    """`methods:` left out and `methods: [full]` plan the same jobs, none with a LoRA path,
    185 in all (the tiny DAG as before LoRA: 2 tasks x 2 starts x 2 seeds)."""
    default = Counter((r, frozenset(w.items())) for r, w in _plan(workdir))
    full = Counter((r, frozenset(w.items())) for r, w in _plan(workdir, {"methods": ["full"]}))
    assert default == full
    assert sum(default.values()) == 185
    assert not any(dict(w).get("method") for _, w in default)
    assert sum(n for (r, _), n in default.items() if r == "finetune") == 8


def test_lora_adds_a_twin_of_every_theta1_job_and_shares_theta0(workdir):
    """methods [full, lora]: 144 more jobs, each with method=lora/: per task, start and seed the
    fine-tune and everything measured on theta1 (13 x 8), per run the summaries (5 x 4), the
    freeze interventions of the random start (2 orders x 2 seeds x 2 tasks x 2 rules + 2 x 2
    summaries); theta0's jobs are not repeated."""
    full = Counter(r for r, _ in _plan(workdir))
    both_jobs = _plan(workdir, {"methods": ["full", "lora"]})
    both = Counter(r for r, _ in both_jobs)
    lora = Counter(r for r, w in both_jobs if w.get("method") == LORA)
    assert sum(lora.values()) == 13 * 8 + 5 * 4 + 16 + 4 == 144
    assert all(lora[r] == 8 for r in THETA1_PER_SEED)
    assert all(lora[r] == 4 for r in PER_RUN)
    assert lora["finetune_frozen"] == lora["update_frozen"] == 8
    assert all(both[r] == full[r] for r in THETA0)  # shared by the methods
    assert both - full == lora + Counter({"compare_methods": 1})  # the methods side by side
    assert sum(both.values()) == 185 + 144 + 1


def test_lora_only_runs_no_full_fine_tune(workdir):
    jobs = _plan(workdir, {"methods": ["lora"]})
    assert all(w.get("method") == LORA for r, w in jobs if r in THETA1_PER_SEED)
    assert sum(1 for r, _ in jobs if r == "finetune") == 8
    assert "compare_methods" not in {r for r, _ in jobs}  # one method: nothing to compare


def test_compare_methods_is_planned_once_from_both_methods_runs(workdir):
    """methods [full, lora]: one compare_methods job (results/comparison/methods_comparison.csv,
    a target of `all` and an input of the findings page), reading both methods' per-seed heads
    tables and summaries of every run: its own plan holds the heads and summary_seeds jobs of
    2 tasks x 2 starts (x 2 seeds) under each method; the default config plans none (185)."""
    write_config(workdir, tiny_config({"methods": ["full", "lora"]}))
    target = "results/comparison/methods_comparison.csv"
    own = Counter(r for r, _ in planned_jobs(workdir, "--forceall", target))
    assert own["compare_methods"] == 1
    assert own["summary_seeds"] == 2 * 4 and own["heads"] == 2 * 8
    assert own["findings"] == 0
    page = Counter(r for r, _ in planned_jobs(workdir, "--forceall", "results/findings.json"))
    assert page["compare_methods"] == 1
    assert Counter(r for r, _ in _plan(workdir))["compare_methods"] == 0


BAD = {  # every violation is named at once, by its config key
    "methods": ["full", "qlora"],
    "lora": {
        "rank": 4,
        "dropout": 1.0,
        "target": ["query", "q_proj"],
        "train": {"learning_rte": 1},
    },
    "tasks": {"nli_a": {"lora": {"alpah": 4}, "train": {"method": "lora"}}},
    "models": {"tiny_bert": {"lora": {"r": 0}}},
}
BAD_MESSAGES = [
    "config key `methods[1]`: 'qlora' is not a known value (allowed: full, lora)",
    "config key `lora.rank`: unknown key",
    "config key `lora.dropout`",
    "config key `lora.target[1]`",
    "config key `lora.train.learning_rte`: unknown key",
    "config key `tasks.nli_a.lora.alpah`: unknown key",
    "config key `tasks.nli_a.train.method`: unknown key",
    "config key `models.tiny_bert.lora.r`",
]


def test_a_bad_methods_or_lora_key_is_named(workdir):
    for overrides, messages in [(BAD, BAD_MESSAGES), ({"methods": []}, ["config key `methods`"])]:
        write_config(workdir, tiny_config(overrides))
        proc = run_snakemake(workdir, "--dry-run", check=False)
        write_config(workdir, tiny_config())
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert [m for m in messages if m not in out] == [], out[-3000:]


def _train_params(overrides, method, task="nli_a", model="tiny_bert"):
    """get_train_params of rules/functions.smk on the prepared tiny config, outside Snakemake."""
    from types import SimpleNamespace

    import yaml

    from headplast.pipeline.config import prepare_config
    from tests.workflow_utils import REPO

    cfg = prepare_config(tiny_config(overrides), REPO / "workflow/schemas/config.schema.yaml")
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    lora_defaults = {
        k: v.get("default") for k, v in schema["properties"]["lora"]["properties"].items()
    }
    cfg.setdefault("lora", {})
    cfg["lora"] = {**lora_defaults, **cfg["lora"]}
    src = (REPO / "rules/functions.smk").read_text()
    tree = ast.parse(src)
    wanted = {"get_train_params", "get_lora"}
    code = ast.Module([n for n in tree.body if getattr(n, "name", "") in wanted], [])
    from headplast.pipeline.config import canonical

    ns = {
        "config": cfg,
        "canonical": canonical,
        "METHOD_OF_DIR": {"": "full", "lora/": "lora"},
    }
    exec(compile(code, "functions.smk", "exec"), ns)
    wc = SimpleNamespace(model=model, task=task, method={"full": "", "lora": LORA}[method])
    return ns["get_train_params"](wc)


def test_full_params_ignore_lora_and_lora_params_merge_its_levels():
    """Full fine-tuning's hparams are `tasks.<t>.train` alone (a `lora:` change leaves them, and
    so the full runs, as they are); LoRA's merge defaults < top level < model < task, with
    `lora.train` over the task's train keys."""
    base = _train_params({}, "full")
    assert "method" not in base and "lora" not in base
    overrides = {
        "methods": ["full", "lora"],
        "lora": {"r": 4, "alpha": 16, "train": {"learning_rate": 5e-3, "weight_decay": 0.1}},
        "models": {"tiny_bert": {"lora": {"r": 2, "dropout": 0.1}}},
        "tasks": {"nli_a": {"lora": {"target": ["query", "value"], "train": {"weight_decay": 0}}}},
    }
    assert _train_params(overrides, "full") == base
    lora = _train_params(overrides, "lora")
    assert lora["method"] == "lora"
    assert lora["lora"] == {"r": 2, "alpha": 16, "dropout": 0.1, "target": ["query", "value"]}
    assert lora["learning_rate"] == 5e-3 and lora["weight_decay"] == 0
    assert {k: v for k, v in lora.items() if k not in ("method", "lora")} == {
        **base,
        "learning_rate": 5e-3,
        "weight_decay": 0,
    }
    assert list(lora) == sorted(lora)  # canonical: the key order of the config does not count
    # the defaults: headplast.train.defaults.LORA_DEFAULTS
    from headplast.train.defaults import LORA_DEFAULTS

    plain = _train_params({"methods": ["lora"]}, "lora")
    assert plain["lora"] == LORA_DEFAULTS
