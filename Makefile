# The README's two commands: `make demo` and `make test`. Each installs what it needs:
# a Python venv (.venv, with uv when available, else pip) and Azurite (npm, into ./node_modules).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov pins many packages; it gets a venv of its own.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: demo test lint typecheck install infra browsers screenshots clean client-venvs lock

# The runtime set comes from requirements.lock (exact versions and hashes: what the tests
# ran on); the CLI, sandbox and dev tools from pyproject on top.
$(STAMP): pyproject.toml requirements.txt requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then \
		uv pip install --python $(BIN)/python -q --require-hashes -r requirements.lock && \
		uv pip install --python $(BIN)/python -q -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install -q --upgrade pip && \
		$(BIN)/python -m pip install -q --require-hashes -r requirements.lock && \
		$(BIN)/python -m pip install -q -e '.[dev]'; \
	fi
	@touch $@

# Refresh the lock after a change to requirements.txt (or to take newer versions within
# its ranges: add --upgrade), then run `make test` on it before committing both.
lock: $(STAMP)
	$(BIN)/uv pip compile --universal --generate-hashes --python-version 3.11 --no-header --quiet \
		requirements.txt -o requirements.lock

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@touch $@

# checkov pins pycep-parser 0.5.1, which predates Bicep's fail(); 0.7.1 parses it and checkov
# runs unchanged on it (tools/check_infra.py fails on any parse error, so a mismatch shows).
$(INFRA_STAMP): Makefile
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install -q --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install -q 'checkov>=3.2,<4'
	$(INFRA_VENV)/bin/python -m pip install -q --no-deps 'pycep-parser==0.7.1'
	@touch $@

install: $(STAMP) $(NODE_STAMP)

# The console's browser tests drive Debian's own Chromium and its driver (no browser
# download from elsewhere); installed here when missing (as root, as CI runs).
browsers:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# docs/screenshots/console-*.png, from the browser test (a plain test run writes them to a temporary folder).
screenshots: install browsers
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -p no:cacheprovider -q tests/e2e/test_console.py

infra: $(INFRA_STAMP)
	$(INFRA_VENV)/bin/python tools/check_infra.py

demo: install
	$(BIN)/p2c demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/pyright

test: install browsers lint typecheck infra
	$(BIN)/pytest -p no:cacheprovider -n 2

# Client libraries that cannot share .venv (tests/sandbox/client_venv.py says why), in .venv-clients/.
client-venvs: install
	$(BIN)/python -m tests.sandbox.client_venv

clean:
	rm -rf $(VENV) $(INFRA_VENV) .venv-clients node_modules .p2c
