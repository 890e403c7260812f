"""Print the figures of the last `mutmut run` (read from mutants/): `make mutate` ends with this.

    python -m tests.mutation_summary [seconds]

Survival rate = survived / (killed + survived + timeout): the share of the mutants the tests ran
against that no test noticed. "no tests" mutants (code no selected test reaches) are counted
apart, as mutmut does; a timeout counts as killed (the mutant changed behaviour). One line per
module follows the totals, so a module whose tests lag shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code


def by_module(root: Path = Path("mutants/src")) -> dict[str, Counter]:
    """Status counts per mutated module, from mutmut's per-file ``.meta`` records."""
    out: dict[str, Counter] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        if codes:
            name = meta.relative_to(root).as_posix().removesuffix(".py.meta").replace("/", ".")
            out[name] = Counter(status_by_exit_code[c] for c in codes.values())
    return out


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
    for name, c in by_module().items():
        n = c["killed"] + c["survived"] + c["timeout"]
        share = f"{c['survived'] / n:6.1%}" if n else "     -"
        print(
            f"  {name:42s} {sum(c.values()):5d} mutants, {c['survived']:4d} survived {share}, "
            f"{c['no tests']:3d} without tests"
        )
    print("survivors: `.venv/bin/mutmut results`; one diff: `.venv/bin/mutmut show <name>`")


if __name__ == "__main__":
    main(*sys.argv[1:2])
