# The pages a reader opens first: findings.html states what was found (numbers and the sentences
# generated from them, docs/methods.md "Findings"); explorer.html shows every head's measures.


rule findings:
    input:
        pair_stats=runs(summary_path("pair_stats.json"), method=PAGE_METHOD),
        pruning_auc=runs(summary_path("pruning_auc.json"), method=PAGE_METHOD),
        stats=runs(theta1_path("stats.json"), method=PAGE_METHOD),
        run_config=runs(theta1_path("run_config.json"), method=PAGE_METHOD),
        freeze=freeze_runs(summary_path("freeze.csv"), method=PAGE_METHOD),
        methods=[METHODS_COMPARISON] if METHODS_COMPARED else [],
    output:
        html=report_item(
            "results/findings.html",
            "findings",
            {"page": "findings (read first)"},
            category="findings",
        ),
        json="results/findings.json",
    log:
        log_path("findings", "all"),
    conda:
        "../envs/headplast.yaml"
    params:
        runs=runs("{model}/{task}/{start}"),
        seed_runs=runs("{model}/{task}/{start}/{seed}"),
        freeze_runs=freeze_runs("{model}/{task}/{start}"),
        about={"seeds": SEEDS, "eval_subset": config["eval_subset"]["size"]},
        code=package_code("findings.py"),
    script:
        "../workflow/scripts/findings.py"


rule explorer:
    input:
        heads_mean=runs(summary_path("heads_mean.csv"), method=PAGE_METHOD),
    output:
        html=report_item(
            "results/explorer.html",
            "explorer",
            {"page": "heads explorer"},
            category="findings",
        ),
    log:
        log_path("explorer", "all"),
    conda:
        "../envs/headplast.yaml"
    params:
        runs=runs("{model}/{task}/{start}"),
        code=package_code("explorer.py"),
    script:
        "../workflow/scripts/explorer.py"
