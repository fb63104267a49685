# hera-flows — everything a user or CI runs. The first target that needs Python creates .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check --quiet
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP  := $(VENV)/.installed-dev

.PHONY: generate test check-generated lint bench docs clean help

help:
	@echo "make generate         render config/flows.yaml into generated/ eventsources/ sensors/"
	@echo "make test             run the whole test suite (installs the dev extra on first use)"
	@echo "make check-generated  fail if the committed manifests differ from what the code generates"
	@echo "make lint             yamllint every generated manifest"
	@echo "make bench            run the benchmarks"
	@echo "make docs             regenerate docs/configuration.md from the configuration model"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	@touch $@

$(DEV_STAMP): pyproject.toml $(BASE_STAMP)
	$(PIP) install -e '.[dev]'
	@touch $@

generate: $(BASE_STAMP)
	$(BIN)/hera-flows generate --config config/flows.yaml --out .

check-generated: $(BASE_STAMP)
	$(BIN)/hera-flows generate --config config/flows.yaml --out . --check

lint: $(DEV_STAMP)
	$(BIN)/yamllint --strict generated eventsources sensors

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

docs: $(BASE_STAMP)
	$(BIN)/python -m hera_flows.config_reference > docs/configuration.md

bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
