# Per task and seed: the joined table, its statistics, counter-examples and figures.


rule heads:
    input:
        importance_pre="results/{task}/seed{seed}/importance_pre.jsonl",
        importance_post="results/{task}/seed{seed}/importance_post.jsonl",
        gradfisher_pre="results/{task}/seed{seed}/gradfisher_pre.jsonl",
        update_jsonl="results/{task}/seed{seed}/update.jsonl",
    output:
        heads="results/{task}/seed{seed}/heads.csv",
    log:
        "logs/heads/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    script:
        "../workflow/scripts/heads.py"


rule stats:
    input:
        heads="results/{task}/seed{seed}/heads.csv",
    output:
        stats="results/{task}/seed{seed}/stats.json",
    log:
        "logs/stats/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        top_k=config["analysis"]["top_k"],
        n_permutations=config["analysis"]["n_permutations"],
        n_bootstrap=config["analysis"]["n_bootstrap"],
        seed=config["analysis"]["seed"],
    script:
        "../workflow/scripts/stats.py"


rule cases:
    input:
        heads="results/{task}/seed{seed}/heads.csv",
    output:
        cases="results/{task}/seed{seed}/cases.json",
    log:
        "logs/cases/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        top_quantile=config["analysis"]["top_quantile"],
        bottom_quantile=config["analysis"]["bottom_quantile"],
    script:
        "../workflow/scripts/cases.py"


rule fig_I_vs_U:
    input:
        heads="results/{task}/seed{seed}/heads.csv",
        cases="results/{task}/seed{seed}/cases.json",
    output:
        fig=report(
            "results/{task}/seed{seed}/fig_I_vs_U.png",
            caption="../workflow/report/fig_I_vs_U.rst",
            category="{task}",
            subcategory="seed {seed}",
            labels={"figure": "I_pre vs Urel"},
        ),
    log:
        "logs/fig_I_vs_U/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        x="I_pre",
        y="Urel",
    script:
        "../workflow/scripts/fig_scatter.py"


rule fig_I_vs_G:
    input:
        heads="results/{task}/seed{seed}/heads.csv",
        cases="results/{task}/seed{seed}/cases.json",
    output:
        fig=report(
            "results/{task}/seed{seed}/fig_I_vs_G.png",
            caption="../workflow/report/fig_I_vs_G.rst",
            category="{task}",
            subcategory="seed {seed}",
            labels={"figure": "I_pre vs G"},
        ),
    log:
        "logs/fig_I_vs_G/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    params:
        x="I_pre",
        y="G",
    script:
        "../workflow/scripts/fig_scatter.py"


rule fig_stats:
    input:
        stats="results/{task}/seed{seed}/stats.json",
    output:
        fig=report(
            "results/{task}/seed{seed}/fig_stats.png",
            caption="../workflow/report/fig_stats.rst",
            category="{task}",
            subcategory="seed {seed}",
            labels={"figure": "rank statistics"},
        ),
    log:
        "logs/fig_stats/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    script:
        "../workflow/scripts/fig_stats.py"


rule fig_heatmaps:
    input:
        heads="results/{task}/seed{seed}/heads.csv",
    output:
        fig=report(
            "results/{task}/seed{seed}/fig_heatmaps.png",
            caption="../workflow/report/fig_heatmaps.rst",
            category="{task}",
            subcategory="seed {seed}",
            labels={"figure": "layer x head heatmaps"},
        ),
    log:
        "logs/fig_heatmaps/{task}/seed{seed}.log",
    conda:
        "../envs/headplast.yaml"
    script:
        "../workflow/scripts/fig_heatmaps.py"
