"""The jobs a config would run, as Snakemake's own dry run lists them, and the stage of each rule.

:func:`dry_run_jobs` runs ``snakemake --dry-run`` on the config (``--forceall`` for the full
plan, as from an empty results folder; without it, what is still to run) in a subprocess and
reads every job's rule, wildcards, benchmark file and ``gpu`` resource from its listing; the job
counts it prints in its summary table are checked against them. So the plan always agrees with
what the workflow would run, whatever the config or the rules become.

:func:`rule_stages` assigns each rule the stage of the rule file that defines it
(``rules/<file>.smk``; :data:`STAGE_OF_FILE`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The stage of each rule file: the plan's subtotals.
STAGE_OF_FILE: dict[str, str] = {
    "data": "data",
    "train": "train",
    "measure": "measure",
    "analysis": "analysis",
    "summary": "analysis",
    "findings": "analysis",
    "freeze": "freeze",
}
STAGES: tuple[str, ...] = ("data", "train", "measure", "analysis", "freeze")
#: The target rule of the Snakefile: no work of its own.
TARGET_RULES = frozenset({"all"})


class DryRunError(RuntimeError):
    """Snakemake's dry run failed, or its listing could not be read."""


@dataclass(frozen=True)
class Job:
    """One job of the dry run: its ``rule``, ``wildcards``, ``benchmark`` file (relative to the
    working directory; None where the rule declares none) and ``gpus`` (its ``gpu`` resource)."""

    rule: str
    wildcards: dict[str, str] = field(default_factory=dict, hash=False)
    benchmark: str | None = None
    gpus: int = 0


def parse_dry_run(text: str) -> list[Job]:
    """The jobs of a ``snakemake --dry-run`` listing (target rules included), checked against
    the job-count table it ends with."""
    jobs: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            jobs.append({"rule": m.group(1), "wildcards": {}, "benchmark": None, "gpus": 0})
            continue
        if not jobs:
            continue
        key, _, value = line.partition(": ")
        if key == "wildcards":
            jobs[-1]["wildcards"] = dict(kv.split("=", 1) for kv in value.split(", "))
        elif key == "benchmark":
            jobs[-1]["benchmark"] = value
        elif key == "resources":
            gpu = re.search(r"(?:^|, )gpu=(\d+)", value)
            jobs[-1]["gpus"] = int(gpu.group(1)) if gpu else 0
    listed = Counter(j["rule"] for j in jobs)
    table = _job_stats(text)
    if table != dict(listed):
        raise DryRunError(
            f"the dry run lists {dict(listed)} jobs but counts {table}; Snakemake's output "
            "changed format? Run it by hand: snakemake --dry-run"
        )
    return [Job(**j) for j in jobs]


def _job_stats(text: str) -> dict[str, int]:
    """The last ``Job stats`` table of a dry run: rule -> job count (without the total)."""
    blocks = text.split("Job stats:")
    if len(blocks) < 2:
        return {}
    counts: dict[str, int] = {}
    for line in blocks[-1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run_jobs(
    snakefile: Path,
    configfile: Path | Sequence[Path],
    workdir: Path,
    remaining: bool = False,
    timeout: float = 600,
) -> list[Job]:
    """The jobs ``snakemake --dry-run`` lists for ``configfile`` in ``workdir``: every job of
    the DAG (``--forceall``), or with ``remaining`` only those still to run. Offline: the
    dry run reads no model or data."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        os.fspath(snakefile),
        "--directory",
        os.fspath(workdir),
        "--configfile",
        *(
            [os.fspath(configfile)]
            if isinstance(configfile, (str, os.PathLike))
            else [os.fspath(f) for f in configfile]
        ),
        "--dry-run",
        "--cores",
        "1",
    ]
    if not remaining:
        cmd.append("--forceall")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise DryRunError(f"snakemake --dry-run failed (exit {proc.returncode}):\n{tail}")
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return []
    return parse_dry_run(proc.stdout)


def rule_stages(rules_dir: Path) -> dict[str, str]:
    """rule -> stage, from the rule file that defines it (``rule x:`` or ``use rule ... as
    x``), by :data:`STAGE_OF_FILE`; a file not listed there is its own stage."""
    stages: dict[str, str] = {}
    for smk in sorted(Path(rules_dir).glob("*.smk")):
        stage = STAGE_OF_FILE.get(smk.stem, smk.stem)
        text = smk.read_text()
        for name in re.findall(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", text, flags=re.M):
            stages[name] = stage
        for name in re.findall(r"^\s*use rule \w+ as (\w+)", text, flags=re.M):
            stages[name] = stage
    return stages
