# This workflow's own files and its Python package: where they are, and the code fingerprint in
# the params of each job that runs a script. Included first, as the files after it import the
# package.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

# This workflow's own files (schema, scripts, the package) are found from this file's folder,
# never from the working directory nor from workflow.basedir, which is the importing workflow's
# folder when this one is a module; results/, logs/ and benchmarks/ go under the working
# directory. WORKFLOW_DIR: the clone's root, or None where the files come from a git host
# (a module declared with github(...)), which Snakemake fetches file by file.
_RULES_DIR = workflow.current_basedir.get_path_or_uri(secret_free=True)
WORKFLOW_DIR = Path(_RULES_DIR).parent if os.path.isdir(_RULES_DIR) else None


def _package_src():
    """The folder that holds the package the rules' code fingerprints read and every job imports:
    src/ beside this workflow (each script puts ``<scriptdir>/../../src`` first on its path, the
    same folder from any working directory, in a module and on a cluster node), or, where the
    workflow's files are not on this disk, the package installed in this environment."""
    if WORKFLOW_DIR is not None and (WORKFLOW_DIR / "src" / "headplast").is_dir():
        src = WORKFLOW_DIR / "src"
        sys.path.insert(0, str(src))
        return src
    source = workflow.current_basedir
    install = (
        f"pip install 'headplast @ git+https://{source.host}/{source.repo}@{source.ref}'"
        if all(hasattr(source, a) for a in ("host", "repo", "ref"))
        else "pip install <a clone of this workflow at the same version>"
    )
    where = (
        f"the workflow's files come from {_RULES_DIR}, not from a folder on this disk, so its "
        "Python package (src/headplast) is not beside them"
        if WORKFLOW_DIR is None
        else f"{WORKFLOW_DIR} holds no src/headplast (a copy of the workflow without its package)"
    )
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        raise WorkflowError(
            f"{where}, and the rules' conda environment (envs/headplast.yaml) does not install "
            "it: run without --software-deployment-method conda in an environment with "
            f"requirements.txt and the package installed ({install}), or deploy from a local "
            'clone (README, "Usage")'
        )
    try:
        import headplast
    except ImportError:
        raise WorkflowError(
            f"{where}, and `import headplast` fails in this environment: install the package "
            f"of the workflow's version where Snakemake and its jobs run ({install}, after "
            "pip install -r requirements.txt of that version), or deploy from a local clone "
            '(README, "Usage")'
        ) from None
    return Path(headplast.__file__).resolve().parents[1]


SRC = _package_src()

from headplast.pipeline.provenance import code_fingerprint


def package_code(script):
    """The param `code=package_code("x.py")`, to be declared by EVERY rule that runs a script
    importing headplast (new rules too): a fingerprint of the package code workflow/scripts/x.py
    reaches, from syntax trees (comments, formatting and docstrings do not count). Snakemake
    tracks a rule's script but not the modules it imports; with this param, a change to that
    code reruns the rule and its dependants (rerun trigger `params`). The script is read where
    the workflow's files are (a local copy of it for a module from a git host)."""
    return code_fingerprint(workflow.source_path(f"../workflow/scripts/{script}"), SRC)
