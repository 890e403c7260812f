rule synthetic_nli:
    output:
        train="results/{task}/synthetic/train.jsonl",
        validation="results/{task}/synthetic/validation.jsonl",
    log:
        "logs/synthetic_nli/{task}.log",
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
        train="results/{task}/data/train.jsonl",
        validation="results/{task}/data/validation.jsonl",
        meta="results/{task}/data/meta.json",
    log:
        "logs/prepare_data/{task}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        spec=get_data_spec,
    script:
        "../workflow/scripts/prepare_data.py"


rule eval_subset:
    input:
        validation="results/{task}/data/validation.jsonl",
    output:
        subset="results/{task}/eval_subset.json",
    log:
        "logs/eval_subset/{task}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        size=config["eval_subset"]["size"],
        seed=config["eval_subset"]["seed"],
    script:
        "../workflow/scripts/eval_subset.py"
