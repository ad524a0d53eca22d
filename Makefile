# partnermesh — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Parallel test workers (pytest-xdist; each file runs whole on one worker, with its own
# nats-server and databases; most tests wait on real servers, so three keep two cores busy).
# Files are handed out longest first (tests/support/scheduling.py), so no long file starts
# last. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
TEST_DIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install run test test-quick lint format bench bench-scale contracts release clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install partnermesh with its dev tools
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

PORT_OFFSET ?= 0
run: install ## Run the whole mesh locally (seeded demo); `make run PORT_OFFSET=100` moves every port
	$(BIN)/partnermesh up --port-offset $(PORT_OFFSET)

test: install ## Run the test suite (PostgreSQL too when PARTNERMESH_TEST_POSTGRES_URL is set)
	$(BIN)/python -m pytest $(TEST_DIST) $(PYTEST_ARGS)

test-quick: install ## The suite without tests marked slow (processes, clusters, fault drills, fuzzing)
	$(BIN)/python -m pytest $(TEST_DIST) -m "not slow" $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## Run the benchmarks; figures (ratios vs same-run baselines) go to bench-results.json
	$(BIN)/python -m bench --out bench-results.json $(BENCH_ARGS)

bench-scale: install ## Pages at 1k/10k/100k people (PM_BENCH_POSTGRES_URL adds PostgreSQL); bench-scale-results.json
	$(BIN)/python -m bench.scale --out bench-scale-results.json $(BENCH_ARGS)

contracts: install ## Export JSON Schema + AsyncAPI + OpenAPI into contracts/generated/
	$(BIN)/python -m deploy.contracts contracts/generated

release: install ## Build the wheel and sdist into dist/ (and the image where a container engine runs)
	$(BIN)/python -m deploy.release build --out dist

clean: ## Remove local state (var/), caches and the virtualenv
	rm -rf var .venv .pytest_cache .mypy_cache .ruff_cache bench-results.json bench-scale-results.json test-artifacts dist build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
