# How an output is filed in the Snakemake report (`snakemake --report`): its caption from
# workflow/report/, the category (the task, or `comparison` / `findings`), the subcategory (the
# run, per seed or across seeds) and its label.


def report_item(path, caption, labels, category="{task}", subcategory=None):
    """``path`` as a report item: caption ``workflow/report/<caption>.rst``, ``labels`` (e.g.
    {"figure": "pruning curves"}), category and subcategory as Snakemake's report() takes them.
    """
    return report(
        path,
        caption=f"../workflow/report/{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels=labels,
    )


def seed_figure(name, caption, label):
    """A per-seed figure, filed under its task and `<model> <start> seed <seed>`."""
    return report_item(
        theta1_path(name),
        caption,
        {"figure": label},
        subcategory="{model} {start} {method}seed {seed}",
    )


def summary_figure(name, caption, label):
    """An across-seed figure, filed under its task and `<model> <start> seed mean`."""
    return report_item(
        summary_path(name),
        caption,
        {"figure": label},
        subcategory="{model} {start} {method}seed mean",
    )
