# `make demo` and `make test` work on a fresh machine: the first run creates .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench fuzz clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev,deploy,compress,plots]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m squeezenet.demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(BIN)/.installed
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
