# Two commands do all set-up on a fresh machine: `make reproduce` and `make test`.
# The CPU build of torch 2.13.0 is pinned here (a plain `torch` would pull a multi-GB CUDA build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reproduce test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[lab,dev,integrations,ray]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/noisereg reproduce --quick --out results/

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/noisereg bench --write BENCHMARKS.md

clean:
	rm -rf $(VENV) results
