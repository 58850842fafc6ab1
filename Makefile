# One entry point for every developer task. Each target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# checkov clashes with the project's pins, so it gets a virtualenv of its own (tests/infra runs it).
CHECKOV_VENV := .venv-checkov
ENV    ?= dev
# The CDK CLI version matches aws-cdk-lib's cloud-assembly schema (see requirements.txt).
CDK    := npx --yes aws-cdk@2.1148.1
# Typed runtime and infrastructure code; lambda/ holds one package per function.
MYPY_TARGETS := app.py app_config stacks cdk_constructs pipeline_callback fargate_task glue_scripts ml_pipeline local_mode bench backtest pipeline_evaluation

.PHONY: install test lint unit local bench synth deploy destroy clean check-java

$(STAMP): requirements.txt requirements-dev.txt requirements-checkov.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(STAMP)

install: $(STAMP)

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java 17 is needed for local Spark. Install it with: sudo apt-get install -y openjdk-17-jre-headless (Debian/Ubuntu) or brew install openjdk@17 (macOS)"; \
	  exit 1; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy $(wildcard $(MYPY_TARGETS))
	$(PY) -m mypy lambda

test: $(STAMP) check-java lint
	$(PY) -m pytest

local: $(STAMP) check-java
	$(PY) -m local_mode $(ARGS)

bench: $(STAMP) check-java
	$(PY) -m bench $(ARGS)

synth: $(STAMP)
	$(CDK) synth --all -c env=$(ENV) --quiet

deploy: $(STAMP)
	$(CDK) deploy --all -c env=$(ENV)

destroy: $(STAMP)
	$(CDK) destroy --all -c env=$(ENV)

clean:
	rm -rf cdk.out out .pytest_cache .mypy_cache .ruff_cache
