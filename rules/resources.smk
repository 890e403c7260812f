# What a job asks of the machine or the cluster: threads, GPUs, memory and run time from the
# config's `resources:` block, and the group that makes one seed's measures one cluster job.


def get_resource(stage, key):
    """resources.<stage>.<key> of the config (stage: init, finetune or measure)."""
    return config["resources"][stage][key]


def gpu_job(stage, **changes):
    """What a GPU job of ``stage`` asks for, unpacked into `resources` as `**gpu_job("measure")`
    beside `threads` = get_resource(stage, "threads"): one GPU (`gpu`, the local cap and
    SLURM's --gpus), and mem_mb and runtime (minutes) from the config's resources.<stage>.
    ``changes`` replace one of them (a value or a function of the job, as Snakemake takes them)
    or, given as None, leave it out."""
    resources = {
        "gpu": 1,
        "mem_mb": get_resource(stage, "mem_mb"),
        "runtime": get_resource(stage, "runtime"),
        **changes,
    }
    return {k: v for k, v in resources.items() if v is not None}


def get_finetune_gpus(wildcards):
    """GPUs of one finetune job (resources.finetune.gpus); N > 1 runs data-parallel."""
    return get_resource("finetune", "gpus")


def finetune_runtime(wildcards, attempt):
    """Minutes; each retry gets proportionally more time (a preempted or slow job)."""
    return get_resource("finetune", "runtime") * attempt


# The per-seed measuring rules of one (model, task, start, seed) are one cluster job on one GPU:
# every rule in this group that reads the same seed's checkpoints is connected through the
# `heads` join, so Snakemake submits them together (profiles/slurm scopes `gpu` per job, capped
# at 1, so they run one after the other inside it). Local runs ignore groups.
MEASURE_GROUP = "measure"
