"""`python -m snakemake` for the test cluster, with the SLURM executor's polling gap capped.

snakemake-executor-plugin-slurm waits `--slurm-init-seconds-before-status-checks` before its first
sacct poll and then widens the gap by 10 s after every poll that finds no job finished, up to
180 s: kind to a real cluster's accounting database, but on the one-node test cluster, whose jobs
last 5-30 s, the node sits idle for most of each gap (measured: the tiny DAG's 78 jobs took 711 s
on SLURM against about 400 s run locally). Here the gap never exceeds
HEADPLAST_SLURM_POLL_CAP_S seconds (default 3); everything else is the plugin's own code.
"""

import os
import sys

from snakemake_executor_plugin_slurm import Executor

CAP_S = float(os.environ.get("HEADPLAST_SLURM_POLL_CAP_S", "3"))
_gap = Executor.next_seconds_between_status_checks  # the property the plugin sets after a poll
Executor.next_seconds_between_status_checks = property(
    _gap.fget, lambda self, seconds: _gap.fset(self, min(seconds, CAP_S))
)

if __name__ == "__main__":
    from snakemake.cli import main

    sys.argv[0] = "snakemake"
    main()
