# Tongban (通办) — two commands:
#   make demo    bootstrap .venv, install, migrate, seed the demo city 演示市, serve (with a worker)
#   make test    the whole suite: SQLite, PostgreSQL, headless Chromium
# `make help` lists the rest. GNU make; every recipe is one bash script (-euo pipefail).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
TONGBAN := $(CURDIR)/$(BIN)/tongban
PYTEST := $(BIN)/pytest
# Written after a successful install; older than requirements.lock or pyproject.toml means
# "install again". It lives in the venv, so a new venv always installs.
STAMP := $(VENV)/.tongban-installed
# The runtime data dir (SQLite database, screenshots): var/ at the repo root, wherever a
# command runs from (settings default to ./var of the current directory).
export TONGBAN_DATA_DIR ?= $(CURDIR)/var

.PHONY: help demo install test check-migrations test-sqlite test-postgres test-browser \
	system-packages compile-messages messages bench bench-postgres openfisca lint lock clean distclean

help:
	@echo "make demo      bootstrap .venv, install, migrate, seed the demo city, serve on $(HOST):$(PORT)"
	echo "make test      the whole suite: migrations check, SQLite, PostgreSQL, headless Chromium"
	echo "               (stages alone: make check-migrations | test-sqlite | test-postgres | test-browser;"
	echo "                extra pytest options: make test-sqlite PYTEST_ARGS='-k audit -x')"
	echo "make lint      ruff and mypy"
	echo "make bench     the benchmarks in benchmarks/bench_*.py (on PostgreSQL: make bench-postgres;"
	echo "               the entitlement bench's baseline, openfisca-core, goes into var/bench-openfisca)"
	echo "make messages  extract the zh_Hans message catalogue and compile it"
	echo "make lock      regenerate requirements.lock from pyproject.toml in a clean venv"
	echo "make clean     remove caches and build artifacts (distclean: also .venv and var/)"

# --- the virtualenv --------------------------------------------------------------------

$(BIN)/python:
	@scripts/system-packages.sh venv
	python=$$(scripts/find-python.sh)
	echo "==> creating $(VENV) with $$python ($$("$$python" --version))"
	"$$python" -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	@echo "==> installing requirements.lock and tongban (editable) into $(VENV)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

# --- Debian packages and translations --------------------------------------------------

# Installs what is missing (as root: apt-get update first), or names it and fails.
system-packages:
	@scripts/system-packages.sh postgresql chromium fonts gettext

# The .mo files are build artifacts (git-ignored), compiled from the committed .po files.
compile-messages: install
	@if compgen -G 'src/tongban/locale/*/LC_MESSAGES/*.po' >/dev/null; then
		scripts/system-packages.sh gettext
		cd src/tongban && $(TONGBAN) compilemessages --verbosity 0
	fi

messages: install
	@scripts/system-packages.sh gettext
	cd src/tongban
	$(TONGBAN) makemessages -l zh_Hans --ignore='.venv/*' --no-location --no-obsolete
	$(TONGBAN) compilemessages

# --- the demo --------------------------------------------------------------------------

demo: install compile-messages
	@$(TONGBAN) migrate --no-input
	mkdir -p "$$TONGBAN_DATA_DIR"
	$(TONGBAN) seed-demo | tee "$$TONGBAN_DATA_DIR/demo-logins.txt"
	# The task worker (queued tasks and the schedule) runs beside the server and stops with
	# it: SIGTERM (or the Ctrl-C it shares with the server) lets it finish its current task.
	$(TONGBAN) worker & worker=$$!
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker || true' EXIT
	echo
	echo "==> the demo logins are above (and in $$TONGBAN_DATA_DIR/demo-logins.txt)"
	echo "==> serving http://$(HOST):$(PORT)/ — Ctrl-C stops"
	$(TONGBAN) runserver $(HOST):$(PORT)

# --- the test suite --------------------------------------------------------------------

# Every stage runs, even after one has failed; the summary names each stage's result and
# time, and the exit status is non-zero if any stage failed. The SQLite and PostgreSQL
# stages share nothing and each keeps about one core busy, so they run side by side (their
# output is shown as each finishes, and kept in var/test-logs/).
TEST_STAGES := lint check-migrations test-sqlite+test-postgres test-browser

test: install system-packages compile-messages
	@status=0
	summary=()
	record() {  # stage, result, seconds
		summary+=("$$(printf '  %-17s %-7s %5ss' "$$1" "$$2" "$$3")")
		if [ "$$2" != passed ]; then status=1; fi
	}
	mkdir -p var/test-logs
	for group in $(TEST_STAGES); do
		IFS=+ read -r -a stages <<< "$$group"
		if [ $${#stages[@]} -eq 1 ]; then
			echo "==> $$group"
			start=$$SECONDS
			if $(MAKE) $$group; then result=passed; else result=FAILED; fi
			record "$$group" "$$result" "$$((SECONDS - start))"
			continue
		fi
		echo "==> $${stages[*]} side by side (logs in var/test-logs/)"
		declare -A started=() pids=()
		for stage in "$${stages[@]}"; do
			started[$$stage]=$$SECONDS
			$(MAKE) $$stage > var/test-logs/$$stage.log 2>&1 &
			pids[$$!]=$$stage
		done
		while [ $${#pids[@]} -gt 0 ]; do
			finished=0
			wait -n -p finished "$${!pids[@]}" && result=passed || result=FAILED
			stage=$${pids[$$finished]}
			unset "pids[$$finished]"
			echo "==> $$stage ($$result)"
			cat var/test-logs/$$stage.log
			record "$$stage" "$$result" "$$((SECONDS - started[$$stage]))"
		done
	done
	echo "==> summary"
	printf '%s\n' "$${summary[@]}"
	exit $$status

check-migrations: install
	@env -u DATABASE_URL $(TONGBAN) makemigrations --check --dry-run

test-sqlite: install
	@env -u DATABASE_URL EXPECT_DB_VENDOR=sqlite $(PYTEST) -m "not browser" $(PYTEST_ARGS)

test-postgres: install
	@scripts/system-packages.sh postgresql
	EXPECT_DB_VENDOR=postgresql scripts/with-postgres.sh $(PYTEST) -m "not browser" $(PYTEST_ARGS)

test-browser: install
	@scripts/system-packages.sh chromium fonts
	env -u DATABASE_URL EXPECT_DB_VENDOR=sqlite $(PYTEST) -m browser $(PYTEST_ARGS)

# --- the rest --------------------------------------------------------------------------

# OpenFisca-core, the baseline of the entitlement benchmark, lives in a virtualenv of its
# own: it pins its own numpy and pytest, which must not change the project's.
OPENFISCA_VENV := $(TONGBAN_DATA_DIR)/bench-openfisca

$(OPENFISCA_VENV)/bin/python: | $(BIN)/python
	@echo "==> installing openfisca-core into $(OPENFISCA_VENV) (the entitlement bench's baseline)"
	$(BIN)/python -m venv $(OPENFISCA_VENV)
	$(OPENFISCA_VENV)/bin/pip install --quiet --disable-pip-version-check openfisca-core==46.0.1 pyarrow==26.0.1 \
		|| { echo "==> openfisca-core could not be installed: its rows are skipped"; rm -rf $(OPENFISCA_VENV); }

openfisca: $(OPENFISCA_VENV)/bin/python

bench: install openfisca
	@BENCH_OPENFISCA_PYTHON=$(OPENFISCA_VENV)/bin/python $(BIN)/python benchmarks/run.py

bench-postgres: install openfisca
	@scripts/system-packages.sh postgresql
	BENCH_OPENFISCA_PYTHON=$(OPENFISCA_VENV)/bin/python scripts/with-postgres.sh $(BIN)/python benchmarks/run.py

lint: install
	@status=0
	$(BIN)/ruff check src tests benchmarks || status=1
	$(BIN)/mypy || status=1
	exit $$status

lock:
	@scripts/lock.sh

clean:
	@find . -path ./$(VENV) -prune -o -type d -name __pycache__ -print0 | xargs -0r rm -rf
	find src -name '*.mo' -delete
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info
	rm -rf "$$TONGBAN_DATA_DIR/screenshots" "$$TONGBAN_DATA_DIR/static"

distclean: clean
	@rm -rf $(VENV) "$$TONGBAN_DATA_DIR"
