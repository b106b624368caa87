# Two commands do all set-up: `make run` (SQLite, web + worker) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test lint install install-dev bench-ingest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"

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
	@echo ""
	@echo "  ml-connector: admin at http://127.0.0.1:8000/admin/   health at http://127.0.0.1:8000/healthz/"
	@echo "  First time? Create an operator account:  $(BIN)/python manage.py createsuperuser"
	@echo "  Ctrl-C stops the web server and the worker."
	@echo ""
	$(BIN)/honcho start

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Ingest benchmark: gunicorn + PostgreSQL on 127.0.0.1 (database mlc_bench is recreated), signed FreshBooks
# deliveries vs a trivial view. Options: make bench-ingest BENCH_ARGS="--requests 10000 --workers 4"
bench-ingest: install-dev
	$(BIN)/python -m tests.bench.ingest $(BENCH_ARGS)
