# Per task across seeds, and across tasks.


rule summary_seeds:
    input:
        heads=per_seed("results/{task}/seed{seed}/heads.csv"),
        stats=per_seed("results/{task}/seed{seed}/stats.json"),
        cases=per_seed("results/{task}/seed{seed}/cases.json"),
    output:
        heads_mean="results/{task}/summary/heads_mean.csv",
        stability="results/{task}/summary/stability.json",
        pair_stats="results/{task}/summary/pair_stats.json",
        case_counts="results/{task}/summary/case_counts.csv",
    log:
        "logs/summary_seeds/{task}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        seeds=SEEDS,
    script:
        "../workflow/scripts/summary_seeds.py"


rule fig_summary:
    input:
        heads_mean="results/{task}/summary/heads_mean.csv",
        stability="results/{task}/summary/stability.json",
    output:
        heatmaps=report(
            "results/{task}/summary/fig_heatmaps_mean.png",
            caption="../workflow/report/fig_heatmaps.rst",
            category="{task}",
            subcategory="seed mean",
            labels={"figure": "layer x head heatmaps (seed mean)"},
        ),
        stability_fig=report(
            "results/{task}/summary/fig_rank_stability.png",
            caption="../workflow/report/fig_rank_stability.rst",
            category="{task}",
            subcategory="seed mean",
            labels={"figure": "rank stability across seeds"},
        ),
        scatter_I_vs_U=report(
            "results/{task}/summary/fig_I_vs_U_mean.png",
            caption="../workflow/report/fig_seed_mean_scatter.rst",
            category="{task}",
            subcategory="seed mean",
            labels={"figure": "I_pre vs Urel (seed mean)"},
        ),
        scatter_I_vs_G=report(
            "results/{task}/summary/fig_I_vs_G_mean.png",
            caption="../workflow/report/fig_seed_mean_scatter.rst",
            category="{task}",
            subcategory="seed mean",
            labels={"figure": "I_pre vs G (seed mean)"},
        ),
    log:
        "logs/fig_summary/{task}.log",
    conda:
        "../envs/headplast.yaml"
    script:
        "../workflow/scripts/fig_summary.py"


rule compare_tasks:
    input:
        heads_mean=expand("results/{task}/summary/heads_mean.csv", task=TASKS),
    output:
        table="results/tasks_comparison.csv",
    log:
        "logs/compare_tasks/all.log",
    conda:
        "../envs/headplast.yaml"
    params:
        tasks=TASKS,
        top_k=config["analysis"]["top_k"],
    script:
        "../workflow/scripts/compare_tasks.py"
