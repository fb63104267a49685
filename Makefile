# hera-flows — everything a user or CI runs. The first target that needs Python creates .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check --quiet
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP  := $(VENV)/.installed-dev
# checkov lives in its own virtualenv: its dependency pins clash with ours (mlflow, pydantic, ...).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
SCAN_DIRS       := generated eventsources sensors

.PHONY: agents prometheus generate golden test test-slow test-all scan check-generated lint bench docs demo clean help

help:
	@echo "make generate         render config/flows.yaml into generated/ eventsources/ sensors/"
	@echo "make golden           regenerate every committed, checked output (manifests, overlay, training example, docs)"
	@echo "make test             run the test suite but its slow end-to-end part (installs the dev extra on first use)"
	@echo "make test-slow        run the slow end-to-end part (real servers, every documented command); CI runs both"
	@echo "make test-all         run both in one pytest session"
	@echo "make check-generated  fail if the committed manifests differ from what the code generates"
	@echo "make lint             yamllint (generated manifests), ruff and mypy (the code): zero findings"
	@echo "make scan             checkov (kubernetes, argo_workflows) over the generated manifests; fails on any finding"
	@echo "make agents           install the pinned coding-agent CLIs (Claude Code, Codex) into .agents/ (npm)"
	@echo "make prometheus       install Debian's prometheus package into .tools/prometheus/ (the canary tests' server)"
	@echo "make bench            run the benchmarks"
	@echo "make docs             regenerate docs/configuration.md (configuration model) and the triage rule table,"
	@echo "                       measured numbers and worked examples (docs/patterns/failure-triage.md)"
	@echo "make demo             run the four patterns locally: real MLflow, real git, stand-ins for GitHub/Kubernetes;"
	@echo "                       AGENT=claude-code or AGENT=codex: the real agent CLI edits (scripted model)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	@touch $@

$(DEV_STAMP): pyproject.toml $(BASE_STAMP)
	$(PIP) install -e '.[dev]'
	@touch $@

# The production overlay example (examples/overlay/) is rendered from the same config plus its layer.
OVERLAY_EXAMPLE := --config config/flows.yaml --config examples/overlay/prod.yaml --out examples/overlay/rendered

generate: $(BASE_STAMP)
	$(BIN)/hera-flows generate --config config/flows.yaml --out .
	$(BIN)/hera-flows generate $(OVERLAY_EXAMPLE)

check-generated: $(BASE_STAMP)
	$(BIN)/hera-flows generate --config config/flows.yaml --out . --check
	$(BIN)/hera-flows generate $(OVERLAY_EXAMPLE) --check

# The same gates run by pre-commit (.pre-commit-config.yaml) and CI (.ci/run).
lint: $(DEV_STAMP)
	$(BIN)/yamllint --strict generated eventsources sensors examples/overlay/rendered
	$(BIN)/ruff check .
	$(BIN)/mypy

# The real agent CLIs the tests run (tools/agents/package.json pins them), with the dev extra's Node.js and npm.
AGENTS_STAMP := .agents/.installed
$(AGENTS_STAMP): tools/agents/package.json $(DEV_STAMP)
	mkdir -p .agents
	cp tools/agents/package.json .agents/package.json
	cd .agents && PATH="$(CURDIR)/$(BIN):$$PATH" npm install --no-audit --no-fund --loglevel=error
	@touch $@

agents: $(AGENTS_STAMP)

# A real Prometheus server for the canary health queries (Debian's package, unpacked without root).
PROMETHEUS_DIR := .tools/prometheus
PROMETHEUS_BIN := $(PROMETHEUS_DIR)/usr/bin/prometheus
$(PROMETHEUS_BIN): tools/install_prometheus.sh
	tools/install_prometheus.sh $(CURDIR)/$(PROMETHEUS_DIR)

prometheus: $(PROMETHEUS_BIN)

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip --disable-pip-version-check --quiet install "checkov==$(CHECKOV_VERSION)"
	@touch $@

# Suppressions live in the generated manifests (see docs/security.md); none is passed on the command line.
scan: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov $(foreach d,$(SCAN_DIRS),-d $(d)) --framework kubernetes argo_workflows \
		--skip-download --compact --quiet

# The default run (a few minutes) leaves out the tests marked slow: end-to-end suites that start real servers and
# run every documented command (pyproject.toml's markers). CI (.ci/run) runs `make test` and `make test-slow`.
# The static scan's test (tests/test_static_scan.py) is in the default run, so `scan` comes with test and test-all.
TEST_DEPS := $(DEV_STAMP) $(AGENTS_STAMP) $(PROMETHEUS_BIN)
test: $(TEST_DEPS) scan
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(TEST_DEPS)
	$(BIN)/python -m pytest -m slow

test-all: $(TEST_DEPS) scan
	$(BIN)/python -m pytest

# Everything it starts (MLflow server, stand-ins, a temporary folder) it stops, also on Ctrl-C.
AGENT ?= builtin
demo: $(DEV_STAMP) $(if $(filter-out builtin,$(AGENT)),agents)
	$(BIN)/python -m hera_flows.local.demo --agent $(AGENT)

docs: $(BASE_STAMP)
	$(BIN)/python -m hera_flows.config_reference > docs/configuration.md
	$(BIN)/python -m benchmarks.triage_corpus --write-docs

# Everything committed that a test or `check-generated` compares with what the code produces.
golden: generate docs
	$(BIN)/python examples/training/pipeline.py

bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .agents .tools .pytest_cache build *.egg-info
