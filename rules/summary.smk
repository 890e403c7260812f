# Per model, task and start across seeds; across tasks, starts and methods.


rule summary_seeds:
    input:
        heads=per_seed("heads.csv"),
        stats=per_seed("stats.json"),
        cases=per_seed("cases.json"),
        run_config=per_seed("run_config.json"),
    output:
        heads_mean=summary_path("heads_mean.csv"),
        stability=summary_path("stability.json"),
        pair_stats=summary_path("pair_stats.json"),
        case_counts=summary_path("case_counts.csv"),
    log:
        log_path("summary_seeds", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        seeds=SEEDS,
        keep_degenerate=config["analysis"]["keep_degenerate"],
        n_permutations=config["analysis"]["n_permutations"],
        seed=config["analysis"]["seed"],
        code=package_code("summary_seeds.py"),
    script:
        "../workflow/scripts/summary_seeds.py"


rule fig_summary:
    input:
        heads_mean=summary_path("heads_mean.csv"),
        stability=summary_path("stability.json"),
        pair_stats=summary_path("pair_stats.json"),
    output:
        heatmaps=summary_figure(
            "fig_heatmaps_mean.png",
            "fig_heatmaps",
            "layer x head heatmaps (seed mean)",
        ),
        stability_fig=summary_figure(
            "fig_rank_stability.png",
            "fig_rank_stability",
            "rank stability across seeds",
        ),
        scatter_I_vs_U=summary_figure(
            "fig_I_vs_U_mean.png", "fig_seed_mean_scatter", "I_pre vs Urel (seed mean)"
        ),
        scatter_I_vs_G=summary_figure(
            "fig_I_vs_G_mean.png", "fig_seed_mean_scatter", "I_pre vs G (seed mean)"
        ),
    log:
        log_path("fig_summary", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("fig_summary.py"),
    script:
        "../workflow/scripts/fig_summary.py"


rule fig_training:
    input:
        run_config=per_seed("run_config.json"),
    output:
        fig=summary_figure("fig_training.png", "fig_training", "fine-tuning curves"),
    log:
        log_path("fig_training", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        seeds=SEEDS,
        code=package_code("fig_training.py"),
    script:
        "../workflow/scripts/fig_training.py"


rule summary_pruning:
    input:
        pruning=per_seed("pruning.jsonl"),
        run_config=per_seed("run_config.json"),
    output:
        curves=summary_path("pruning_mean.csv"),
        auc=summary_path("pruning_auc.json"),
    log:
        log_path("summary_pruning", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        seeds=SEEDS,
        keep_degenerate=config["analysis"]["keep_degenerate"],
        code=package_code("summary_pruning.py"),
    script:
        "../workflow/scripts/summary_pruning.py"


rule fig_pruning_mean:
    input:
        curves=summary_path("pruning_mean.csv"),
        auc=summary_path("pruning_auc.json"),
    output:
        fig=summary_figure(
            "fig_pruning_mean.png", "fig_pruning_mean", "pruning curves (seed mean)"
        ),
    log:
        log_path("fig_pruning_mean", SUMMARY_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("fig_pruning_mean.py"),
    script:
        "../workflow/scripts/fig_pruning_mean.py"


rule compare_tasks:
    input:
        heads_mean=runs(summary_path("heads_mean.csv"), method=PAGE_METHOD),
    output:
        table=f"{COMPARISON_DIR}/tasks_comparison.csv",
    log:
        log_path("compare_tasks", "all"),
    conda:
        "../envs/headplast.yaml"
    params:
        runs=runs(SUMMARY_WILDCARDS),
        top_k=config["analysis"]["top_k"],
        code=package_code("compare_tasks.py"),
    script:
        "../workflow/scripts/compare_tasks.py"


rule compare_starts:
    input:
        stability=runs(summary_path("stability.json"), method=PAGE_METHOD),
        pair_stats=runs(summary_path("pair_stats.json"), method=PAGE_METHOD),
    output:
        table=f"{COMPARISON_DIR}/starts_comparison.csv",
        fig=report_item(
            f"{COMPARISON_DIR}/fig_starts.png",
            "fig_starts",
            {"figure": "random vs probe start"},
            category="comparison",
        ),
    log:
        log_path("compare_starts", "all"),
    conda:
        "../envs/headplast.yaml"
    params:
        runs=runs(SUMMARY_WILDCARDS),
        code=package_code("compare_starts.py"),
    script:
        "../workflow/scripts/compare_starts.py"


rule compare_methods:
    input:
        heads_full=compared_runs(theta1_path("heads.csv"), method=METHOD_DIR["full"]),
        heads_lora=compared_runs(theta1_path("heads.csv"), method=METHOD_DIR["lora"]),
        pair_stats_full=compared_runs(
            summary_path("pair_stats.json"), method=METHOD_DIR["full"]
        ),
        pair_stats_lora=compared_runs(
            summary_path("pair_stats.json"), method=METHOD_DIR["lora"]
        ),
    output:
        table=METHODS_COMPARISON,
    log:
        log_path("compare_methods", "all"),
    conda:
        "../envs/headplast.yaml"
    params:
        runs=compared_runs("{model}/{task}/{start}"),
        seed_runs=compared_runs("{model}/{task}/{start}/{seed}"),
        top_k=config["analysis"]["top_k"],
        n_permutations=config["analysis"]["n_permutations"],
        seed=config["analysis"]["seed"],
        code=package_code("compare_methods.py"),
    script:
        "../workflow/scripts/compare_methods.py"
