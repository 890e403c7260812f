"""code_fingerprint: a rule's fingerprint changes exactly when code its script reaches changes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from headplast.pipeline.provenance import code_fingerprint, code_symbols

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
RULE_SCRIPTS = ("gradfisher.py", "importance.py", "init_checkpoint.py", "finetune.py")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A copy of the package to edit."""
    out = tmp_path / "src"
    shutil.copytree(REPO / "src" / "headplast", out / "headplast")
    return out


def fingerprints(src: Path) -> dict[str, str]:
    return {s: code_fingerprint(SCRIPTS / s, src) for s in RULE_SCRIPTS}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def changed(before: dict[str, str], src: Path) -> set[str]:
    after = fingerprints(src)
    return {s for s in RULE_SCRIPTS if after[s] != before[s]}


def test_comments_formatting_and_docstrings_change_nothing(src):
    before = fingerprints(src)
    grad = src / "headplast" / "measure" / "gradients.py"
    edit(grad, "DEFAULT_EPS = 1e-20", "DEFAULT_EPS = (\n    1e-20  # a comment\n)\n\n# another")
    edit(grad, "one backward per batch.", "one backward pass per batch (reworded).")
    text = grad.read_text()
    grad.write_text('"""A new module docstring."""\n' + text.split('"""', 2)[2].lstrip("\n"))
    edit(
        src / "headplast" / "measure" / "stage.py",
        "def measure_gradfisher(",
        "def measure_gradfisher(  # x",
    )
    assert changed(before, src) == set()


def test_changed_gradient_constant_changes_gradfisher_only(src):
    before = fingerprints(src)
    edit(
        src / "headplast" / "measure" / "gradients.py", "DEFAULT_EPS = 1e-20", "DEFAULT_EPS = 1e-12"
    )
    assert changed(before, src) == {"gradfisher.py"}


def test_shared_code_changes_every_rule_that_reaches_it(src):
    before = fingerprints(src)
    # resolve_layout: both measures, theta0 (imported inside init_checkpoint's body) and
    # fine-tuning (LoRA wraps the projections the table names)
    edit(src / "headplast" / "model" / "adapters.py", "if bad:", "if bad and True:")
    assert changed(before, src) == set(RULE_SCRIPTS)


def test_import_time_statement_reaches_every_importer(src):
    """A top-level statement of gradients runs whenever measures (which imports it) is imported."""
    before = fingerprints(src)
    edit(
        src / "headplast" / "measure" / "gradients.py",
        "DEFAULT_EPS = 1e-20",
        "DEFAULT_EPS = 1e-20\nprint(1)",
    )
    assert changed(before, src) == {"gradfisher.py", "importance.py"}


def test_tiny_package_reference(tmp_path):
    """A hand-built package: which definitions reach the script is known by construction."""
    pkg = tmp_path / "headplast"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("K = 1\n\ndef f():\n    return K\n\ndef g():\n    return 2\n")
    (pkg / "b.py").write_text(
        "import os\n\ndef h():\n    from headplast.a import f\n    return f()\n\n"
        "def unused():\n    from headplast import a\n    return a.g()\n"
    )
    script = tmp_path / "s.py"
    script.write_text("from headplast.b import h\nprint(h())\n")
    assert sorted(code_symbols(script, tmp_path)) == [
        ("headplast", "<import>"),
        ("headplast.a", "<import>"),
        ("headplast.a", "K"),
        ("headplast.a", "f"),
        ("headplast.b", "<import>"),
        ("headplast.b", "h"),
    ]
    before = code_fingerprint(script, tmp_path)
    (pkg / "a.py").write_text("K = 1\n\ndef f():\n    return K\n\ndef g():\n    return 3\n")
    assert code_fingerprint(script, tmp_path) == before
    (pkg / "a.py").write_text("K = 2\n\ndef f():\n    return K\n\ndef g():\n    return 3\n")
    assert code_fingerprint(script, tmp_path) != before


def test_missing_module_is_named(tmp_path):
    (tmp_path / "headplast").mkdir()
    (tmp_path / "headplast" / "__init__.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("from headplast.nowhere import x\n")
    with pytest.raises(FileNotFoundError, match="headplast.nowhere"):
        code_fingerprint(script, tmp_path)


def test_every_rule_that_runs_a_package_script_carries_its_code():
    """rules/*.smk: each rule whose script imports headplast declares
    `code=package_code("<that script>")` in its params (a rule added without it would keep
    results of older code)."""
    missing = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:rule|use rule) )", smk.read_text()):
            script = re.search(r'script:\s+"\.\./workflow/scripts/(\w+\.py)"', block)
            if not block.startswith("rule ") or script is None:
                continue
            name = script.group(1)
            if "headplast" not in (SCRIPTS / name).read_text():
                continue
            if f'code=package_code("{name}")' not in block:
                missing.append(f"{smk.name}: {block.split(':', 1)[0]}")
    assert missing == []
