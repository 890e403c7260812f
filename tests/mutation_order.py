"""pytest plugin for `make mutate` only (loaded by pyproject.toml [tool.mutmut]
pytest_add_cli_args): run a mutant's tests cheapest first, so a killed mutant stops at its
cheapest failing test. mutmut's fork runner sorts a mutant's tests by their recorded duration;
its forkserver runner, which `make mutate` needs (torch is not fork-safe), passes them in set
order. The durations are mutmut's own (``mutants/mutmut-stats.json``, written by its stats run
before any mutant runs); a test file's tests stay together, so module fixtures are built once.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path


@functools.cache
def _read(path: Path) -> dict[str, float]:
    """Read once per fork server; every mutant run forked from it inherits the cache."""
    return json.loads(path.read_text()).get("duration_by_test", {})


def _duration_by_test() -> dict[str, float]:
    path = Path("mutmut-stats.json").resolve()  # mutmut runs pytest inside mutants/
    return _read(path) if path.exists() else {}


def pytest_collection_modifyitems(session, config, items) -> None:
    d = _duration_by_test()
    if not d:
        return
    inf = float("inf")
    cost = {it.nodeid: d.get(it.nodeid, inf) for it in items}
    first = {}
    for it in items:
        f = it.nodeid.split("::", 1)[0]
        first[f] = min(first.get(f, inf), cost[it.nodeid])
    items.sort(key=lambda it: (first[it.nodeid.split("::", 1)[0]], cost[it.nodeid]))
