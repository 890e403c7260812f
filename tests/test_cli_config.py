"""`snakemake --config key=value` in the forms docs/configuration.md shows, through the real
workflow: dry runs of the tiny DAG (each about 5 s). Snakemake hands lists and mappings over with
every value a string; rules/config.smk types them by the schema (headplast.pipeline.config)
before validation."""

from __future__ import annotations

import re

import pytest

from tests.workflow_utils import make_workdir, run_snakemake

#: Each test starts Snakemake (dry runs, lint, a module import): the workflow tier.
pytestmark = pytest.mark.snakemake


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("cli"))


def planned_counts(workdir, *config: str) -> dict[str, int]:
    """Jobs per rule of a dry run with ``--config *config``."""
    proc = run_snakemake(workdir, "-n", "--quiet", "rules", "--config", *config)
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M)}


DOCUMENTED_FORMS = [
    'eval_subset={"size": 30, "seed": 999}',
    "max_length=64",
    'measure={"fisher_eps": 1e-12, "tokens_per_batch": 512}',
    'models={"tiny_bert": {"name_or_path": "tiny_model", "trust_remote_code": false}}',
    'tasks={"nli_a": {"train": {"learning_rate": 5e-4, "eval_steps": null}}}',
    "precision=fp32",
]


def test_one_seed_and_nested_keys_from_the_command_line(workdir):
    """docs/configuration.md's forms at once (one dry run): a one-seed list, nested mappings,
    numbers, null and booleans."""
    counts = planned_counts(workdir, "seeds=[1]", *DOCUMENTED_FORMS)
    assert counts["finetune"] == counts["gradfisher_pre"] == 4  # 2 tasks x 2 starts x 1 seed
    assert counts["summary_seeds"] == 4 and counts["all"] == 1


def test_seeds_as_comma_separated_text(workdir):
    counts = planned_counts(workdir, "seeds=1,2,3")
    assert counts["finetune"] == counts["gradfisher_pre"] == 12  # 2 tasks x 2 starts x 3


def test_values_that_are_not_numbers_are_named(workdir):
    proc = run_snakemake(
        workdir, "-n", "--config", "seeds=[1, one]", 'eval_subset={"size": "lots"}', check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key `seeds[1]`: 'one' is not of type 'integer'" in out
    assert "config key `eval_subset.size`: 'lots' is not allowed (allowed: an integer" in out


def test_interventions_for_one_task_and_an_unknown_one_named(workdir):
    """`interventions.tasks` (the reference config's first run keeps them to RTE): the frozen
    fine-tunes of the other task leave the plan; a task the config does not fine-tune is named
    with the key (one dry run each)."""
    counts = planned_counts(workdir, 'interventions={"tasks": ["nli_a"]}')
    # .test/config.yaml: one start x 2 seeds x 2 orders (Urel, one random draw), one task
    assert counts["finetune_frozen"] == counts["update_frozen"] == 4
    assert counts["freeze_summary"] == counts["fig_freeze"] == 1
    assert counts["finetune"] == 8  # the other jobs stay: 2 tasks x 2 starts x 2 seeds
    proc = run_snakemake(
        workdir, "-n", "--config", 'interventions={"tasks": ["mnli"]}', check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key `interventions.tasks`: mnli is not a task this config fine-tunes" in out
