# The freeze interventions (`interventions:`) as the config asks for them, in one place: the orders
# and the starts they run for, their paths and targets, and the functions their jobs call. Their
# rules are in rules/freeze.smk.
from headplast.pipeline.config import canonical

# The orders as wildcard values (each random draw its own order, `random_<i>`) and the starts and
# tasks they run for; none when `interventions:` is absent.
INTERVENTIONS = config.get("interventions")
FREEZE_ORDERS = []
FREEZE_STARTS = []
FREEZE_TASKS = []
if INTERVENTIONS:
    for _order in INTERVENTIONS["orders"]:
        if _order == "random":
            FREEZE_ORDERS += [f"random_{i}" for i in range(INTERVENTIONS["n_random"])]
        else:
            FREEZE_ORDERS.append(_order)
    FREEZE_STARTS = [s for s in INTERVENTIONS.get("starts", STARTS) if s in STARTS]
    _unknown = sorted(set(INTERVENTIONS.get("tasks", [])) - set(TRAINED_TASKS))
    if _unknown:
        raise WorkflowError(
            f"config key `interventions.tasks`: {', '.join(_unknown)} "
            + ("is not a task" if len(_unknown) == 1 else "are not tasks")
            + " this config fine-tunes (`tasks:` with `train:`: "
            + f"{', '.join(TRAINED_TASKS) or 'none'}); name those, or drop the key to run "
            "them for every trained task"
        )
    FREEZE_TASKS = [
        t for t in TRAINED_TASKS if t in INTERVENTIONS.get("tasks", TRAINED_TASKS)
    ]


wildcard_constraints:
    order=_alternatives(FREEZE_ORDERS),


FREEZE_WILDCARDS = f"{THETA1_WILDCARDS}/{{order}}"
FREEZE_SUMMARIES = ["freeze.csv", "fig_freeze.png"]


def freeze_path(name):
    """An artifact of one freeze order of one seed."""
    return theta1_path(f"freeze/{{order}}/{name}")


def freeze_output(name):
    """A frozen run's checkpoint file: temporary unless interventions.keep_checkpoints."""
    keep = bool(INTERVENTIONS and INTERVENTIONS.get("keep_checkpoints"))
    return freeze_path(name) if keep else temp(freeze_path(name))


def freeze_runs(pattern, **fixed):
    """``pattern`` expanded over the runs the freeze interventions cover: the models of each task
    of ``interventions.tasks`` (default: every trained task) x the starts of
    ``interventions.starts`` (x seeds and orders where it has them).
    """
    dims = {"start": FREEZE_STARTS, "seed": SEEDS, "order": FREEZE_ORDERS}
    dims["method"] = [METHOD_DIR[m] for m in METHODS]
    dims = {k: v for k, v in dims.items() if f"{{{k}}}" in pattern and k not in fixed}
    out = []
    for task in FREEZE_TASKS:
        for model in TASK_MODELS[task]:
            out += expand(pattern, model=model, task=task, **dims, **fixed)
    return list(dict.fromkeys(out))


def freeze_outputs():
    """The freeze interventions' artifacts: per seed and order of the chosen starts, the frozen
    run's record and update; per run, freeze.csv and its figure."""
    return freeze_runs(
        freeze_path("{artifact}"), artifact=["run_config.json", "update.jsonl"]
    ) + freeze_runs(summary_path("{artifact}"), artifact=FREEZE_SUMMARIES)


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
    name = FREEZE_SCORES[wildcards.order][0]
    # scores measured on theta1 (Urel, U) are the same method's; those on theta0 are shared
    path = theta1_path(name) if name in THETA1_ARTIFACTS else seed_path(name)
    return {"scores": path}


def frozen_per_seed(name):
    """Input function: ``freeze/<order>/name`` of every order (order-major) and seed."""

    def inputs(wildcards):
        w = dict(wildcards.items())
        pattern = freeze_path(name)
        return [
            pattern.format(**w, order=o, seed=s) for o in FREEZE_ORDERS for s in SEEDS
        ]

    return inputs
