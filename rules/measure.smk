# Per-head measures. The eval subset is shared by all seeds of a task; the measures read only
# the hyper-parameters they use, so changing the subset reruns them but not training. They run in
# measure.precision (fp32, TF32 off, by default), not in training's precision. Each also writes
# its per-example values (.npz), from which `stats` computes the split-half reliabilities.


rule importance_pre:
    input:
        **ckpt_input("init"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=seed_path("importance_pre.jsonl"),
        per_example=seed_path("importance_pre.npz"),
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
        **gpu_job("measure"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        sweep_tokens=config["measure"]["sweep_tokens"],
        precision=config["measure"]["precision"],
        code=package_code("importance.py"),
    script:
        "../workflow/scripts/importance.py"


use rule importance_pre as importance_post with:
    input:
        **ckpt_input("final"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=theta1_path("importance_post.jsonl"),
        per_example=theta1_path("importance_post.npz"),
    log:
        log_path("importance_post", THETA1_WILDCARDS),
    benchmark:
        bench_path("importance_post", THETA1_WILDCARDS)


rule gradfisher_pre:
    input:
        **ckpt_input("init"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=seed_path("gradfisher_pre.jsonl"),
        per_example=seed_path("gradfisher_pre.npz"),
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
        **gpu_job("measure"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        precision=config["measure"]["precision"],
        eps=config["measure"]["fisher_eps"],
        code=package_code("gradfisher.py"),
    script:
        "../workflow/scripts/gradfisher.py"


rule update:
    input:
        **ckpt_input("init"),
        **ckpt_input("final"),
    output:
        jsonl=theta1_path("update.jsonl"),
    log:
        log_path("update", THETA1_WILDCARDS),
    benchmark:
        bench_path("update", THETA1_WILDCARDS)
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    resources:
        mem_mb=get_resource("measure", "mem_mb"),
    params:
        code=package_code("update.py"),
    script:
        "../workflow/scripts/update.py"


# The shared theta0 sweep (measure.shared_theta0_sweep): every theta0 of a model holds the same
# pre-trained encoder, so the ablation passes run once per model and task (on the first seed's
# random theta0) and keep the last hidden state of each, pooled as the head pools it (first token,
# last non-padding token or mean); each seed's and start's importance_pre applies its own head to
# them, equal to its full sweep.
if SHARED_THETA0_SWEEP:

    ruleorder: importance_pre_shared > importance_pre

    rule theta0_sweep:
        input:
            unpack(shared_encoder_source),
            validation=data_path("validation.jsonl"),
            subset=data_path("eval_subset.json"),
        output:
            sweep=model_task_path("theta0_sweep.safetensors"),
        log:
            log_path("theta0_sweep", "{model}/{task}"),
        benchmark:
            bench_path("theta0_sweep", "{model}/{task}")
        conda:
            "../envs/headplast.yaml"
        threads: get_resource("measure", "threads")
        resources:
            **gpu_job("measure"),
        params:
            max_length=config["max_length"],
            tokens_per_batch=config["measure"]["tokens_per_batch"],
            sweep_tokens=config["measure"]["sweep_tokens"],
            precision=config["measure"]["precision"],
            code=package_code("theta0_sweep.py"),
        script:
            "../workflow/scripts/theta0_sweep.py"

    rule importance_pre_shared:
        input:
            **ckpt_input("init"),
            sweep=model_task_path("theta0_sweep.safetensors"),
        output:
            jsonl=seed_path("importance_pre.jsonl"),
            per_example=seed_path("importance_pre.npz"),
        log:
            log_path("importance_pre_shared"),
        benchmark:
            bench_path("importance_pre_shared")
        group:
            MEASURE_GROUP
        conda:
            "../envs/headplast.yaml"
        threads: get_resource("measure", "threads")
        resources:
            **gpu_job("measure", runtime=None),  # no runtime of its own: the default one
        params:
            code=package_code("importance_shared.py"),
        script:
            "../workflow/scripts/importance_shared.py"


# Pruning curves at theta1 (docs/methods.md, "Pruning curves"): the example-based orders are
# cross-fitted over two halves of the eval subset from the measures' per-example .npz sidecars
# (no second sweep); the in-sample curves come along for comparison.
rule pruning:
    input:
        **ckpt_input("final"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
        importance_pre=seed_path("importance_pre.jsonl"),
        importance_post=theta1_path("importance_post.jsonl"),
        gradfisher_pre=seed_path("gradfisher_pre.jsonl"),
        update_jsonl=theta1_path("update.jsonl"),
        importance_pre_npz=seed_path("importance_pre.npz"),
        importance_post_npz=theta1_path("importance_post.npz"),
        gradfisher_pre_npz=seed_path("gradfisher_pre.npz"),
    output:
        jsonl=theta1_path("pruning.jsonl"),
    log:
        log_path("pruning", THETA1_WILDCARDS),
    benchmark:
        bench_path("pruning", THETA1_WILDCARDS)
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("measure", "threads")
    resources:
        **gpu_job("measure"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        sweep_tokens=config["measure"]["sweep_tokens"],
        precision=config["measure"]["precision"],
        fisher_eps=config["measure"]["fisher_eps"],
        step_fraction=config["pruning"]["step_fraction"],
        n_random_orders=config["pruning"]["n_random_orders"],
        seed=config["pruning"]["seed"],
        code=package_code("pruning.py"),
    script:
        "../workflow/scripts/pruning.py"


rule function_change:
    input:
        **ckpt_input("init"),
        **ckpt_input("final"),
        validation=data_path("validation.jsonl"),
        subset=data_path("eval_subset.json"),
    output:
        jsonl=theta1_path("function_change.jsonl"),
    log:
        log_path("function_change", THETA1_WILDCARDS),
    benchmark:
        bench_path("function_change", THETA1_WILDCARDS)
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    threads: get_resource("measure", "threads")
    resources:
        **gpu_job("measure"),
    params:
        max_length=config["max_length"],
        tokens_per_batch=config["measure"]["tokens_per_batch"],
        precision=config["measure"]["precision"],
        code=package_code("function_change.py"),
    script:
        "../workflow/scripts/function_change.py"
