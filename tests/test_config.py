"""headplast.pipeline.config: command-line values typed by the schema, violations worded by config
key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_config

from headplast.pipeline.config import (
    ConfigError,
    coerce,
    coerce_config,
    config_errors,
    explain_config_errors,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
BASE = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())


def with_cli(*entries: str) -> dict:
    """The test config overridden by ``--config entries`` as Snakemake parses them, typed."""
    cfg = dict(BASE)
    cfg.update(parse_config(list(entries)))  # top-level keys replace (what these tests override)
    return coerce_config(cfg, SCHEMA)


@pytest.mark.parametrize(
    ("entry", "key", "expected"),
    [
        ("seeds=[1]", "seeds", [1]),
        ("seeds=[1, 2]", "seeds", [1, 2]),
        ("seeds=1", "seeds", [1]),
        ("seeds=1,2", "seeds", [1, 2]),
        ("seeds= 3 , 4 ", "seeds", [3, 4]),
        ('eval_subset={"size": 64, "seed": 999}', "eval_subset", {"size": 64, "seed": 999}),
        ("max_length=64", "max_length", 64),
        ("max_length=2e3", "max_length", 2000),
        ("precision=fp32", "precision", "fp32"),
        ('measure={"fisher_eps": 1e-12}', "measure", {"fisher_eps": 1e-12}),
    ],
)
def test_command_line_forms_are_typed(entry, key, expected):
    cfg = with_cli(entry)
    assert cfg[key] == expected
    assert [type(v) for v in _leaves(cfg[key])] == [type(v) for v in _leaves(expected)]
    assert config_errors(cfg, SCHEMA) == []


def _leaves(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_nested_task_keys_and_conditional_branches():
    """Per-task training keys (additionalProperties), null, booleans, and the if/then data block."""
    tasks = (
        'tasks={"t1": {"data": {"source": "synthetic", "n_train": "100", "n_validation": 50, '
        '"seed": "0"}, "train": {"learning_rate": 3e-5, "num_train_epochs": 2, '
        '"per_device_train_batch_size": "8", "eval_steps": null}}}'
    )
    cfg = with_cli(tasks, 'models={"bert-tiny": {"name_or_path": "m", "trust_remote_code": true}}')
    t1 = cfg["tasks"]["t1"]
    assert t1["data"] == {"source": "synthetic", "n_train": 100, "n_validation": 50, "seed": 0}
    assert t1["train"] == {
        "learning_rate": 3e-5,
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "eval_steps": None,
    }
    assert cfg["models"] == {"bert-tiny": {"name_or_path": "m", "trust_remote_code": True}}
    assert config_errors(cfg, SCHEMA) == []


def test_starts_as_text():
    assert with_cli("starts=random")["starts"] == ["random"]
    assert with_cli("starts=[random]")["starts"] == ["random"]


def test_strings_stay_strings_where_the_schema_wants_strings():
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "names": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert coerce({"name": "123", "names": "1,b"}, schema) == {"name": "123", "names": ["1", "b"]}


def test_numbers_where_strings_are_wanted():
    data = {"source": "local", "train": 1, "validation": "v.tsv", "label_names": [0, 1]}
    data["columns"] = {"premise": "p", "hypothesis": "h", "label": 3}
    cfg = dict(BASE, tasks={"t": {"data": data, "train": BASE["tasks"]["nli_a"]["train"]}})
    out = coerce_config(cfg, SCHEMA)["tasks"]["t"]["data"]
    assert out["label_names"] == ["0", "1"] and out["train"] == "1"
    assert out["columns"]["label"] == "3"
    assert config_errors(coerce_config(cfg, SCHEMA), SCHEMA) == []


def test_what_does_not_parse_is_left_for_validation_to_name():
    cfg = with_cli("seeds=[1, x]", 'eval_subset={"size": "lots"}', "max_length=12.5")
    assert cfg["seeds"] == [1, "x"]
    assert config_errors(cfg, SCHEMA) == [
        "config key `eval_subset.size`: 'lots' is not allowed (allowed: an integer >= 1 or `all`)",
        "config key `max_length`: 12.5 is not of type 'integer' (allowed: an integer >= 8)",
        "config key `seeds[1]`: 'x' is not of type 'integer' (allowed: an integer >= 0)",
    ]


def test_config_file_values_are_unchanged():
    assert coerce_config(BASE, SCHEMA) == BASE


def test_errors_name_key_value_and_allowed():
    cfg = dict(BASE, seed=[1], precision="bf32", max_length=4)
    cfg["eval_subset"] = {"size": 0}
    with pytest.raises(ConfigError) as err:
        explain_config_errors(cfg, SCHEMA, "the schema")
    assert str(err.value).splitlines() == [
        "invalid configuration (see the schema):",
        "  config key `seed`: unknown key, did you mean `seeds`? (allowed keys here: "
        + ", ".join(SCHEMA["properties"])
        + ")",
        "  config key `eval_subset.size`: 0 is not allowed (allowed: an integer >= 1 or `all`)",
        "  config key `max_length`: 4 is less than the minimum of 8 (allowed: an integer >= 8)",
        "  config key `precision`: 'bf32' is not a known value (allowed: auto, bf16, fp16, fp32)",
    ]


def test_missing_required_and_conditional_branch_errors():
    cfg = {k: v for k, v in BASE.items() if k != "seeds"}
    cfg["tasks"] = {"t": {"data": {"source": "synthetic", "n_train": 100}, "train": {}}}
    lines = config_errors(cfg, SCHEMA)
    assert "config key `seeds`: missing (required)" in lines
    assert "config key `tasks.t.data.n_validation`: missing (required)" in lines
    assert "config key `tasks.t.train.learning_rate`: missing (required)" in lines


def test_task_names_that_would_break_paths_and_wildcards():
    cfg = dict(BASE, tasks={"rte-small": BASE["tasks"]["nli_a"], "ok_1": BASE["tasks"]["nli_b"]})
    assert config_errors(cfg, SCHEMA) == [
        "config key `tasks.rte-small`: the name 'rte-small' is not allowed here ('rte-small' "
        "does not match '^[A-Za-z0-9_]+$'; names become folder names and wildcard values)"
    ]


def test_glue_tasks_have_one_table():
    """The schema admits exactly the GLUE tasks the loader and the label count know."""
    from headplast.data.tasks import GLUE_TASKS

    data = SCHEMA["properties"]["tasks"]["additionalProperties"]["properties"]["data"]
    glue = next(
        p["then"] for p in data["allOf"] if p["if"]["properties"]["source"]["const"] == "glue"
    )
    assert sorted(glue["properties"]["name"]["enum"]) == sorted(GLUE_TASKS)
    assert GLUE_TASKS["mnli"].n_labels == 3 and GLUE_TASKS["mnli"].validation_split != "validation"
    bad = {**BASE, "tasks": {"t": {"data": {"source": "glue", "name": "sst2"}, "train": {}}}}
    assert any("sst2" in e for e in config_errors(bad, SCHEMA))  # refused at validation


def test_training_and_probe_defaults_come_from_the_package_table():
    """The schema gives no defaults of its own for these blocks; fill_defaults sets every
    optional key from headplast.train.defaults, which direct calls read too, and keeps what the
    config gives."""
    from headplast.pipeline.config import fill_defaults
    from headplast.train.defaults import HPARAM_DEFAULTS, PROBE_DEFAULTS

    train = SCHEMA["properties"]["tasks"]["additionalProperties"]["properties"]["train"]
    probe = SCHEMA["properties"]["probe"]
    for block in (train, probe):
        assert not [k for k, v in block["properties"].items() if "default" in v]
    assert set(train["properties"]) <= set(HPARAM_DEFAULTS)
    assert set(probe["properties"]) == set(PROBE_DEFAULTS)
    cfg = fill_defaults({**BASE, "probe": {"epochs": 7}}, SCHEMA)
    optional = set(train["properties"]) - set(train["required"])
    for task in cfg["tasks"].values():
        given = BASE["tasks"][next(iter(BASE["tasks"]))]["train"]
        for k in optional:
            assert task["train"][k] == given.get(k, HPARAM_DEFAULTS[k]), k
    assert cfg["probe"] == {**PROBE_DEFAULTS, "epochs": 7}
    assert config_errors(cfg, SCHEMA) == []


def test_prepare_config_is_the_three_steps_in_order():
    """rules/config.smk's one call: command-line strings typed, defaults filled, then every
    violation named (against the typed, filled config); the given mapping is left alone."""
    from headplast.pipeline.config import fill_defaults, prepare_config

    schema_path = REPO / "workflow" / "schemas" / "config.schema.yaml"
    cli = {**BASE, "seeds": "1,2", "eval_subset": {"size": "16", "seed": "3"}}
    given = {**cli}
    prepared = prepare_config(cli, schema_path)
    assert cli == given
    assert prepared == fill_defaults(coerce_config(cli, SCHEMA), SCHEMA)
    assert prepared["seeds"] == [1, 2] and prepared["eval_subset"] == {"size": 16, "seed": 3}
    with pytest.raises(ConfigError) as err:
        prepare_config({**cli, "max_length": "4"}, schema_path, "the schema")
    assert str(err.value).splitlines() == [
        "invalid configuration (see the schema):",
        "  config key `max_length`: 4 is less than the minimum of 8 (allowed: an integer >= 8)",
    ]
