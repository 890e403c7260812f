# theta0 of the `random` start: the pre-trained encoder plus the seed's freshly initialised
# classifier head (other starts derive their theta0 from it).
rule init_checkpoint:
    input:
        get_model_files,
        meta=data_path("meta.json"),
    output:
        **ckpt("init", start="random"),
    log:
        log_path("init_checkpoint", "{model}/{task}/random/seed{seed}"),
    benchmark:
        bench_path("init_checkpoint", "{model}/{task}/random/seed{seed}")
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("init", "threads")
    resources:
        **gpu_job("init"),
    params:
        model=get_model_path,
        num_labels=get_num_labels,
        seed=get_seed,
        trust_remote_code=get_trust_remote_code,
        max_length=config["max_length"],
        code=package_code("init_checkpoint.py"),
    script:
        "../workflow/scripts/init_checkpoint.py"


# The frozen encoder's pooled features of the train and validation splits, once per model
# and task: every seed's theta0 holds the same pre-trained encoder (the file carries its
# fingerprint; a probe of another encoder is refused), so every seed's probe fits on them.
rule probe_features:
    input:
        unpack(shared_encoder_source),
        train=data_path("train.jsonl"),
        validation=data_path("validation.jsonl"),
        selection=data_path("selection.json"),
    output:
        features=model_task_path("probe_features.safetensors"),
    log:
        log_path("probe_features", "{model}/{task}"),
    benchmark:
        bench_path("probe_features", "{model}/{task}")
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("init", "threads")
    resources:
        **gpu_job("init"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        max_train_samples=config["probe"]["max_train_samples"],
        code=package_code("probe_features.py"),
    script:
        "../workflow/scripts/probe_features.py"


# theta0 of the `probe` start: the same seed's random theta0 with its head (pooler and classifier)
# fitted on the frozen encoder's features (LP-FT), early-stopped on a held-out part of the train
# split; only the `probe:` block's values are params, so changing them reruns the probe start alone.
rule probe_checkpoint:
    input:
        **ckpt_input("init", start="random"),
        features=model_task_path("probe_features.safetensors"),
    output:
        **ckpt("init", start="probe"),
        record=seed_path("probe.json", start="probe"),
    log:
        log_path("probe_checkpoint", "{model}/{task}/probe/seed{seed}"),
    benchmark:
        bench_path("probe_checkpoint", "{model}/{task}/probe/seed{seed}")
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("init", "threads")
    resources:
        **gpu_job("init"),
    params:
        hparams=get_probe_params,
        seed=get_seed,
        code=package_code("probe_checkpoint.py"),
    script:
        "../workflow/scripts/probe_checkpoint.py"


# trainer_out/ (resumable Trainer checkpoints) lives in the seed folder but is not declared, so
# Snakemake does not delete it before a rerun and an interrupted job resumes. With
# resources.finetune.gpus = N > 1 the job asks for N GPUs and trains data-parallel (torchrun).
rule finetune:
    input:
        unpack(get_start_inputs),
        **ckpt_input("init"),
        train=data_path("train.jsonl"),
        validation=data_path("validation.jsonl"),
        selection=data_path("selection.json"),
    output:
        **ckpt("final"),
        run_config=theta1_path("run_config.json"),
    log:
        log_path("finetune", THETA1_WILDCARDS),
    benchmark:
        bench_path("finetune", THETA1_WILDCARDS)
    wildcard_constraints:
        task=_alternatives(TRAINED_TASKS),
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("finetune", "threads")
    resources:
        **gpu_job("finetune", gpu=get_finetune_gpus, runtime=finetune_runtime),
    params:
        hparams=get_train_params,
        seed=get_seed,
        max_length=config["max_length"],
        precision=config["precision"],
        min_accuracy_gain=config["analysis"]["min_accuracy_gain"],
        code=package_code("finetune.py"),
    script:
        "../workflow/scripts/finetune.py"


# theta1 of a task with `checkpoints:`: the given fine-tune, checked against theta0 (same
# network) and its classifier rows put in the task's label order; it replaces finetune there.
rule import_final:
    input:
        **ckpt_input("init"),
        meta=data_path("meta.json"),
        validation=data_path("validation.jsonl"),
        source=get_checkpoint_files,
    output:
        **ckpt("final"),
        run_config=theta1_path("run_config.json"),
    log:
        log_path("import_final", THETA1_WILDCARDS),
    benchmark:
        bench_path("import_final", THETA1_WILDCARDS)
    wildcard_constraints:
        task=_alternatives(CHECKPOINT_TASKS),
        method="(?:)",  # an imported fine-tune is measured once, as `full` (the empty value)
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("init", "threads")
    resources:
        **gpu_job("init"),
    params:
        source=get_checkpoint_source,
        label_map=get_label_map,
        trust_remote_code=get_trust_remote_code,
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        code=package_code("import_final.py"),
    script:
        "../workflow/scripts/import_final.py"
