# Per-head measures. The eval subset is shared by all seeds of a task; the measures read only
# the hyper-parameters they use, so changing the subset reruns them but not training.


rule importance_pre:
    input:
        **ckpt("init"),
        validation="results/{task}/data/validation.jsonl",
        subset="results/{task}/eval_subset.json",
    output:
        jsonl="results/{task}/seed{seed}/importance_pre.jsonl",
    log:
        "logs/importance_pre/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/importance_pre/{task}/seed{seed}.tsv"
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
        validation="results/{task}/data/validation.jsonl",
        subset="results/{task}/eval_subset.json",
    output:
        jsonl="results/{task}/seed{seed}/importance_post.jsonl",
    log:
        "logs/importance_post/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/importance_post/{task}/seed{seed}.tsv"


rule gradfisher_pre:
    input:
        **ckpt("init"),
        validation="results/{task}/data/validation.jsonl",
        subset="results/{task}/eval_subset.json",
    output:
        jsonl="results/{task}/seed{seed}/gradfisher_pre.jsonl",
    log:
        "logs/gradfisher_pre/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/gradfisher_pre/{task}/seed{seed}.tsv"
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
        jsonl="results/{task}/seed{seed}/update.jsonl",
    log:
        "logs/update/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/update/{task}/seed{seed}.tsv"
    conda:
        "../envs/headplast.yaml"
    resources:
        mem_mb=get_resource("measure", "mem_mb"),
    script:
        "../workflow/scripts/update.py"
