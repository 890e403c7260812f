rule synthetic_nli:
    output:
        train=data_path("synthetic/train.jsonl"),
        validation=data_path("synthetic/validation.jsonl"),
    log:
        log_path("synthetic_nli", "{task}"),
    conda:
        "../envs/headplast.yaml"
    params:
        spec=get_synthetic_params,
    script:
        "../workflow/scripts/synthetic_nli.py"


rule prepare_data:
    input:
        get_data_inputs,
    output:
        train=data_path("train.jsonl"),
        validation=data_path("validation.jsonl"),
        meta=data_path("meta.json"),
    log:
        log_path("prepare_data", "{task}"),
    conda:
        "../envs/headplast.yaml"
    params:
        spec=get_data_spec,
    script:
        "../workflow/scripts/prepare_data.py"


rule eval_subset:
    input:
        validation=data_path("validation.jsonl"),
    output:
        subset=data_path("eval_subset.json"),
    log:
        log_path("eval_subset", "{task}"),
    conda:
        "../envs/headplast.yaml"
    params:
        size=config["eval_subset"]["size"],
        seed=config["eval_subset"]["seed"],
    script:
        "../workflow/scripts/eval_subset.py"
