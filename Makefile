# fieldsync: `make run` and `make test` are all a fresh machine needs (Python 3.11 and make).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The PostgreSQL the test suite uses in CI; override to point elsewhere.
FIELDSYNC_TEST_POSTGRES_URL ?= postgresql+asyncpg://root@127.0.0.1:5432/test
export FIELDSYNC_TEST_POSTGRES_URL
# Test processes (pytest-xdist); each builds its own database. `auto`: one per CPU.
TEST_WORKERS ?= auto

.PHONY: screenshots run test test-sqlite test-postgres fuzz lint openapi docs messages migration bench bench-sync bench-photos bench-progress bench-export bench-webhooks bench-alerts bench-phones bench-put bench-targets clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/fieldsync migrate
	$(BIN)/fieldsync seed-demo
	$(BIN)/fieldsync serve

# SQLite always; PostgreSQL when CI is set (then it is required) or when a server answers.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$FIELDSYNC_CHROMIUM" ] \
		|| echo "NOTE: no chromium found: the browser tests (tests/web/test_browser.py) will be SKIPPED (apt install chromium; in CI they fail instead)"
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$CI" ] || $(BIN)/python -m tests.pg_available; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "PostgreSQL is not reachable at $$FIELDSYNC_TEST_POSTGRES_URL: PostgreSQL run skipped (CI=1 makes it required)"; \
	fi

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite =="
	FIELDSYNC_TEST_BACKEND=sqlite $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-postgres: $(STAMP)
	@echo "== test suite on PostgreSQL =="
	FIELDSYNC_TEST_BACKEND=postgresql $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# The OpenAPI fuzzer alone, searching harder than the suite does (4 cases per kind, seed 0):
# `make fuzz FUZZ_EXAMPLES=50 FUZZ_SEED=7` (with FIELDSYNC_TEST_BACKEND=postgresql: on PostgreSQL).
FUZZ_EXAMPLES ?= 25
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	FIELDSYNC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FIELDSYNC_FUZZ_SEED=$(FUZZ_SEED) FIELDSYNC_FUZZ_COVERAGE=all \
		$(BIN)/python -m pytest -n $(TEST_WORKERS) tests/test_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/mypy app
	$(BIN)/lint-imports

openapi: $(STAMP)
	$(BIN)/fieldsync openapi --output openapi/openapi.json

# docs/phone-sync.md from a run of its scenario (tests/docs): the requests and answers are real.
docs: $(STAMP)
	FIELDSYNC_WRITE_DOCS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/docs/test_phone_guide.py

# Add the texts for people that a package's catalog (app/<package>/zh_CN.po) lacks, untranslated.
messages: $(STAMP)
	$(BIN)/python -m tests.i18n_sources

migration: $(STAMP)
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"'; exit 1; }
	$(BIN)/alembic revision --autogenerate -m "$(m)"

# Every benchmark (an hour and a half on the 2-core machine), then issue 15's targets table.
bench: $(STAMP)
	$(BIN)/python bench/list_households.py
	$(BIN)/python bench/sync_ingest.py -c 1
	$(BIN)/python bench/sync_ingest.py -c 8
	$(BIN)/python bench/put_visits.py
	$(BIN)/python bench/photo_upload.py
	$(BIN)/python bench/progress_read.py
	$(BIN)/python bench/export_households.py
	$(BIN)/python bench/webhook_overhead.py
	$(BIN)/python bench/alert_import.py
	$(BIN)/python bench/phones.py
	$(BIN)/python bench/targets.py

# The README's pictures of the web app: the browser tests, saving their screenshots there.
screenshots: $(STAMP)
	FIELDSYNC_SCREENSHOT_DIR=docs/screenshots FIELDSYNC_TEST_BACKEND=sqlite \
		$(BIN)/python -m pytest -p no:randomly tests/web/test_browser.py

# Issue 15's targets against the figures the benchmarks' last runs left in bench/results/.
bench-targets: $(STAMP)
	$(BIN)/python bench/targets.py

# One new visit per PUT under wrk vs the bare /healthz of the same server, 8 and 32 connections;
# on PostgreSQL also with 2 server processes (needs wrk).
bench-put: $(STAMP)
	$(BIN)/python bench/put_visits.py

# Visits/s through POST /sync/batches vs raw inserts of the same rows, SQLite and PostgreSQL.
bench-sync: $(STAMP)
	$(BIN)/python bench/sync_ingest.py -c 1
	$(BIN)/python bench/sync_ingest.py -c 8

# Server memory while a 50 MB photo arrives by tus; 200 KB photos/s by PUT and tus (needs wrk).
bench-photos: $(STAMP)
	$(BIN)/python bench/photo_upload.py

# p50/p99 of household and county progress on generated counties of 5,000 and 50,000 households
# (1,000,000 visits, 200,000 income snapshots), SQLite and PostgreSQL (needs wrk). Long: about
# 20 minutes on the 2-core machine, ~30 if county runs reach --max-duration; --quick: ~5.
bench-progress: $(STAMP)
	$(BIN)/python bench/progress_read.py

# Server memory while 5,000 and 50,000 households are exported as CSV and XLSX, SQLite and
# PostgreSQL; each file is opened again (csv, openpyxl) and its rows counted.
bench-export: $(STAMP)
	$(BIN)/python bench/export_households.py

# Sync ingest with no webhook, with 2 webhooks delivering to a loopback receiver and with 2
# whose receiver is down: visits/s, batch latency, time for the outbox to drain.
bench-webhooks: $(STAMP)
	$(BIN)/python bench/webhook_overhead.py

# `fieldsync import-alerts` of a 100,000-row department list against a generated county of
# 30,000 households (100,000 members), SQLite and PostgreSQL: rows/s, wall and CPU time, peak
# memory of the process; then the same file again, which stores nothing new. ~10 minutes.
bench-alerts: $(STAMP)
	$(BIN)/python bench/alert_import.py

# The end of the day: 2,000 phones (one village each) sync 20 records each over slow, lossy
# links, SQLite and PostgreSQL: all in, lost, duplicated, batch p99, server peak RSS, wall time.
# `--quick` (200 phones) in BENCH_ARGS for a short run.
bench-phones: $(STAMP)
	$(BIN)/python bench/phones.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
