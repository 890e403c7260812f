# The results tree (docs/outputs.md), the one place that spells it: where each artifact, log and
# benchmark goes, a checkpoint's declared files, and every target of the default rule `all`.

DATA_DIR = "results/data/{task}"
SEED_DIR = "results/{model}/{task}/{start}/seed{seed}"
SUMMARY_DIR = "results/{model}/{task}/{start}/summary"
RUN_DIR = "results/{model}/{task}"  # shared by every start and seed of a model and task
COMPARISON_DIR = "results/comparison"
SEED_WILDCARDS = "{model}/{task}/{start}/seed{seed}"


def data_path(name):
    """A task's canonical data file, shared by every model, start and seed."""
    return f"{DATA_DIR}/{name}"


def seed_path(name, start="{start}"):
    """A per-seed artifact; ``start`` fixes the start for rules that make only one of them."""
    return f"{SEED_DIR}/{name}".replace("{start}", start)


def run_path(name):
    """An artifact of one model and task shared by all its starts and seeds."""
    return f"{RUN_DIR}/{name}"


def summary_path(name):
    """An across-seed artifact of one model, task and start."""
    return f"{SUMMARY_DIR}/{name}"


def log_path(rule, wildcards=SEED_WILDCARDS):
    return f"logs/{rule}/{wildcards}.log"


def bench_path(rule, wildcards=SEED_WILDCARDS):
    return f"benchmarks/{rule}/{wildcards}.tsv"


def ckpt(which, start="{start}"):
    """The declared files of a seed's checkpoint folder ckpt_<which> (the folder itself is not an
    output), named as the outputs of the job that writes it (`model`, `config`)."""
    d = seed_path(f"ckpt_{which}", start)
    return {"model": f"{d}/model.safetensors", "config": f"{d}/config.json"}


def ckpt_input(which, start="{start}", folder=None):
    """A checkpoint as input, in the one form all rules use (`**ckpt_input("init")`), named
    `<which>_model` and `<which>_config`: a script reads theta0 as input.init_model and theta1
    as input.final_model. ``folder``: a checkpoint outside the seed's own ckpt_<which> (a frozen
    run's theta1)."""
    d = folder or seed_path(f"ckpt_{which}", start)
    return {
        f"{which}_model": f"{d}/model.safetensors",
        f"{which}_config": f"{d}/config.json",
    }


def per_seed(name):
    """Input function: this run's per-seed artifact ``name``, one file per seed in SEEDS order."""

    def inputs(wildcards):
        return expand(
            seed_path(name),
            model=wildcards.model,
            task=wildcards.task,
            start=wildcards.start,
            seed=SEEDS,
        )

    return inputs


def runs(pattern, **fixed):
    """``pattern`` expanded over every model x task x start (x seed where it has {seed}) and
    over the values of ``fixed`` (other wildcards of the pattern, e.g. artifact=[...]).
    """
    dims = {"start": STARTS, "seed": SEEDS}
    dims = {k: v for k, v in dims.items() if f"{{{k}}}" in pattern}
    out = []
    for task in TASKS:  # a `checkpoints:` task runs for its own model only
        for model in TASK_MODELS[task]:
            out += expand(pattern, model=model, task=task, **dims, **fixed)
    return list(dict.fromkeys(out))


SEED_ARTIFACTS = [
    "importance_pre.jsonl",
    "importance_post.jsonl",
    "gradfisher_pre.jsonl",
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
    "ckpt_init/model.safetensors",
    "ckpt_init/config.json",
    "ckpt_final/model.safetensors",
    "ckpt_final/config.json",
]
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
# The pages a reader opens first (rules/findings.smk).
PAGES = ["results/findings.html", "results/findings.json", "results/explorer.html"]


def all_outputs():
    """Every artifact for all models x tasks x starts x seeds, the across-seed summaries, the
    comparison across models, tasks and starts, the freeze interventions' artifacts
    (freeze_outputs, rules/freeze.smk) and the pages."""
    return (
        expand(data_path("eval_subset.json"), task=TASKS)
        + runs(f"{SEED_DIR}/{{artifact}}", artifact=SEED_ARTIFACTS)
        + runs(f"{SUMMARY_DIR}/{{artifact}}", artifact=SUMMARY_ARTIFACTS)
        + [f"{COMPARISON_DIR}/{a}" for a in COMPARISON_ARTIFACTS]
        + freeze_outputs()
        + PAGES
    )
