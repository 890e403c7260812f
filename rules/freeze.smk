# Freeze interventions (`interventions:`): a second fine-tune of each seed's theta0 with one
# order's heads held at theta0, every other setting as the unconstrained run; how far the other
# heads moved; across seeds, the cost in accuracy against the random draws' band. The frozen
# theta1 is temporary (gone once its update.jsonl is written) unless
# interventions.keep_checkpoints. Each fine-tune is a GPU job of its own (no group). The orders,
# paths and functions these rules use: rules/interventions.smk.


rule finetune_frozen:
    input:
        unpack(get_freeze_scores),
        **ckpt_input("init"),
        train=data_path("train.jsonl"),
        validation=data_path("validation.jsonl"),
        selection=data_path("selection.json"),
    output:
        model=freeze_output("ckpt_final/model.safetensors"),
        config=freeze_output("ckpt_final/config.json"),
        run_config=freeze_path("run_config.json"),
    log:
        log_path("finetune_frozen", FREEZE_WILDCARDS),
    benchmark:
        bench_path("finetune_frozen", FREEZE_WILDCARDS)
    wildcard_constraints:
        task=_alternatives(FREEZE_TASKS),
        start=_alternatives(FREEZE_STARTS),
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("finetune", "threads")
    resources:
        **gpu_job("finetune", runtime=finetune_runtime),
    params:
        hparams=get_train_params,
        seed=get_seed,
        max_length=config["max_length"],
        precision=config["precision"],
        min_accuracy_gain=config["analysis"]["min_accuracy_gain"],
        freeze=get_freeze_params,
        code=package_code("finetune_frozen.py"),
    script:
        "../workflow/scripts/finetune_frozen.py"


rule update_frozen:
    input:
        **ckpt_input("init"),
        **ckpt_input("final", folder=freeze_path("ckpt_final")),
    output:
        jsonl=freeze_path("update.jsonl"),
    log:
        log_path("update_frozen", FREEZE_WILDCARDS),
    benchmark:
        bench_path("update_frozen", FREEZE_WILDCARDS)
    conda:
        "../envs/headplast.yaml"
    resources:
        mem_mb=get_resource("measure", "mem_mb"),
    params:
        code=package_code("update.py"),
    script:
        "../workflow/scripts/update.py"


rule freeze_summary:
    input:
        run_config=per_seed("run_config.json"),
        base_update=per_seed("update.jsonl"),
        frozen_run_config=frozen_per_seed("run_config.json"),
        frozen_update=frozen_per_seed("update.jsonl"),
    output:
        table=summary_path("freeze.csv"),
    log:
        log_path("freeze_summary", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        seeds=SEEDS,
        orders=FREEZE_ORDERS,
        keep_degenerate=config["analysis"]["keep_degenerate"],
        code=package_code("freeze_summary.py"),
    script:
        "../workflow/scripts/freeze_summary.py"


rule fig_freeze:
    input:
        table=summary_path("freeze.csv"),
    output:
        fig=summary_figure("fig_freeze.png", "fig_freeze", "freeze interventions"),
    log:
        log_path("fig_freeze", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("fig_freeze.py"),
    script:
        "../workflow/scripts/fig_freeze.py"
