"""Data-parallel fine-tuning of one job on several GPUs (or CPU processes): torchrun launches
this module's entry point once per process; each runs :func:`headplast.train.finetune.finetune`,
whose Trainer trains with DDP and keeps the configured effective batch (see
``headplast.train.finetune.batch_over_processes``).

    python -m torch.distributed.run --standalone --nproc_per_node N \\
        -m headplast.train.distributed ARGS.json RESULT.json

ARGS.json holds ``finetune``'s keyword arguments; rank 0 writes the run configuration to
RESULT.json. :func:`finetune_data_parallel` does exactly that from a single process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from headplast.io import read_json, write_json

log = logging.getLogger(__name__)


def gpus_of_job(gpu: int | None, gres: str | None) -> int:
    """The number of processes for a job given its Snakemake resources: ``gpu`` (local runs,
    SLURM --gpus), else the count of a ``gres`` string such as "gpu:4" or "gpu:a100:4" (SLURM
    sites that take only --gres, where the profile sets gpu: 0), else 1."""
    if gpu:
        return int(gpu)
    if gres:
        parts = str(gres).split(",")[0].split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            return int(parts[-1])
    return 1


def torchrun_command(nproc: int, args_path: str | os.PathLike, result_path: str | os.PathLike):
    """The torchrun command line that runs this module in ``nproc`` processes on this node."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={int(nproc)}",
        "-m",
        "headplast.train.distributed",
        os.fspath(args_path),
        os.fspath(result_path),
    ]


def finetune_data_parallel(nproc: int, **finetune_kwargs: Any) -> dict[str, Any]:
    """``training.finetune(**finetune_kwargs)`` in ``nproc`` data-parallel processes (torchrun);
    returns rank 0's run configuration. The processes' output goes to this process's stderr.
    A signal or error here terminates torchrun, which stops its workers."""
    src = str(Path(__file__).resolve().parents[2])  # the folder that holds the package
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    kwargs = {k: os.fspath(v) if isinstance(v, Path) else v for k, v in finetune_kwargs.items()}
    with tempfile.TemporaryDirectory(prefix="headplast-ddp-") as tmp:
        args_path, result_path = Path(tmp, "args.json"), Path(tmp, "result.json")
        write_json(args_path, kwargs)
        cmd = torchrun_command(nproc, args_path, result_path)
        log.info("data-parallel fine-tuning: %s", " ".join(cmd))
        sys.stderr.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=sys.stderr, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
        if rc != 0 or not result_path.exists():
            raise RuntimeError(
                f"data-parallel fine-tuning ({nproc} processes) failed with exit code {rc}; the "
                "processes' messages are above"
            )
        return read_json(result_path)


def main(argv: list[str] | None = None) -> None:
    """One torchrun process: fine-tune with ARGS.json's arguments; rank 0 writes RESULT.json."""
    from headplast.train.finetune import finetune, install_sigterm_handler

    args_path, result_path = argv if argv is not None else sys.argv[1:]
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING,
        format=f"[rank {os.environ.get('RANK', '0')}] %(levelname)s %(name)s: %(message)s",
    )
    install_sigterm_handler()
    run_config = finetune(**read_json(args_path))
    if run_config is not None:
        write_json(result_path, run_config)


if __name__ == "__main__":
    main()
