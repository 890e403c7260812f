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
        code=package_code("synthetic_nli.py"),
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
        code=package_code("prepare_data.py"),
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
        code=package_code("eval_subset.py"),
    script:
        "../workflow/scripts/eval_subset.py"


# The rows that choose theta1 and the probe's epoch (`selection:`), drawn once per task: the same
# rows for every model, start, seed and freeze run; with split train they leave the training data.
rule selection_split:
    input:
        train=data_path("train.jsonl"),
        validation=data_path("validation.jsonl"),
    output:
        selection=data_path("selection.json"),
    log:
        log_path("selection_split", "{task}"),
    conda:
        "../envs/headplast.yaml"
    params:
        spec=get_selection_params,
        code=package_code("selection_split.py"),
    script:
        "../workflow/scripts/selection_split.py"
