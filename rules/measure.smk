# Per-head measures. The eval subset is shared by all seeds of a task; the measures read only
# the hyper-parameters they use, so changing the subset reruns them but not training.


rule importance_pre:
    input:
        **ckpt("init"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=seed_path("importance_pre.jsonl"),
    log:
        log_path("importance_pre"),
    benchmark:
        bench_path("importance_pre")
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("measure", "threads")
    resources:
        gpu=1,
        mem_mb=get_resource("measure", "mem_mb"),
        runtime=get_resource("measure", "runtime"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        sweep_tokens=config["measure"]["sweep_tokens"],
        precision=config["precision"],
    script:
        "../workflow/scripts/importance.py"


use rule importance_pre as importance_post with:
    input:
        **ckpt("final"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=seed_path("importance_post.jsonl"),
    log:
        log_path("importance_post"),
    benchmark:
        bench_path("importance_post")


rule gradfisher_pre:
    input:
        **ckpt("init"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=seed_path("gradfisher_pre.jsonl"),
    log:
        log_path("gradfisher_pre"),
    benchmark:
        bench_path("gradfisher_pre")
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("measure", "threads")
    resources:
        gpu=1,
        mem_mb=get_resource("measure", "mem_mb"),
        runtime=get_resource("measure", "runtime"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        precision=config["precision"],
        eps=config["measure"]["fisher_eps"],
    script:
        "../workflow/scripts/gradfisher.py"


rule update:
    input:
        init_model=ckpt("init")["model"],
        init_config=ckpt("init")["config"],
        final_model=ckpt("final")["model"],
        final_config=ckpt("final")["config"],
    output:
        jsonl=seed_path("update.jsonl"),
    log:
        log_path("update"),
    benchmark:
        bench_path("update")
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    resources:
        mem_mb=get_resource("measure", "mem_mb"),
    script:
        "../workflow/scripts/update.py"
