# Two commands do all set-up: `make run` (SQLite, web + worker) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test lint install install-dev bench bench-ingest bench-e2e bench-drain bench-quota bench-faults bench-hosts bench-triage

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs run again only when pyproject.toml changed (or .venv is new): the stamps are make targets.
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

# A local .env with freshly generated secrets, kept so that stored data stays decryptable.
.env:
	@$(PYTHON) -c "import secrets, base64; \
	print('SECRET_KEY=' + secrets.token_urlsafe(50)); \
	print('FERNET_KEYS=' + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()); \
	print('DEBUG=0'); print('ALLOWED_HOSTS=127.0.0.1,localhost'); \
	print('PUBLIC_BASE_URL=http://127.0.0.1:8000')" > .env
	@echo "Wrote .env with new SECRET_KEY and FERNET_KEYS (keep it: it decrypts your data)."

run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	rm -rf .metrics  # prometheus_client's per-process files of the last run (/metrics counts from zero)
	@# config/run.py: web and worker (and the sandbox in sandbox mode); Ctrl-C stops every process cleanly.
	exec $(BIN)/python -m config.run

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Benchmarks (tests/bench; loopback only; each prints its figures and appends them, dated, to
# tests/bench/RESULTS.md). PostgreSQL at 127.0.0.1:5432 (BENCH_POSTGRES; databases mlc_bench_* are recreated),
# Redis at 127.0.0.1:6379/14 (BENCH_REDIS_URL, empty to skip). Options: make bench-drain BENCH_ARGS="--events 2000"
bench: bench-ingest bench-e2e bench-drain bench-quota

bench-ingest: install-dev
	$(BIN)/python -m tests.bench.ingest $(BENCH_ARGS)

bench-e2e: install-dev
	$(BIN)/python -m tests.bench.e2e $(BENCH_ARGS)

bench-drain: install-dev
	$(BIN)/python -m tests.bench.drain $(BENCH_ARGS)

# Jira's hourly points quota: points per issue, quota failures, backfill write requests, fairness between tenants.
bench-quota: install-dev
	$(BIN)/python -m tests.bench.quota $(BENCH_ARGS)

# Faults and load on a PostgreSQL server of its own (initdb in a temporary directory; nothing else is touched).
bench-triage: install-dev
	$(BIN)/python -m tests.bench.triage $(BENCH_ARGS)

bench-faults: install-dev
	$(BIN)/python -m tests.bench.faults $(BENCH_ARGS)

# Web on one host and a worker on each of two others, in network namespaces of the run's own (needs root and
# iproute2; says "skipped" otherwise), on a PostgreSQL server of its own.
bench-hosts: install-dev
	$(BIN)/python -m tests.bench.hosts $(BENCH_ARGS)
