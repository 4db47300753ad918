# Conveniences over the .venv tools. The real entry points are
# `bash scripts/test.sh` (set-up + every check) and `bash scripts/demo.sh`.

BIN := .venv/bin
PYTEST_ARGS ?=

.PHONY: help setup check lint types test fix demo

help:
	@echo "make setup   system packages (as root), .venv, pip install -e '.[test]'"
	@echo "make check   everything, as CI does: bash scripts/test.sh"
	@echo "make lint    ruff check, ruff format --check, lint-imports"
	@echo "make types   mypy (strict)"
	@echo "make test    pytest; extra arguments in PYTEST_ARGS='tests/unit -x'"
	@echo "make fix     ruff check --fix, ruff format"
	@echo "make demo    bash scripts/demo.sh"

setup:
	bash -c 'set -euo pipefail; source scripts/_setup.sh; deskhand_setup'

check:
	bash scripts/test.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types:
	$(BIN)/mypy

test:
	env -u PYTHONASYNCIODEBUG QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

fix:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo:
	bash scripts/demo.sh
