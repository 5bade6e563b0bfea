# contentfn — every target creates what it needs (venv, install, model) on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
MODEL_DIR ?= .contentfn/models/all-MiniLM-L6-v2
PYTEST_ARGS ?=

.PHONY: system-deps-test system-deps-demo setup model demo test check lint typecheck bench bench-search bench-models bench-embed bench-ingest bench-cold bench-analyze bench-gpu bench-export bench-obs bench-tracing bench-console bench-load chaos invoke tf-check plan clean up config-doc lock
CLOUD ?= aws
ENV   ?= dev

setup: $(STAMP)

# System packages (apt) a target needs: one dpkg check when all are there; installed when missing
# and this user may, otherwise one message naming each package and the command that installs it.
system-deps-test system-deps-demo: system-deps-%:
	@PYTHON=$(PYTHON) scripts/system-deps.sh $*

# torch is pinned and installed first: it is needed only to export the model, and the pin keeps
# pip from replacing it with a multi-GB CUDA build when another package asks for "torch".
$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,gcp,aws]'
	# checkov pins many libraries of its own: it gets a venv of its own, linked into ours.
	test -x $(VENV)-checkov/bin/checkov || { $(PYTHON) -m venv $(VENV)-checkov && \
	  $(VENV)-checkov/bin/python -m pip install -q --upgrade pip && \
	  $(VENV)-checkov/bin/python -m pip install -q 'checkov>=3.2'; }
	ln -sf "$$(cd $(VENV)-checkov/bin && pwd)/checkov" $(BIN)/checkov
	touch $(STAMP)

# Always asked: the build is idempotent (under a second when the manifest already matches this
# source and recipe), and a recipe change then rebuilds a model made by an earlier one.
model: setup
	$(BIN)/contentfn model build --out $(MODEL_DIR)

demo: system-deps-demo setup model
	$(BIN)/contentfn demo

up: system-deps-demo setup model
	$(BIN)/contentfn local up

test: system-deps-test setup model
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check shared functions local infra tests
	$(BIN)/ruff format --check shared functions local infra tests

typecheck: setup
	$(BIN)/mypy

check: lint typecheck

bench: bench-embed bench-ingest bench-search bench-cold bench-analyze bench-gpu bench-export bench-models bench-obs bench-tracing bench-console bench-load

bench-search: setup model
	$(BIN)/python -m tests.bench.bench_search

bench-models: setup model
	$(BIN)/python -m tests.bench.bench_models

# Span export on (10% sampling, a collector process) vs off, interleaved: search, ingest, pipeline.
bench-tracing: setup model
	$(BIN)/python -m tests.bench.bench_tracing

# The console's Search page in headless Chromium over the full catalogue: query to results on screen.
bench-console: system-deps-test setup model
	$(BIN)/python -m tests.bench.bench_console

bench-embed: setup model
	$(BIN)/python -m tests.bench.bench_embed

bench-ingest: setup model
	$(BIN)/python -m tests.bench.bench_ingest

bench-analyze: setup model
	$(BIN)/python -m tests.bench.bench_analyze

bench-gpu: setup
	$(BIN)/python -m tests.bench.bench_gpu

# A real Prometheus scrapes the local stack at work; every dashboard panel and alert rule must have data.
bench-obs: system-deps-test setup model
	$(BIN)/python -m tests.bench.bench_obs

# The local stack as one process per role under scheduled faults; see docs/chaos.md.
#   make chaos CHAOS_ARGS="--tracks 2000 --images 50"
CHAOS_ARGS ?=
chaos: system-deps-test setup model
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

bench-cold: setup model
	$(BIN)/python -m tests.bench.bench_cold

bench-load: setup model
	$(BIN)/python -m tests.bench.bench_load

bench-export: setup
	$(BIN)/python -m tests.bench.bench_export

# Run one cloud entry point on one real-format payload against the local stack:
#   make invoke FN=ingest EVENT=events/aws_s3_object_created.json CLOUD=aws
invoke: setup model
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=ingest|embed|api EVENT=events/<file>.json [CLOUD=aws|gcp]"; exit 2; }
	$(BIN)/python -m local.invoke --fn $(FN) --event $(EVENT) $(if $(CLOUD),--cloud $(CLOUD))

# docs/configuration.md from the Settings classes (a test fails when the committed file is stale).
config-doc: setup
	$(BIN)/python -m local.config_doc

# The images' hash-pinned locks, resolved from pyproject.toml for each image's platform (needs PyPI).
lock: setup
	$(BIN)/python -m local.lock

# Terraform: fmt, validate (AWS provider from the local filesystem mirror, found at run time), checkov.
tf-check: setup
	CHECKOV=$(BIN)/checkov terraform/scripts/tf.sh check

# make plan CLOUD=aws|gcp ENV=dev|prod
plan:
	terraform/scripts/tf.sh plan $(CLOUD) $(ENV)

clean:
	rm -rf $(VENV) $(VENV)-checkov .contentfn .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
