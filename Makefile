# The two commands of the README: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest dovecot chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## make run: set up and start Postroom on embedded defaults (SQLite and attachments in ./postroom-data).
run: $(STAMP)
	$(BIN)/postroom serve

## make test: set up, then lint, type-check and run every test against real peers on loopback.
test: $(STAMP) dovecot chromium lint typecheck pytest

# Dovecot is a real peer of the tests. Install it when missing and we may (root); otherwise the
# Dovecot tests skip loudly, except under CI=true where a missing Dovecot fails the run.
dovecot:
	@if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Dovecot (dovecot-imapd dovecot-pop3d) for the integration tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd dovecot-pop3d >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd dovecot-pop3d >/dev/null; }; \
	  elif [ "$$CI" = true ]; then \
	    echo "ERROR: Dovecot is missing and cannot be installed (not root): CI must run the Dovecot tests" >&2; exit 1; \
	  else \
	    echo "#####################################################################"; \
	    echo "# WARNING: Dovecot is missing and cannot be installed (not root).    #"; \
	    echo "# The IMAP/POP3 integration tests will be SKIPPED.                  #"; \
	    echo "# Install it with: sudo apt-get install dovecot-imapd dovecot-pop3d #"; \
	    echo "#####################################################################"; \
	  fi; \
	fi

# Chromium is the browser of the web app's end-to-end tests (Playwright drives Debian's package by its
# path; Playwright's own browser download is never used). Installed like Dovecot; required under CI=true.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium (chromium) for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  elif [ "$$CI" = true ]; then \
	    echo "ERROR: Chromium is missing and cannot be installed (not root): CI must run the browser tests" >&2; exit 1; \
	  else \
	    echo "WARNING: Chromium is missing and cannot be installed (not root): the browser tests will be SKIPPED."; \
	    echo "Install it with: sudo apt-get install chromium"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python bench/bench_import.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
