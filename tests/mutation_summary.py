"""Print the figures of the last `mutmut run` (read from mutants/): `make mutate` ends with this.

    python -m tests.mutation_summary [seconds]

Survival rate = survived / (killed + survived + timeout): the share of the mutants the tests ran
against that no test noticed. "no tests" mutants (code no selected test reaches) are counted
apart, as mutmut does; a timeout counts as killed (the mutant changed behaviour).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main(seconds: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], check=True)
    s = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    tested = s["killed"] + s["survived"] + s["timeout"]
    rate = s["survived"] / tested if tested else float("nan")
    took = f", {float(seconds) / 60:.1f} min" if seconds else ""
    print(
        f"mutants {s['total']}: killed {s['killed']}, survived {s['survived']}, "
        f"timeout {s['timeout']}, no tests {s['no_tests']}, suspicious {s['suspicious']}, "
        f"skipped {s['skipped']}{took}"
    )
    print(f"survival rate {rate:.1%} ({s['survived']} of {tested} tested mutants)")
    print("survivors: `.venv/bin/mutmut results`; one diff: `.venv/bin/mutmut show <name>`")


if __name__ == "__main__":
    main(*sys.argv[1:2])
