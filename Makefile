# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/surge: pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "make: cannot create a virtualenv: on Debian, apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/surge

demo: $(BIN)/surge
	$(BIN)/surge demo

test: $(BIN)/surge lint typecheck pytest

lint:
	$(BIN)/ruff check src tests benchmarks examples

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
