# imgsvc developer interface, and the build recipes `sam build` runs (build-<LogicalId>).
#
#   make venv       .venv from requirements-dev.txt (reruns only when that file changes)
#   make lint       ruff check + ruff format --check
#   make validate   sam validate --lint (cfn-lint warnings fail too)
#   make build      sam build (every function and layer through the build-* targets below)
#   make size       function + layers unzipped sizes from .aws-sam/build (run after build)
#   make unit | integration | e2e | browser | test
#   make local      the local stack (moto server + API Gateway emulation)
#   make sam-local-env    sam's --env-vars file for the running `make local` (.local-stack/)
#   make sam-local-api    sam local start-api (Docker) against the running `make local`
#   make sam-local-check  CI: sam local start-api serves the app from moto (a stand-in image)
#   make bench
#   make deploy     sam deploy (samconfig.toml; the first time: .venv/bin/sam deploy --guided)
#
# sam runs the build-* targets with this file (Metadata ContextPath: . in template.yaml),
# from a scratch copy of the resource's CodeUri/ContentUri, with ARTIFACTS_DIR set. Nothing
# at parse time may have side effects or assume the current directory.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-dev.stamp
PYTEST := $(PY) -m pytest
PYTEST_ARGS ?=
# make test: unit and integration tests in parallel (each test owns its moto); e2e and browser
# tests one at a time (they share one local stack per session).
TEST_WORKERS ?= 2

export SAM_CLI_TELEMETRY := 0
# sam starts make itself for the build-* targets: keep this make's flags and jobserver out of it.
SAM := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam

.PHONY: help venv lint validate build size unit integration e2e browser test local bench deploy clean \
	sam-local-env sam-local-api sam-local-check

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# ------------------------------------------------------------------ developer targets
venv: $(STAMP)

$(STAMP): $(ROOT)/requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	cd $(ROOT) && $(PY) -m pip install --quiet -r requirements-dev.txt  # -e ./client is relative
	touch $@

lint: venv
	$(VENV)/bin/ruff check $(ROOT)
	$(VENV)/bin/ruff format --check $(ROOT)

validate: venv
	cd $(ROOT) && $(SAM) validate --lint

build: venv
	cd $(ROOT) && $(SAM) build

size: venv
	$(PY) $(ROOT)/scripts/size_check.py --build-dir $(ROOT)/.aws-sam/build

unit: venv
	cd $(ROOT) && $(PYTEST) tests/unit $(PYTEST_ARGS)

integration: venv
	cd $(ROOT) && $(PYTEST) tests/integration $(PYTEST_ARGS)

browser: venv
	cd $(ROOT) && { $(PYTEST) tests/browser $(PYTEST_ARGS) || [ $$? -eq 5 ]; }

# pytest exits 5 when it collects no test (e.g. a -k filter that matches none): not a failure.
e2e: venv
	cd $(ROOT) && { $(PYTEST) tests/e2e $(PYTEST_ARGS) || [ $$? -eq 5 ]; }

# Steps run one after the other even under make -j.
test: venv
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory validate
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory size
	cd $(ROOT) && $(PYTEST) tests/unit tests/integration -n $(TEST_WORKERS) $(PYTEST_ARGS)
	cd $(ROOT) && $(PYTEST) tests/e2e tests/browser $(PYTEST_ARGS)

# Ports from the environment (PORT=3100 AWS_PORT=3101 make local); the ready file (URLs, key,
# resource names) is where imgsvc and other tools look for a running local stack.
PORT ?= 3000
AWS_PORT ?= 3001
LOCAL_READY_FILE ?= $(ROOT)/.local-stack/ready.json
local: venv
	cd $(ROOT) && $(PY) -m local_stack --port $(PORT) --aws-port $(AWS_PORT) \
		--ready-file $(LOCAL_READY_FILE)

# SAM's own emulator against the local stack (scripts/sam_local.py): the env-vars file, the
# API (SAM_LOCAL_ARGS: more options, e.g. --arch x86_64 -- --skip-pull-image; SAM_PORT), and
# the check CI runs (scripts/sam_local_check.sh: installs Docker, starts dockerd if needed).
SAM_PORT ?= 3100
SAM_LOCAL_ARGS ?=
sam-local-env: venv
	cd $(ROOT) && $(PY) -m scripts.sam_local env-vars --ready-file $(LOCAL_READY_FILE)

sam-local-api: venv
	cd $(ROOT) && $(PY) -m scripts.sam_local start-api --ready-file $(LOCAL_READY_FILE) \
		--port $(SAM_PORT) $(SAM_LOCAL_ARGS)

sam-local-check: venv
	cd $(ROOT) && PY=$(PY) ./scripts/sam_local_check.sh

bench: venv
	cd $(ROOT) && $(PY) -m bench

deploy: build
	cd $(ROOT) && $(SAM) deploy

clean:
	rm -rf $(ROOT)/.aws-sam

# ------------------------------------------------------------------ sam build recipes
FUNCTIONS := StatusFunction AnalyzeFunction HistoryFunction UploadsFunction IngestFunction \
	ImagesFunction ImportFunction CropFunction DiffFunction SimilarFunction AsciiFunction \
	StatsFunction WebAppFunction MigrationFunction RenditionFunction
PIP_LAYERS := RuntimeLayer ImagingLayer

.PHONY: $(addprefix build-,$(FUNCTIONS) $(PIP_LAYERS) CoreLayer)

# Wheels for Lambda (python3.13, arm64), whatever this machine is. Pillow 11.3+ publishes
# only manylinux_2_28 aarch64 wheels; the python3.13 runtime (Amazon Linux 2023) has glibc 2.34.
# --no-deps: requirements.txt lists the whole closure (boto3/botocore come from the runtime).
# --no-compile: this interpreter's .pyc files would be for the wrong Python (compile_bytecode
# below writes python3.13's).
# LAMBDA_ARCH=x86_64 (environment) builds x86_64 wheels instead: only for the x86_64 copy of
# the template that scripts/sam_local.py runs under `sam local` (never deployed).
LAMBDA_ARCH ?= arm64
WHEEL_ARCH := $(if $(filter x86_64,$(LAMBDA_ARCH)),x86_64,$(if $(filter arm64,$(LAMBDA_ARCH)),aarch64,$(error LAMBDA_ARCH must be arm64 or x86_64, not $(LAMBDA_ARCH))))
PIP_LAMBDA := $(firstword $(wildcard $(PY)) python3) -m pip install --quiet \
	--disable-pip-version-check --no-compile --no-deps --only-binary=:all: \
	--implementation cp --python-version 3.13 \
	--platform manylinux_2_28_$(WHEEL_ARCH) --platform manylinux2014_$(WHEEL_ARCH)

define require_artifacts_dir
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build runs this target" >&2; exit 1; }
endef

define strip_pycache
	find "$(ARTIFACTS_DIR)" -depth -name __pycache__ -type d -exec rm -rf {} +
endef

# Lambda cannot write .pyc files into /opt: without shipped bytecode every cold start compiles
# every layer module. Compiled by a python3.13 when one is here (PYTHON313=..., python3.13 on
# PATH, or pyenv's; `sam build --use-container` has one), else skipped: the build says which.
# unchecked-hash: zipping changes file times, so timestamp-checked .pyc would be ignored.
# Run after strip_pycache, which would delete them.
define compile_bytecode
	@py=""; \
	for c in $${PYTHON313:-} "$$(command -v python3.13 || true)" \
	    "$${PYENV_ROOT:-$${HOME:-}/.pyenv}"/versions/3.13*/bin/python3.13; do \
	  if [ -n "$$c" ] && [ -x "$$c" ] && \
	      "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
	    py=$$c; break; \
	  fi; \
	done; \
	if [ -n "$$py" ]; then \
	  "$$py" -m compileall -q --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)/python"; \
	  echo "bytecode: compiled $(ARTIFACTS_DIR)/python with $$py ($$("$$py" -V 2>&1))"; \
	else \
	  echo "bytecode: no python3.13 found, $(ARTIFACTS_DIR)/python ships source only"; \
	fi
endef

# Functions: the handler source only (cwd: a copy of functions/<dir>/).
$(addprefix build-,$(FUNCTIONS)):
	$(require_artifacts_dir)
	cp -R ./. "$(ARTIFACTS_DIR)/"
	$(strip_pycache)

# RuntimeLayer, ImagingLayer (cwd: a copy of layers/<name>/ with its requirements.txt).
# Test suites shipped inside packages (numpy's: ~8 MiB) are dropped.
$(addprefix build-,$(PIP_LAYERS)):
	$(require_artifacts_dir)
	$(PIP_LAMBDA) --target "$(ARTIFACTS_DIR)/python" -r requirements.txt
	rm -rf "$(ARTIFACTS_DIR)/python/bin"
	find "$(ARTIFACTS_DIR)/python" -depth -type d -name tests -exec rm -rf {} +
	$(strip_pycache)
	$(compile_bytecode)

# CoreLayer: the imgsvc package (cwd: a copy of layers/core/).
build-CoreLayer:
	$(require_artifacts_dir)
	mkdir -p "$(ARTIFACTS_DIR)/python"
	cp -R python/imgsvc "$(ARTIFACTS_DIR)/python/"
	$(strip_pycache)
	$(compile_bytecode)
