# The front door. `make report` and `make test` do all the set-up on a fresh clone.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= data/crm.db
JOBS   ?=
PORT   ?= 8866
DESK_FLAGS ?=
# JupyterLab settings of this project, kept inside .venv: no news pop-up, the project kernel by default
LAB_SETTINGS  := $(VENV)/share/jupyter/lab/settings/overrides.json
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.json

.PHONY: setup report test lab desk demo bench fuzz clean help
.DEFAULT_GOAL := help

help:
	@echo "make report   set up, build the demo store if none exists, render this month's report pack"
	@echo "make test     set up, check the import layers (lint-imports) and run the whole test suite"
	@echo "make lab      JupyterLab on notebooks/ with the project's kernel"
	@echo "make desk     the desk (forms and today's list) as an app; open the address it prints (PORT=..., LAN=1 for phones)"
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

# lint-imports first: an upward import (docs/architecture.md) fails the build before the slow tests
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 -q

$(LAB_SETTINGS): jupyter/lab-overrides.json | $(STAMP)
	install -D -m 0644 $< $@

$(SERVER_CONFIG): jupyter/server-config.json | $(STAMP)
	install -D -m 0644 $< $@

lab: $(STAMP) $(DB) $(LAB_SETTINGS) $(SERVER_CONFIG)
	$(BIN)/jupyter lab --notebook-dir=notebooks

# notebooks/00_desk.ipynb as an app (Voila inside a Jupyter server) on the store $(DB), behind a
# fresh key: it prints the address to open. LAN=1 also serves phones on the local network.
desk: $(STAMP) $(DB)
	CRM_DB=$(abspath $(DB)) $(BIN)/python -m crm_helpers.desk_server --port $(PORT) $(if $(filter 1 yes true,$(LAN)),--lan) $(DESK_FLAGS)

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
