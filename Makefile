# Two entry points: `make demo` (set up, then run the whole pipeline on mock data) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo

.PHONY: demo test venv clean

$(BIN)/specsift: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[all]"
	touch $(BIN)/specsift

venv: $(BIN)/specsift

demo: venv
	$(BIN)/specsift demo --out $(DEMO_DIR)

test: venv
	$(BIN)/python -m pytest -q -rs

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
