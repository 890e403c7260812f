"""CPU rules start fast: a rule that asks for no GPU imports no torch (about 5 s per job here).

The rules and their scripts are read from rules/*.smk (a rule block's GPU resources, `gpu=` or
`**gpu_job(...)`, and its `script:`); each CPU rule's script's imports run in a fresh
interpreter, which must end without `torch` in ``sys.modules``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from tests.workflow_utils import REPO

#: CPU rules that need torch, with the reason: reading a checkpoint's head layout builds the
#: model on the meta device (transformers), which no torch-free reader can do.
TORCH_WITHOUT_GPU = {
    "update": "reads two checkpoints through the model's own layout",
    "update_frozen": "the update script on a frozen run's checkpoint",
}

RULE = re.compile(r"^\s*(?:use rule \S+ as (\w+) with|rule (\w+)):", re.M)


def _rule_blocks() -> dict[str, str]:
    """rule name -> the text of its block, over every .smk file (`use rule` blocks included)."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        marks = list(RULE.finditer(text))
        for m, nxt in zip(marks, [*marks[1:], None], strict=False):
            blocks[m.group(1) or m.group(2)] = text[m.end() : nxt.start() if nxt else len(text)]
    return blocks


def _cpu_scripts() -> dict[str, str]:
    """CPU rule -> its script's file name (rules with GPU resources left out)."""
    out = {}
    for rule, block in _rule_blocks().items():
        script = re.search(r"script:\s*\"\.\./workflow/scripts/([\w.]+)\"", block)
        gpu = "gpu=" in block or "gpu_job(" in block
        if script and not gpu and rule not in TORCH_WITHOUT_GPU:
            out[rule] = script.group(1)
    return out


def _imports(script: str) -> list[str]:
    """The import statements of a script (those of the injected `snakemake` object left out)."""
    tree = ast.parse((REPO / "workflow" / "scripts" / script).read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if (getattr(node, "module", None) or "").startswith("snakemake") or any(
                n.startswith("snakemake") for n in names
            ):
                continue
            lines.append(ast.unparse(node))
    return lines


def test_the_rule_table_is_read():
    scripts = _cpu_scripts()
    # known CPU rules of each stage are found, GPU rules are not
    assert {"prepare_data", "heads", "stats", "fig_pruning", "summary_pruning"} <= set(scripts)
    gpu_rules = {"init_checkpoint", "probe_features", "probe_checkpoint", "finetune"}
    gpu_rules |= {"import_final", "importance_pre", "gradfisher_pre", "theta0_sweep"}
    gpu_rules |= {"importance_pre_shared", "pruning", "function_change", "finetune_frozen"}
    assert not gpu_rules & set(scripts)


@pytest.mark.parametrize("rule", sorted(_cpu_scripts()))
def test_cpu_rule_imports_no_torch(rule):
    script = _cpu_scripts()[rule]
    code = "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(REPO / 'src')!r})",
            *_imports(script),
            "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)",
            "print(','.join(heavy))",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "", (
        f"rule {rule} ({script}) imports {proc.stdout.strip()} through: {_imports(script)}"
    )
