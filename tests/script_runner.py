"""Run a workflow script in-process with a stand-in ``snakemake`` object (shared by the tests)."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


class Named(SimpleNamespace):
    """Stand-in for Snakemake's Namedlist (attribute access, indexing, iteration, items, get)."""

    def __getitem__(self, i):
        return list(vars(self).values())[i]

    def __iter__(self):
        return iter(vars(self).values())

    def items(self):
        return vars(self).items()

    def get(self, key, default=None):
        return vars(self).get(key, default)


def run_script(
    name, log_dir, input, output, params=None, wildcards=None, threads=1, resources=None
) -> str:
    """Run workflow/scripts/<name>.py; restore stderr, stdout, logging handlers and torch threads
    afterwards. Returns the log text; exceptions propagate. ``resources`` as a rule declares
    them (default: one GPU, as the GPU rules do)."""
    smk = SimpleNamespace(
        input=Named(**input),
        output=Named(**output),
        params=Named(**(params or {})),
        wildcards=Named(**(wildcards or {"task": "t", "seed": "1"})),
        log=[str(Path(log_dir) / f"{name}.log")],
        threads=threads,
        resources=Named(**(resources or {"gpu": 1})),
        scriptdir=str(SCRIPTS),
    )
    stderr, stdout, handlers = sys.stderr, sys.stdout, list(logging.getLogger().handlers)
    threads_before = torch.get_num_threads()
    try:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), init_globals={"snakemake": smk})
    finally:
        for h in logging.getLogger().handlers:
            if h not in handlers:
                logging.getLogger().removeHandler(h)
        if sys.stderr is not stderr:
            sys.stderr.close()
        sys.stderr, sys.stdout = stderr, stdout
        torch.set_num_threads(threads_before)
    return Path(smk.log[0]).read_text()
