"""Shared fixtures: tiny randomly initialised DeBERTa-v2 (v3-like) and BERT models, no download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertForSequenceClassification, DebertaV2ForSequenceClassification

from headplast.model.tiny import tiny_model as build_tiny
from tests.browser import browser  # noqa: F401 (the session-wide Chromium fixture)

# Two intra-op threads for a plain test run on the 2 cores; `make mutate` runs two test
# processes side by side and sets HEADPLAST_TEST_THREADS=1, because two 2-thread processes on 2
# cores spin against each other (measured: a surviving importance mutant's 14 tests took
# 18-26 s instead of 3.3-4.4 s, and equivalent mutants hit mutmut's timeout).
torch.set_num_threads(int(os.environ.get("HEADPLAST_TEST_THREADS", "2")))


def tiny_deberta(seed: int = 0, n_layers: int = 3, **kw) -> DebertaV2ForSequenceClassification:
    """DeBERTa-v3-like: relative attention with log buckets, shared keys, no absolute positions."""
    return build_tiny("deberta", seed, num_hidden_layers=n_layers, **kw)


def tiny_bert(seed: int = 0, n_layers: int = 3, **kw) -> BertForSequenceClassification:
    return build_tiny("bert", seed, num_hidden_layers=n_layers, **kw)


def random_batches(
    n_batches: int = 2, batch: int = 5, max_len: int = 12, seed: int = 0, token_types: bool = True
) -> list[dict[str, torch.Tensor]]:
    """Right-padded batches of random tokens with varying lengths and labels in {0, 1, 2}."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        lengths = torch.randint(3, max_len + 1, (batch,), generator=g)
        lengths[0] = max_len
        ids = torch.randint(5, 128, (batch, max_len), generator=g)
        mask = (torch.arange(max_len)[None, :] < lengths[:, None]).long()
        ids = ids * mask
        b = {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": torch.randint(0, 3, (batch,), generator=g),
        }
        if token_types:
            b["token_type_ids"] = torch.zeros_like(ids)
        out.append(b)
    return out


@pytest.fixture(params=["deberta", "bert"])
def tiny_model(request):
    return tiny_deberta() if request.param == "deberta" else tiny_bert()


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """The tiny DAG (.test/config.yaml: 2 tasks x 2 starts x 2 seeds, 2-layer x 4-head random
    BERT) run once for the whole session, for real; every test that reads a finished tree reads
    this one (and restores what it changes)."""
    from tests.workflow_utils import make_workdir, run_snakemake

    workdir = make_workdir(tmp_path_factory.mktemp("dag"))
    run_snakemake(workdir)
    return workdir


#: The test files that read the session's finished tiny DAG (the `finished` fixture). With
#: pytest-xdist (`make test`, `make test-fast`: `-n 2 --dist loadfile`) they run in one process, so
#: the DAG is built once and the tests that change the tree and restore it never overlap; every
#: other file runs in one process of its own choosing (its module fixtures are built once).
FINISHED_FILES = ("tests/test_pages.py", "tests/test_workflow.py")
#: The longest units of work, handed out first (one to each process) so that neither process
#: starts a long one near the end: the finished tiny DAG and its tests (12-16 min of the suite's
#: 17-20), then the SLURM cluster's runs (about 10 min), then the families' DAG (2 min).
#: xdist would otherwise order files by their number of tests, and these files hold few.
LONGEST_FIRST = ("finished-dag", "tests/test_slurm.py", "tests/test_families_dag.py")


def pytest_collection_modifyitems(config, items):
    """A test that reads the finished tiny DAG must sit in one of FINISHED_FILES."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if "finished" in item.fixturenames and path not in FINISHED_FILES:
            raise pytest.UsageError(
                f"{item.nodeid} reads the finished tiny DAG: add {path} to FINISHED_FILES in "
                "tests/conftest.py, so that pytest-xdist runs it in the process that holds the DAG"
            )


class _FinishedFilesTogether:
    """The scheduler hook, registered only where pytest-xdist is loaded (`-p no:xdist` or a
    machine without it would reject an unknown hook)."""

    def pytest_xdist_make_scheduler(self, config, log):
        """`--dist loadfile`, with FINISHED_FILES as one file, and LONGEST_FIRST first."""
        from xdist.scheduler import LoadFileScheduling

        class _FinishedTogether(LoadFileScheduling):
            def _split_scope(self, nodeid: str) -> str:
                path = nodeid.split("::", 1)[0]
                return "finished-dag" if path in FINISHED_FILES else path

            def _assign_work_unit(self, node) -> None:
                for scope in reversed(LONGEST_FIRST):
                    if scope in self.workqueue:
                        self.workqueue.move_to_end(scope, last=False)
                super()._assign_work_unit(node)

        if config.getvalue("dist") == "loadfile":
            return _FinishedTogether(config, log)
        return None


def pytest_configure(config):
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FinishedFilesTogether(), "headplast-finished-together")
