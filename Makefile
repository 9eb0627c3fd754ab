# HotPlex for Python. `make run` and `make test` are the two commands a newcomer needs.
.PHONY: setup setup-run setup-test run test lint typecheck pytest bench bench-gateway clean

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

setup-run:  ## what running needs: venv + editable install, pinned agent CLIs; no system package
	@scripts/setup.sh run

setup-test:  ## what the tests need too: the dev extra, Chromium (apt), PostgreSQL (idempotent)
	@scripts/setup.sh test

setup: setup-test

run: setup-run  ## start the daemon on embedded defaults (SQLite under ~/.local/share/hotplex)
	$(BIN)/hotplex serve

test: setup-test lint typecheck pytest  ## everything CI runs

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest --durations=20 $(PYTEST_ARGS)

bench: setup-test  ## every benchmark: the engine (Claude Code), OpenCode, the gateway
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/opencode.py
	$(BIN)/python bench/gateway.py

bench-gateway: setup-test  ## the gateway benchmark alone (10, 100, 500 WebSocket clients)
	$(BIN)/python bench/gateway.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
