"""Build a throw-away copy of the workflow and run Snakemake on it (shared by the workflow tests).

``make_workdir(tmp_path, overrides)`` copies the Snakefile, rules, scripts, schema, configs and
profiles into ``tmp_path``, writes the tiny random BERT of ``tests/make_tiny_model.py`` to
``tiny_model/`` and writes ``test_config.yaml``: ``.test/config.yaml`` deep-updated with
``overrides`` (a value :data:`DELETE` removes a key, :class:`Replace` sets one unmerged).
``run_snakemake(workdir, *args)`` runs the venv's Snakemake there on that config, offline.
``copy_clone(dest)`` copies what a fresh clone holds, for the tests that use the workflow from
outside it (tests/test_module.py).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG_NAME = "test_config.yaml"
WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "config", "envs", ".test", "profiles")
DELETE = object()
"""Override value that removes the key from the config."""


class Replace:
    """Override value set as is, without merging into the mapping it replaces."""

    def __init__(self, value: Any) -> None:
        self.value = value


_TINY_MODEL: dict[str, Path] = {}


def deep_update(base: dict, overrides: dict | None) -> dict:
    """``base`` with ``overrides`` merged in recursively (mappings merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, Replace):
            out[key] = copy.deepcopy(value.value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tiny_config(overrides: dict | None = None) -> dict:
    """The tiny-DAG config (``.test/config.yaml``) with ``overrides`` applied."""
    return deep_update(yaml.safe_load((REPO / ".test" / "config.yaml").read_text()), overrides)


def _tiny_model(cache_root: Path) -> Path:
    """Build the tiny model once per process and copy it from there afterwards."""
    if "bert" not in _TINY_MODEL or not (_TINY_MODEL["bert"] / "config.json").exists():
        from tests.make_tiny_model import make_tiny_model

        out = cache_root / ".tiny_model_cache"
        make_tiny_model(str(out))
        _TINY_MODEL["bert"] = out
    return _TINY_MODEL["bert"]


def make_workdir(tmp_path: Path, config_overrides: dict | None = None) -> Path:
    """A runnable copy of the workflow in ``tmp_path / "wf"`` with the tiny model and the test
    config (``.test/config.yaml`` deep-updated with ``config_overrides``); returns the folder."""
    tmp_path = Path(tmp_path)
    workdir = tmp_path / "wf"
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(
                src,
                workdir / name,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", ".snakemake"),
            )
        elif src.exists():
            shutil.copy2(src, workdir / name)
    # the scripts find the package through snakemake.scriptdir/../../src
    if not (workdir / "src").exists():
        (workdir / "src").symlink_to(REPO / "src", target_is_directory=True)
    add_tiny_model(workdir)
    write_config(workdir, tiny_config(config_overrides))
    return workdir


def add_tiny_model(workdir: Path) -> Path:
    """The tiny BERT (built once per process) copied to ``workdir / "tiny_model"``, where
    ``.test/config.yaml`` names it relative to the working directory."""
    dest = Path(workdir) / "tiny_model"
    shutil.copytree(_tiny_model(Path(workdir).parent), dest, dirs_exist_ok=True)
    return dest


def copy_clone(dest: Path) -> Path:
    """The workflow as a fresh clone holds it (the files git tracks and the new ones it does not
    ignore) copied to ``dest``: no venv, results or caches of this checkout come along."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.split(b"\0")):
        src = REPO / os.fsdecode(rel)
        if src.is_file():  # a tracked file deleted in this checkout is not copied
            target = Path(dest) / os.fsdecode(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return Path(dest)


def write_config(workdir: Path, config: dict[str, Any]) -> Path:
    path = Path(workdir) / CONFIG_NAME
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_exe() -> str:
    exe = Path(sys.executable).parent / "snakemake"
    return str(exe) if exe.exists() else (shutil.which("snakemake") or "snakemake")


def run_snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    timeout: float = 1200,
    configfile: str | os.PathLike | None = CONFIG_NAME,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``snakemake *args --configfile test_config.yaml --resources gpu=2 --cores 2`` in
    ``workdir``, offline; output captured as text. With ``check``, a non-zero exit fails the test
    showing the end of Snakemake's output. ``configfile``: another config (None: no
    ``--configfile``, so the workflow's own ``configfile:`` applies); ``env``: variables set for
    this run.

    The `gpu` token is sized to the cores, as in `make demo`: this machine has no GPU to protect,
    and each job of the tiny DAG is one thread, so two GPU-rule jobs run side by side instead of
    one core idling through every GPU-rule job (profiles/local keeps gpu=1 for real GPUs)."""
    env = {**os.environ, **(env or {})}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    # the caller's arguments (targets) first: --resources and --configfile take several values
    cmd = [snakemake_exe(), *args]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--resources", "gpu=2", "--cores", "2"]
    proc = subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode} in {workdir}\n"
            f"--- stdout (end) ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr (end) ---\n{proc.stderr[-8000:]}"
        )
    return proc
