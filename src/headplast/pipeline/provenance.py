"""Which package code a workflow script runs, as one fingerprint of what that code does.

Snakemake reruns a job when its rule's script changes, not when a ``headplast`` module the script
imports changes; a rule that carries :func:`code_fingerprint` of its script in its params is
rerun (with everything downstream) when that code changes.

The fingerprint covers the definitions the script can reach, not whole files: starting from the
names the script imports from ``headplast``, every top-level function, class or assignment of a
package module that a reached definition names (imports inside function bodies included) is
reached too, transitively; each reached module also contributes its import-time statements
(imports and top-level statements other than definitions). A change to a function that a rule
never calls (the gradients of a measure the importance rule does not run) leaves that rule's
fingerprint alone. A name imported as a whole module (``import headplast.x``,
``from headplast import x``) reaches all of that module. The package does no dynamic name lookup
(``getattr`` on modules, ``globals()``), which this analysis could not follow.

Each definition is hashed as its syntax tree (``ast.dump``: no comments, no formatting, no line
numbers) with docstrings and other bare string statements removed: they document the code and do
not change what it computes, and this package edits its docstrings often (they say what each
number means); rerunning GPU measures for a reworded docstring would cost hours and change
nothing. Code that reads ``__doc__`` would need them; this package has none.
"""

from __future__ import annotations

import ast
import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PACKAGE = "headplast"
DEFAULT_SRC = Path(__file__).resolve().parents[2]
_WHOLE = None  # symbol of a target that is a whole module
_IMPORT_TIME = "<import>"


def _drop_docstrings(tree: ast.Module) -> ast.Module:
    """``tree`` without bare string statements (docstrings), in place."""
    for node in ast.walk(tree):
        for attr in ("body", "orelse", "finalbody"):
            stmts = getattr(node, attr, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                stmts[:] = [
                    st
                    for st in stmts
                    if not (
                        isinstance(st, ast.Expr)
                        and isinstance(st.value, ast.Constant)
                        and isinstance(st.value.value, str)
                    )
                ]
    return tree


@dataclass
class _Module:
    """One parsed package module; what each of its definitions dumps to and reaches is worked
    out once, when first asked."""

    name: str  # dotted, e.g. headplast.measure.gradients
    src: Path
    is_package: bool
    tree: ast.Module
    defs: dict[str, list[ast.stmt]] = field(default_factory=dict)
    import_time: list[ast.stmt] = field(default_factory=list)
    imported: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    done: dict[str | None, tuple[str, list[tuple[str, str | None]]]] = field(default_factory=dict)

    def symbol(self, symbol: str | None) -> tuple[str, list[tuple[str, str | None]]]:
        """(dump, targets reached) of a definition, the import-time statements or the whole
        module (None)."""
        if symbol not in self.done:
            if symbol is _WHOLE:
                nodes = list(self.tree.body)
            elif symbol == _IMPORT_TIME:
                nodes = self.import_time
            else:
                nodes = self.defs.get(symbol, [])
            targets = self._referenced(nodes)
            if symbol not in self.defs and symbol not in (_WHOLE, _IMPORT_TIME):
                if symbol in self.imported:  # a name the module re-exports
                    targets.append(self.imported[symbol])
            self.done[symbol] = ("\n".join(ast.dump(n) for n in nodes), targets)
        return self.done[symbol]

    def _referenced(self, nodes: list[ast.stmt]) -> list[tuple[str, str | None]]:
        """Targets reached from ``nodes``: names of the module's own definitions, names it
        imported from the package, and what a package import inside a function body imports."""
        out = []
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):  # import time: the names it binds
                out += [(m, _IMPORT_TIME) for m, _ in _import_targets(node, self).values()]
                continue  # reach a definition only where a reached statement names it
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom):  # in a body: runs when called
                    out += list(_import_targets(sub, self).values())
                elif isinstance(sub, ast.Name):
                    if sub.id in self.defs:
                        out.append((self.name, sub.id))
                    elif sub.id in self.imported:
                        out.append(self.imported[sub.id])
        return out


def _module_file(name: str, src: Path) -> Path | None:
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=256)
def _analyse(name: str, src: Path, path: str, mtime_ns: int, size: int) -> _Module:
    del mtime_ns, size  # cache keys: a changed file is analysed again
    tree = _drop_docstrings(ast.parse(Path(path).read_text(encoding="utf-8"), filename=path))
    mod = _Module(name=name, src=src, is_package=Path(path).name == "__init__.py", tree=tree)
    for stmt in tree.body:
        names: list[str] = []
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [stmt.name]
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        if names:
            for n in names:
                mod.defs.setdefault(n, []).append(stmt)
        else:
            mod.import_time.append(stmt)
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                mod.imported.update(_import_targets(stmt, mod))
    return mod


def _load(name: str, src: Path) -> _Module | None:
    path = _module_file(name, src)
    if path is None:
        return None
    stat = path.stat()
    return _analyse(name, src, os.fspath(path), stat.st_mtime_ns, stat.st_size)


def _absolute(mod: _Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = mod.name.split(".")
    base = parts if mod.is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _import_targets(
    node: ast.Import | ast.ImportFrom, mod: _Module | None, src: Path | None = None
) -> dict[str, tuple[str, str | None]]:
    """Local name -> (package module, imported symbol or None for the whole module) of one
    import statement in ``mod`` (None: in the script); names from outside the package are
    left out."""
    out: dict[str, tuple[str, str | None]] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                out[alias.asname or alias.name.split(".")[0]] = (alias.name, _WHOLE)
        return out
    source = _absolute(mod, node) if mod is not None else (node.module or "")
    if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
        return out
    src = mod.src if mod is not None else src
    for alias in node.names:
        local = alias.asname or alias.name
        if alias.name == "*":
            out["*"] = (source, _WHOLE)
        elif _module_file(f"{source}.{alias.name}", src) is not None:
            out[local] = (f"{source}.{alias.name}", _WHOLE)
        else:
            out[local] = (source, alias.name)
    return out


def code_symbols(
    script: str | os.PathLike, src: str | os.PathLike | None = None
) -> dict[tuple[str, str], str]:
    """Every package definition ``script`` can reach, as (module, name) -> ``ast.dump`` of its
    statements (name ``<import>``: the module's import-time statements; ``*``: a whole module).

    ``src`` is the folder that holds the ``headplast`` package (default: this package's).
    """
    src = Path(src).resolve() if src is not None else DEFAULT_SRC
    script_tree = ast.parse(Path(script).read_text(encoding="utf-8"), filename=os.fspath(script))
    todo: list[tuple[str, str | None]] = [(PACKAGE, _IMPORT_TIME)]
    for node in ast.walk(script_tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            todo += list(_import_targets(node, None, src).values())
    seen: set[tuple[str, str | None]] = set()
    out: dict[tuple[str, str], str] = {}
    while todo:
        target = todo.pop()
        if target in seen:
            continue
        seen.add(target)
        name, symbol = target
        mod = _load(name, src)
        if mod is None:
            raise FileNotFoundError(
                f"{script} imports {name}, which is not a module under {src}/{PACKAGE}"
            )
        # importing a module runs its package's __init__ and its own import-time statements
        parent = name.rpartition(".")[0]
        if parent:
            todo.append((parent, _IMPORT_TIME))
        if symbol != _IMPORT_TIME:
            todo.append((name, _IMPORT_TIME))
        dump, targets = mod.symbol(symbol)
        out[(name, "*" if symbol is _WHOLE else symbol)] = dump
        todo += targets
    return out


def code_fingerprint(script: str | os.PathLike, src: str | os.PathLike | None = None) -> str:
    """16 hex digits of SHA-256 over what ``script`` runs of the package (see the module docs):
    unchanged by comments, formatting, docstrings and edits to code the script cannot reach."""
    digest = hashlib.sha256()
    for (module, symbol), dump in sorted(code_symbols(script, src).items()):
        digest.update(f"{module}:{symbol}\n{dump}\n".encode())
    return digest.hexdigest()[:16]
