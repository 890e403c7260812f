# Per task and seed: the joined table, its statistics, counter-examples and figures. `heads`
# joins the measures, so it is in their cluster job (MEASURE_GROUP) and connects them.


rule heads:
    input:
        importance_pre=seed_path("importance_pre.jsonl"),
        importance_post=theta1_path("importance_post.jsonl"),
        gradfisher_pre=seed_path("gradfisher_pre.jsonl"),
        update_jsonl=theta1_path("update.jsonl"),
        function_change=theta1_path("function_change.jsonl"),
    output:
        heads=theta1_path("heads.csv"),
    log:
        log_path("heads", THETA1_WILDCARDS),
    group:
        MEASURE_GROUP
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("heads.py"),
    script:
        "../workflow/scripts/heads.py"


rule stats:
    input:
        heads=theta1_path("heads.csv"),
        importance_pre=seed_path("importance_pre.npz"),
        importance_post=theta1_path("importance_post.npz"),
        gradfisher_pre=seed_path("gradfisher_pre.npz"),
        pruning=theta1_path("pruning.jsonl"),
        eval_subset=data_path("eval_subset.json"),
    output:
        stats=theta1_path("stats.json"),
    log:
        log_path("stats", THETA1_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        top_k=config["analysis"]["top_k"],
        n_permutations=config["analysis"]["n_permutations"],
        n_bootstrap=config["analysis"]["n_bootstrap"],
        seed=config["analysis"]["seed"],
        split_half_repeats=config["analysis"]["split_half_repeats"],
        code=package_code("stats.py"),
    script:
        "../workflow/scripts/stats.py"


rule cases:
    input:
        heads=theta1_path("heads.csv"),
    output:
        cases=theta1_path("cases.json"),
    log:
        log_path("cases", THETA1_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        top_quantile=config["analysis"]["top_quantile"],
        bottom_quantile=config["analysis"]["bottom_quantile"],
        code=package_code("cases.py"),
    script:
        "../workflow/scripts/cases.py"


rule fig_I_vs_U:
    input:
        heads=theta1_path("heads.csv"),
        cases=theta1_path("cases.json"),
    output:
        fig=seed_figure("fig_I_vs_U.png", "fig_I_vs_U", "I_pre vs Urel"),
    log:
        log_path("fig_I_vs_U", THETA1_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        x="I_pre",
        y="Urel",
        code=package_code("fig_scatter.py"),
    script:
        "../workflow/scripts/fig_scatter.py"


# The same scatter with the gate gradient's G on the y axis.
use rule fig_I_vs_U as fig_I_vs_G with:
    output:
        fig=seed_figure("fig_I_vs_G.png", "fig_I_vs_G", "I_pre vs G"),
    log:
        log_path("fig_I_vs_G", THETA1_WILDCARDS),
    params:
        y="G",


rule fig_stats:
    input:
        stats=theta1_path("stats.json"),
    output:
        fig=seed_figure("fig_stats.png", "fig_stats", "rank statistics"),
    log:
        log_path("fig_stats", THETA1_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("fig_stats.py"),
    script:
        "../workflow/scripts/fig_stats.py"


rule fig_heatmaps:
    input:
        heads=theta1_path("heads.csv"),
    output:
        fig=seed_figure("fig_heatmaps.png", "fig_heatmaps", "layer x head heatmaps"),
    log:
        log_path("fig_heatmaps", THETA1_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("fig_heatmaps.py"),
    script:
        "../workflow/scripts/fig_heatmaps.py"


rule fig_pruning:
    input:
        pruning=theta1_path("pruning.jsonl"),
    output:
        fig=seed_figure("fig_pruning.png", "fig_pruning", "pruning curves"),
    log:
        log_path("fig_pruning", THETA1_WILDCARDS),
    conda:
        "../envs/headplast.yaml"
    params:
        code=package_code("fig_pruning.py"),
    script:
        "../workflow/scripts/fig_pruning.py"
