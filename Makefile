# Two commands: `make run` serves the product, `make test` runs the suite. Both set up .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run with production-like settings (DEBUG off) but plain HTTP on loopback.
TEST_ENV := SECRET_KEY=test-secret-key-not-for-production HTTPS_ONLY=0 DEBUG=0

.PHONY: install run serve test bench faults lint format train-detector

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo --if-empty
	DEBUG=1 $(BIN)/python manage.py serve_demo --host $(HOST) --port $(PORT)

# The production stack on one node (Procfile, honcho): WEB_CONCURRENCY uvicorn processes, a Celery
# worker and beat against DATABASE_URL / REDIS_URL. Ctrl-C or SIGTERM stops it gracefully.
METRICS_DIR ?= /tmp/live-escalation-metrics-$(PORT)
# Every setting is checked first (one line naming a bad one, exit 2). honcho replaces the shell
# (exec), so a SIGTERM to make reaches it: make passes SIGTERM to its child, and a shell in
# between would die and leave the whole stack running.
serve: install
	@test -n "$$DATABASE_URL" && test -n "$$REDIS_URL" || { echo "make serve needs DATABASE_URL and REDIS_URL (see README: Running with PostgreSQL, Redis and a Celery worker)"; exit 2; }
	@PORT="$(PORT)" $(BIN)/python -m config.preflight
	$(BIN)/python manage.py migrate --noinput
	rm -rf "$(METRICS_DIR)" && mkdir -p "$(METRICS_DIR)"
	exec env PROMETHEUS_MULTIPROC_DIR="$(METRICS_DIR)" SERVE_HOST="$(HOST)" \
	  CELERY_BEAT_SCHEDULE="$(METRICS_DIR)/../live-escalation-beat-$(PORT)" \
	  $(BIN)/honcho start --port $(PORT)

test: install
	$(BIN)/lint-imports --no-cache
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(TEST_ENV) $(BIN)/python -m tests.bench $(BENCH_ARGS)

faults: install
	$(TEST_ENV) $(BIN)/pytest tests/faults tests/abuse $(PYTEST_ARGS)

lint: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train-detector: install
	$(TEST_ENV) $(BIN)/python manage.py train_detector
