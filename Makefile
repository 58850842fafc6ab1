# One entry point for every developer task. Each target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ENV    ?= dev
# The CDK CLI version matches aws-cdk-lib's cloud-assembly schema (see requirements.txt).
CDK    := npx --yes aws-cdk@2.1148.1
# Typed runtime and infrastructure code; lambda/ holds one package per function.
MYPY_TARGETS := app.py app_config stacks cdk_constructs pipeline_callback fargate_task glue_scripts ml_pipeline local_mode bench backtest pipeline_evaluation approval evaluation_job

.PHONY: install test lint unit local bench synth deploy destroy clean check-java check-browser check-pipeline-schema

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java 17 is needed for local Spark. Install it with: sudo apt-get install -y openjdk-17-jre-headless (Debian/Ubuntu) or brew install openjdk@17 (macOS)"; \
	  exit 1; }

# The approval page's browser test drives Debian's Chromium; root on Debian (CI) installs it, others are told how.
check-browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	else \
	  echo "Chromium is needed for the approval page's browser test. Install it with: sudo apt-get install -y chromium chromium-driver (Debian/Ubuntu)"; \
	  exit 1; fi

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy $(wildcard $(MYPY_TARGETS))
	$(PY) -m mypy lambda

test: $(STAMP) check-java check-browser lint
	$(PY) -m pytest

local: $(STAMP) check-java
	$(PY) -m local_mode $(ARGS)

bench: $(STAMP) check-java
	$(PY) -m bench $(ARGS)

# The definition against AWS's published schema, given by path (not committed: its repository has no licence).
check-pipeline-schema: $(STAMP)
	@test -n "$(SCHEMA)" || { echo "usage: make check-pipeline-schema SCHEMA=/path/to/pipeline-definition.schema.json"; exit 2; }
	$(PY) -m ml_pipeline.schema_check --schema "$(SCHEMA)" --env $(ENV)

synth: $(STAMP)
	$(CDK) synth --all -c env=$(ENV) --quiet

deploy: $(STAMP)
	$(CDK) deploy --all -c env=$(ENV)

destroy: $(STAMP)
	$(CDK) destroy --all -c env=$(ENV)

clean:
	rm -rf cdk.out out .pytest_cache .mypy_cache .ruff_cache
