# The results tree (docs/outputs.md), the one place that spells it: where each artifact, log and
# benchmark goes, a checkpoint's declared files, and every target of the default rule `all`.

DATA_DIR = "results/data/{task}"
SEED_DIR = "results/{model}/{task}/{start}/seed{seed}"
SUMMARY_DIR = "results/{model}/{task}/{start}/summary"
MODEL_TASK_DIR = "results/{model}/{task}"  # shared by its starts and seeds
COMPARISON_DIR = "results/comparison"
SEED_WILDCARDS = "{model}/{task}/{start}/seed{seed}"
# What follows theta1 exists once per method: `{method}` ("" for full, "lora/" for LoRA; see
# rules/derived.smk) prefixes its name below the seed folder, the summary folder and the log's
# and benchmark's seed file, so full fine-tuning's paths are those of a tree without methods.
METHOD = "{method}"
THETA1_WILDCARDS = "{model}/{task}/{start}/{method}seed{seed}"
SUMMARY_WILDCARDS = "{model}/{task}/{method}{start}"


def data_path(name):
    """A task's canonical data file, shared by every model, start and seed."""
    return f"{DATA_DIR}/{name}"


def seed_path(name, start="{start}"):
    """A per-seed artifact; ``start`` fixes the start for rules that make only one of them."""
    return f"{SEED_DIR}/{name}".replace("{start}", start)


def theta1_path(name, start="{start}"):
    """A per-seed artifact of theta1 (or measured on it): one per method."""
    return seed_path(f"{METHOD}{name}", start)


def model_task_path(name):
    """An artifact of one model and task shared by all its starts and seeds."""
    return f"{MODEL_TASK_DIR}/{name}"


def summary_path(name):
    """An across-seed artifact of one model, task, start and method."""
    return f"{SUMMARY_DIR}/{METHOD}{name}"


def log_path(rule, wildcards=SEED_WILDCARDS):
    return f"logs/{rule}/{wildcards}.log"


def bench_path(rule, wildcards=SEED_WILDCARDS):
    return f"benchmarks/{rule}/{wildcards}.tsv"


def _ckpt_dir(which, start):
    name = f"ckpt_{which}"
    return theta1_path(name, start) if which == "final" else seed_path(name, start)


def ckpt(which, start="{start}"):
    """The declared files of a seed's checkpoint folder ckpt_<which> (the folder itself is not an
    output), named as the outputs of the job that writes it (`model`, `config`); theta1's
    (`final`) is one per method."""
    d = _ckpt_dir(which, start)
    return {"model": f"{d}/model.safetensors", "config": f"{d}/config.json"}


def ckpt_input(which, start="{start}", folder=None):
    """A checkpoint as input, in the one form all rules use (`**ckpt_input("init")`), named
    `<which>_model` and `<which>_config`: a script reads theta0 as input.init_model and theta1
    as input.final_model. ``folder``: a checkpoint outside the seed's own ckpt_<which> (a frozen
    run's theta1)."""
    d = folder or _ckpt_dir(which, start)
    return {
        f"{which}_model": f"{d}/model.safetensors",
        f"{which}_config": f"{d}/config.json",
    }


def per_seed(name):
    """Input function: this run's (and method's) per-seed theta1 artifact ``name``, one file
    per seed in SEEDS order."""

    def inputs(wildcards):
        return expand(
            theta1_path(name),
            model=wildcards.model,
            task=wildcards.task,
            start=wildcards.start,
            method=wildcards.method,
            seed=SEEDS,
        )

    return inputs


def runs(pattern, **fixed):
    """``pattern`` expanded over every model x task x start (x seed, x the task's methods where
    it has {seed}, {method}) and over the values of ``fixed`` (other wildcards of the pattern,
    e.g. artifact=[...]; method=PAGE_METHOD keeps the runs of the method the pages show).
    """
    dims = {"start": STARTS, "seed": SEEDS, "method": None}
    dims = {k: v for k, v in dims.items() if f"{{{k}}}" in pattern and k not in fixed}
    out = []
    for task in TASKS:  # a `checkpoints:` task runs for its own model only
        task_dims = {
            k: task_methods(task) if k == "method" else v for k, v in dims.items()
        }
        task_fixed = dict(fixed)
        if fixed.get("method") not in (None, *task_methods(task)):
            task_fixed["method"] = task_methods(
                task
            )  # an imported fine-tune's one method
        for model in TASK_MODELS[task]:
            out += expand(pattern, model=model, task=task, **task_dims, **task_fixed)
    return list(dict.fromkeys(out))


def compared_runs(pattern, **fixed):
    """``pattern`` expanded over the runs made under both full fine-tuning and LoRA: every
    trained task's model x task x start (x seed where it has {seed}), in one order for every
    pattern, so files and labels line up; ``fixed`` as for :func:`runs` (method=...). Empty
    unless METHODS_COMPARED."""
    if not METHODS_COMPARED:
        return []
    dims = {"start": STARTS, "seed": SEEDS}
    dims = {k: v for k, v in dims.items() if f"{{{k}}}" in pattern and k not in fixed}
    out = []
    for task in TRAINED_TASKS:
        for model in TASK_MODELS[task]:
            out += expand(pattern, model=model, task=task, **dims, **fixed)
    return out


# Measured on theta0: one per seed and start, shared by the methods.
THETA0_ARTIFACTS = [
    "importance_pre.jsonl",
    "gradfisher_pre.jsonl",
    "ckpt_init/model.safetensors",
    "ckpt_init/config.json",
]
# theta1 and what is measured on it or derived from it: one per method.
THETA1_ARTIFACTS = [
    "importance_post.jsonl",
    "update.jsonl",
    "pruning.jsonl",
    "function_change.jsonl",
    "heads.csv",
    "stats.json",
    "cases.json",
    "fig_I_vs_U.png",
    "fig_I_vs_G.png",
    "fig_stats.png",
    "fig_heatmaps.png",
    "fig_pruning.png",
    "run_config.json",
    "ckpt_final/model.safetensors",
    "ckpt_final/config.json",
]
SEED_ARTIFACTS = THETA0_ARTIFACTS + THETA1_ARTIFACTS
SUMMARY_ARTIFACTS = [
    "heads_mean.csv",
    "stability.json",
    "pair_stats.json",
    "case_counts.csv",
    "fig_heatmaps_mean.png",
    "fig_rank_stability.png",
    "fig_I_vs_U_mean.png",
    "fig_I_vs_G_mean.png",
    "pruning_mean.csv",
    "pruning_auc.json",
    "fig_pruning_mean.png",
    "fig_training.png",
]
COMPARISON_ARTIFACTS = [
    "tasks_comparison.csv",
    "starts_comparison.csv",
    "fig_starts.png",
]
# Full fine-tuning and LoRA side by side (rule compare_methods), where both run.
METHODS_COMPARISON = f"{COMPARISON_DIR}/methods_comparison.csv"
# The pages a reader opens first (rules/findings.smk).
PAGES = ["results/findings.html", "results/findings.json", "results/explorer.html"]


def all_outputs():
    """Every artifact for all models x tasks x starts x seeds, the across-seed summaries, the
    comparison across models, tasks and starts (and methods, where both run), the freeze
    interventions' artifacts (freeze_outputs, rules/freeze.smk) and the pages."""
    return (
        expand(data_path("eval_subset.json"), task=TASKS)
        + runs(f"{SEED_DIR}/{{artifact}}", artifact=THETA0_ARTIFACTS)
        + runs(theta1_path("{artifact}"), artifact=THETA1_ARTIFACTS)
        + runs(summary_path("{artifact}"), artifact=SUMMARY_ARTIFACTS)
        + [f"{COMPARISON_DIR}/{a}" for a in COMPARISON_ARTIFACTS]
        + ([METHODS_COMPARISON] if METHODS_COMPARED else [])
        + freeze_outputs()
        + PAGES
    )
