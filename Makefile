# The README's two commands: `make demo` and `make test`. Each installs what it needs:
# a Python venv (.venv, with uv when available, else pip) and Azurite (npm, into ./node_modules).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: demo test lint typecheck install clean

$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then \
		uv pip install --python $(BIN)/python -q -r requirements.txt -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -r requirements.txt -e '.[dev]'; \
	fi
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@touch $@

install: $(STAMP) $(NODE_STAMP)

demo: install
	$(BIN)/p2c demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/pyright

test: install lint typecheck
	$(BIN)/pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) node_modules .p2c
