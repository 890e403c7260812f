rule init_checkpoint:
    input:
        get_model_files,
    output:
        **ckpt("init"),
    log:
        "logs/init_checkpoint/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/init_checkpoint/{task}/seed{seed}.tsv"
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("init", "threads")
    resources:
        gpu=1,
        mem_mb=get_resource("init", "mem_mb"),
        runtime=get_resource("init", "runtime"),
    params:
        model=MODEL,
        num_labels=get_num_labels,
        seed=get_seed,
        trust_remote_code=config["model"]["trust_remote_code"],
    script:
        "../workflow/scripts/init_checkpoint.py"


# trainer_out/ (resumable Trainer checkpoints) lives in the seed folder but is not declared, so
# Snakemake does not delete it before a rerun and an interrupted job resumes.
rule finetune:
    input:
        init_model=ckpt("init")["model"],
        init_config=ckpt("init")["config"],
        train="results/{task}/data/train.jsonl",
        validation="results/{task}/data/validation.jsonl",
    output:
        **ckpt("final"),
        run_config="results/{task}/seed{seed}/run_config.json",
    log:
        "logs/finetune/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune/{task}/seed{seed}.tsv"
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("finetune", "threads")
    resources:
        gpu=1,
        mem_mb=get_resource("finetune", "mem_mb"),
        runtime=finetune_runtime,
    params:
        hparams=get_train_params,
        seed=get_seed,
        max_length=config["max_length"],
        precision=config["precision"],
    script:
        "../workflow/scripts/finetune.py"
