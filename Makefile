# One entry point for every developer task. Each target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# checkov clashes with the project's pins, so it gets a virtualenv of its own (tests/infra runs it).
CHECKOV_VENV := .venv-checkov
ENV    ?= dev
# The CDK CLI version matches aws-cdk-lib's cloud-assembly schema (see requirements.txt). --app uses this
# venv's Python whatever cdk.json says (cdk.json's `python app.py` is for an activated environment).
CDK    := npx --yes aws-cdk@2.1148.1 --app "$(PY) app.py"
# Stacks for deploy/destroy: every stack by default, or construct IDs, e.g. STACKS="Storage DataPrep".
STACKS ?= --all
# Node.js major versions the CDK's jsii runtime supports (its own table); older ones still run but are
# past end of life, so the check below says so in one line and the 11-line jsii banner is silenced.
NODE_SUPPORTED := 22 24
NODE_MINIMUM   := 20
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20
# Typed runtime and infrastructure code; lambda/ holds one package per function.
MYPY_TARGETS := app.py app_config stacks cdk_constructs pipeline_callback fargate_task glue_scripts ml_pipeline local_mode bench backtest pipeline_evaluation approval evaluation_job streaming_cli

.PHONY: install test lint unit local bench backtest synth deploy destroy clean check-java check-node check-browser lambda-deps check-pipeline-schema

$(STAMP): requirements.txt requirements-dev.txt requirements-checkov.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(STAMP)

# After this, synth needs no network: every Lambda's dependencies are cached by requirements hash.
install: $(STAMP) lambda-deps

lambda-deps: $(STAMP)
	@$(PY) -m cdk_constructs.lambda_dependencies

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java 17 is needed for local Spark. Install it with: sudo apt-get install -y openjdk-17-jre-headless (Debian/Ubuntu) or brew install openjdk@17 (macOS)"; \
	  exit 1; }

# The CDK (aws-cdk-lib's jsii runtime) runs on Node.js: synth, the infrastructure tests, deploy.
check-node:
	@command -v node >/dev/null 2>&1 || { \
	  echo "Node.js 20 or newer is needed by the CDK (synth, infrastructure tests, deploy). Install Node.js 22 or 24 (LTS) from https://nodejs.org/en/download (Linux, macOS, Windows), or: brew install node@22 (macOS), winget install OpenJS.NodeJS.LTS (Windows)"; \
	  exit 1; }
	@major=$$(node -p 'process.versions.node.split(".")[0]'); \
	if [ "$$major" -lt $(NODE_MINIMUM) ]; then \
	  echo "Node.js $$major is too old for the CDK: install Node.js 22 or 24 (LTS) from https://nodejs.org/en/download, or brew install node@22 (macOS)"; exit 1; \
	elif [ "$$major" -lt 22 ]; then \
	  echo "note: Node.js $$major is past its end of life; the CDK's jsii runtime supports Node.js 22 and 24 (LTS): upgrade when you can (jsii's 11-line banner about it is silenced)"; \
	elif ! echo " $(NODE_SUPPORTED) " | grep -q " $$major "; then \
	  echo "note: the CDK's jsii runtime lists Node.js 22 and 24 (LTS) as supported, not $$major"; \
	fi

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

test: $(STAMP) check-java check-node check-browser lint
	$(PY) -m pytest

# The fast tests: no Spark, no end-to-end runs, no synth of whole apps (see the markers in pyproject.toml).
unit: $(STAMP) check-node
	$(PY) -m pytest -m "not spark and not e2e and not slow" $(ARGS)

local: $(STAMP) check-java
	$(PY) -m local_mode $(ARGS)

bench: $(STAMP) check-java
	$(PY) -m bench $(ARGS)

# make backtest ARGS="--detector streaming|pipeline --series PATH --out DIR [--labels FILE] [--feedback FILE]"
backtest: $(STAMP)
	$(PY) -m backtest $(ARGS)

# The definition against AWS's published schema, given by path (not committed: its repository has no licence).
check-pipeline-schema: $(STAMP)
	@test -n "$(SCHEMA)" || { echo "usage: make check-pipeline-schema SCHEMA=/path/to/pipeline-definition.schema.json"; exit 2; }
	$(PY) -m ml_pipeline.schema_check --schema "$(SCHEMA)" --env $(ENV)

# `cdk synth` synthesizes every stack (it has no --all); --quiet keeps the templates out of the terminal.
synth: $(STAMP) check-node lambda-deps
	$(CDK) synth -c env=$(ENV) --quiet

deploy: $(STAMP) check-node lambda-deps
	$(CDK) deploy $(STACKS) -c env=$(ENV)

destroy: $(STAMP) check-node
	$(CDK) destroy $(STACKS) -c env=$(ENV)

# Keeps .cache/ (the Lambda dependencies), so synth stays offline after a clean.
clean:
	rm -rf cdk.out out .pytest_cache .mypy_cache .ruff_cache
