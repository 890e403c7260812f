"""The workflow config as the user means it: command-line values typed by the schema, and schema
violations worded as the config key, the bad value and what is allowed there.

``coerce_config`` runs first: Snakemake's ``--config key=value`` hands over lists and mappings
(``seeds=[1]``, ``eval_subset={"size": 64}``) with every scalar as a string, and a plain value
such as ``seeds=1`` or ``seeds=1,2`` as an int or a string where the schema wants a list.
``explain_config_errors`` then reports what is still wrong, every error at once, before
Snakemake's own validation fills in the defaults. ``prepare_config`` is the three steps in the
order the workflow runs them (rules/config.smk calls it once).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_NULL = {"null", "~", "none", ""}
_SCALARS = ("integer", "number", "boolean", "null", "string")


class ConfigError(ValueError):
    """The config violates the schema; the message names every offending key."""


def load_schema(schema_path: str | os.PathLike) -> dict[str, Any]:
    return yaml.safe_load(Path(schema_path).read_text())


# ---------------------------------------------------------------------------------------------
# Coercion of command-line values
# ---------------------------------------------------------------------------------------------


def _types(schema: dict[str, Any]) -> list[str]:
    types = schema.get("type")
    return [types] if isinstance(types, str) else list(types or [])


def _parse_scalar(text: str, wanted: list[str]) -> Any:
    """``text`` as the first of the ``wanted`` JSON types it parses as; itself if none."""
    low = text.strip().lower()
    if "null" in wanted and low in _NULL:
        return None
    if "boolean" in wanted:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    if "integer" in wanted:
        try:
            return int(text.strip())
        except ValueError:
            pass
    if "number" in wanted:
        for parse in (int, float):
            try:
                return parse(text.strip())
            except ValueError:
                pass
    return text


def _applicable(schema: dict[str, Any], value: Any) -> Iterator[dict[str, Any]]:
    """``schema`` and the subschemas that apply to ``value``: every ``allOf`` part, every
    alternative of ``oneOf``/``anyOf`` (a string is typed only when no alternative is a
    string), and the ``then``/``else`` branch that its ``if`` selects."""
    yield schema
    for part in (*schema.get("allOf", []), *schema.get("oneOf", []), *schema.get("anyOf", [])):
        yield from _applicable(part, value)
    if "if" in schema:
        branch = "then" if Draft202012Validator(schema["if"]).is_valid(value) else "else"
        if isinstance(schema.get(branch), dict):
            yield from _applicable(schema[branch], value)


def coerce(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` converted to the types ``schema`` asks for, where it can be without guessing.

    Strings that parse as the wanted integer, number, boolean or null are converted (``"64"`` ->
    64, ``"1e-5"`` -> 1e-05, ``"true"`` -> True, ``"null"`` -> None), a whole float where an
    integer is wanted becomes that integer (2000.0 -> 2000), a number where only a string is
    wanted its text (``label_names: [0, 1]`` -> ["0", "1"]); a scalar where a list of scalars
    is wanted becomes a one-item list, a comma-separated string its items (``"1,2"`` -> [1, 2]);
    lists and mappings are walked (``properties``, ``additionalProperties``, ``items``,
    ``allOf`` and ``if``/``then``/``else``); an integer where only a number is wanted becomes a
    float. Anything else is returned unchanged, so that validation still names it.
    """
    if not isinstance(schema, dict):
        return value
    parts = list(_applicable(schema, value))
    types = [t for part in parts for t in _types(part)]
    if isinstance(value, dict):
        out = dict(value)
        for key in value:
            for part in parts:
                props = part.get("properties", {})
                sub = props[key] if key in props else part.get("additionalProperties")
                if isinstance(sub, dict) and sub:
                    out[key] = coerce(out[key], sub)
        return out
    if "array" in types and not isinstance(value, list) and value is not None:
        items = next((p["items"] for p in parts if isinstance(p.get("items"), dict)), {})
        if not set(_types(items)) <= set(_SCALARS):
            return value
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")] if value.strip() else []
        else:
            value = [value]
    if isinstance(value, list):
        items = next((p["items"] for p in parts if isinstance(p.get("items"), dict)), None)
        return [coerce(v, items) for v in value] if items else value
    if isinstance(value, str) and "string" not in types and types:
        return _parse_scalar(value, types)
    if types == ["string"] and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # `label_names: [0, 1]`: the names of labels written as 0 and 1
    if isinstance(value, float) and value.is_integer() and "integer" in types:
        return int(value)  # `max_length=2e3` reaches the config as 2000.0
    if isinstance(value, int) and not isinstance(value, bool) and types == ["number"]:
        return float(value)  # `learning_rate: 1` and `1.0` are one value, spelled once
    return value


def canonical(value: Any) -> Any:
    """``value`` in one spelling for rule params: mappings with their keys sorted (recursively),
    tuples as lists. Snakemake compares a rule's params by their ``repr``, in which a mapping's
    key order counts: without this, the same config with its keys in another order (a YAML tool
    that sorts keys, a nested ``--config`` override merged into a mapping) would rerun every job
    that takes a mapping, fine-tuning included. Numbers are typed by :func:`coerce` already."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def _train_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["properties"]["tasks"]["additionalProperties"]["properties"]["train"]


def fill_defaults(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with the optional keys of every ``tasks.<task>.train`` block and of
    ``probe:`` that it leaves out set from :mod:`headplast.train.defaults`, the table that direct
    calls use too (the schema gives no defaults of its own for them). Keys the schema requires
    are left to validation; keys the schema does not know are not added."""
    from headplast.train.defaults import HPARAM_DEFAULTS, PROBE_DEFAULTS

    out = dict(config)
    train = _train_schema(schema)
    optional = [k for k in train["properties"] if k not in train.get("required", [])]
    tasks = {}
    for name, task in (config.get("tasks") or {}).items():
        if isinstance(task, dict) and isinstance(task.get("train"), dict):
            filled = {k: HPARAM_DEFAULTS[k] for k in optional if k not in task["train"]}
            task = {**task, "train": {**task["train"], **filled}}
        tasks[name] = task
    if "tasks" in config:
        out["tasks"] = tasks
    probe = config.get("probe") or {}
    if isinstance(probe, dict):
        keys = schema["properties"]["probe"]["properties"]
        out["probe"] = {**{k: PROBE_DEFAULTS[k] for k in keys if k not in probe}, **probe}
    return out


def coerce_config(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with command-line strings typed as the schema asks (see
    :func:`coerce`); values that already have the wanted type stay as they are."""
    return coerce(config, schema)


# ---------------------------------------------------------------------------------------------
# Error wording
# ---------------------------------------------------------------------------------------------


def config_key(path: list[Any]) -> str:
    """``a.b[0].c`` for a jsonschema absolute path."""
    key = ""
    for p in path:
        key += f"[{p}]" if isinstance(p, int) else (f".{p}" if key else str(p))
    return key or "(top level)"


def allowed(schema: Any) -> str:
    """What a (sub)schema admits, in words: 'an integer >= 1', 'one of a, b', 'a list of ...'."""
    if not isinstance(schema, dict):
        return ""
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "const" in schema:
        return f"`{schema['const']}`"
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return " or ".join(w for w in map(allowed, alternatives) if w)
    types = _types(schema)
    words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    bounds = [
        f"{op} {schema[k]}"
        for k, op in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if k in schema
    ]
    if bounds:
        words = f"{words or 'a number'} {' and '.join(bounds)}"
    if "array" in types:
        if allowed(schema.get("items")):
            words += f" of {allowed(schema['items'])}"
        if schema.get("minItems"):
            words += f", at least {schema['minItems']} item(s)"
        if schema.get("uniqueItems"):
            words += ", no duplicates"
    return words


def explain(err: Any) -> list[str]:
    """Lines 'config key `a.b`: problem (allowed: ...)' for one jsonschema error: the key, the
    bad value and what the schema admits there."""
    path = list(err.absolute_path)
    key = config_key(path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = list(err.schema.get("properties", {}))
        lines = []
        for extra in [k for k in err.instance if k not in known]:
            hint = difflib.get_close_matches(str(extra), known, n=1)
            lines.append(
                f"config key `{config_key(path + [extra])}`: unknown key"
                + (f", did you mean `{hint[0]}`?" if hint else "")
                + (f" (allowed keys here: {', '.join(known)})" if known else "")
            )
        return lines
    if err.validator == "required" and isinstance(err.instance, dict):
        return [
            f"config key `{config_key(path + [k])}`: missing (required)"
            for k in err.validator_value
            if k not in err.instance
        ]
    if "propertyNames" in err.absolute_schema_path:
        return [
            f"config key `{config_key(path + [err.instance])}`: the name {err.instance!r} is not "
            f"allowed here ({err.message}; names become folder names and wildcard values)"
            + (f": {err.schema['description']}" if "description" in err.schema else "")
        ]
    if err.validator in ("oneOf", "anyOf"):
        return [
            f"config key `{key}`: {err.instance!r} is not allowed (allowed: {allowed(err.schema)})"
        ]
    if err.validator == "enum":
        return [
            f"config key `{key}`: {err.instance!r} is not a known value "
            f"(allowed: {', '.join(map(str, err.validator_value))})"
        ]
    line = f"config key `{key}`: {err.message}"
    words = allowed(err.schema)
    if words and err.validator not in ("uniqueItems", "minItems", "minProperties"):
        line += f" (allowed: {words})"
    return [line]


def config_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every schema violation of ``config`` as 'config key `a.b`: problem (allowed: ...)', sorted
    by key, without repeats; unknown keys (typos) are named with the closest known key."""
    errors = sorted(
        Draft202012Validator(schema).iter_errors(config),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    lines = []
    for err in errors:
        if err.validator in ("if", "allOf") and err.context:
            err = min(err.context, key=lambda e: len(e.absolute_path))
        lines += explain(err)
    return list(dict.fromkeys(lines))


def explain_config_errors(config: dict[str, Any], schema: dict[str, Any], source: str) -> None:
    """Raise :class:`ConfigError` listing every violation (``source`` names the schema file)."""
    lines = config_errors(config, schema)
    if lines:
        raise ConfigError(
            f"invalid configuration (see {source}):\n" + "\n".join(f"  {line}" for line in lines)
        )


def prepare_config(
    config: dict[str, Any], schema_path: str | os.PathLike, source: str | None = None
) -> dict[str, Any]:
    """``config`` as the rules read it, before Snakemake's own validation: command-line strings
    typed by the schema (:func:`coerce_config`), the optional training and probe keys filled in
    (:func:`fill_defaults`), then every violation raised at once as :class:`ConfigError`
    (:func:`explain_config_errors`; ``source`` names the schema there, default its path).
    Returns a new mapping; ``config`` is not changed."""
    schema = load_schema(schema_path)
    prepared = fill_defaults(coerce_config(config, schema), schema)
    explain_config_errors(prepared, schema, source or os.fspath(schema_path))
    return prepared
