"""The preamble of every workflow script: one call, ``start(snakemake)``.

A script run by Snakemake's ``script:`` directive gets a ``snakemake`` object; it adds the
package beside the workflow, ``<snakemake.scriptdir>/../../src``, to ``sys.path`` (an absolute
path from any working directory, in a module and on a cluster node, so conda environments need no
install of it; where the workflow's files come from a git host, the scripts are fetched alone and
the package is the one installed in the environment, which rules/package.smk checks before any
job), calls :func:`start`, and then only moves ``snakemake.input/params/output`` into the package
and back.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def start(smk: Any, *, threads: bool = False) -> logging.Logger:
    """Send the job's stderr and stdout (the Trainer, tqdm and warnings write there) to its one
    log file, ``smk.log[0]``, line-buffered; log at INFO into it; with ``threads`` (the rules
    that run torch) set torch's intra-op threads to the job's ``threads``. Returns the logger
    named after the rule."""
    stream = open(smk.log[0], "w", buffering=1)  # noqa: SIM115 (the job's stderr until it ends)
    sys.stderr = sys.stdout = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True, format=LOG_FORMAT)
    if threads:
        import torch

        torch.set_num_threads(int(smk.threads))
    return logging.getLogger(str(getattr(smk, "rule", "script")))
