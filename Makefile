# The front door. `make report` and `make test` do all the set-up on a fresh clone.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= data/crm.db
JOBS   ?=

.PHONY: setup report test lab demo bench fuzz clean help
.DEFAULT_GOAL := help

help:
	@echo "make report   set up, build the demo store if none exists, render this month's report pack"
	@echo "make test     set up and run the whole test suite"
	@echo "make lab      JupyterLab on notebooks/ with the project's kernel"
	@echo "make demo     build the demo store data/crm.db (refused if it holds data; FORCE=1 backs it up and replaces it)"
	@echo "make bench    benchmarks, figures written to benchmarks/RESULTS.md"
	@echo "make fuzz     the long property-based importer fuzz"

setup: $(STAMP)

# Re-installs when pyproject.toml changes. The kernel is registered inside .venv (--sys-prefix),
# so papermill and JupyterLab find it without a global install.
$(STAMP): pyproject.toml
	@echo "[1/4] creating .venv"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[2/4] updating pip"
	@$(BIN)/python -m pip install -q --upgrade pip
	@echo "[3/4] installing the project and its dependencies (first time: a few minutes)"
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@# test-only: the CDNOW sample of Fader, Hardie & Lee ships inside this wheel; never imported
	@$(BIN)/python -m pip install -q --no-deps 'lifetimes==0.11.3'
	@echo "[4/4] registering the Jupyter kernel inside .venv"
	@$(BIN)/python -m ipykernel install --sys-prefix --name crm-workbook --display-name "CRM workbook (.venv)" >/dev/null
	@touch $(STAMP)

$(DB): | $(STAMP)
	$(BIN)/crm demo --db $(DB)

report: $(STAMP) $(DB)
	$(BIN)/crm report --db $(DB) $(if $(JOBS),--jobs $(JOBS))

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

lab: $(STAMP) $(DB)
	$(BIN)/jupyter lab --notebook-dir=notebooks

# Never deletes data: `crm demo` refuses a store that holds anything; FORCE=1 makes it take a
# verified backup first (it says where) and then replace the store with the demo.
demo: $(STAMP)
	$(BIN)/crm demo --db $(DB) $(if $(filter 1 yes true,$(FORCE)),--replace)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

fuzz: $(STAMP)
	CRM_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q tests/test_fuzz_import.py

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache
