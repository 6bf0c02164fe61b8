# Two commands for a fresh machine with Python 3.10+: `make demo` and `make test`.
# Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo nn-demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The seed examples with their trace tables, then a short custom training loop (wengert.nn CNN
# on digits, ~10 s; its PNG goes to build/demo so the committed full-run outputs stay as they are).
demo: $(STAMP)
	$(PY) examples/seed_examples.py
	$(PY) examples/nn/cnn_digits.py --quick --no-progress --out build/demo

# Only the short wengert.nn CNN run (examples/nn/ has the GAN and the model-function MLP).
nn-demo: $(STAMP)
	$(PY) examples/nn/cnn_digits.py --quick --out build/demo

test: $(STAMP)
	$(PY) -m ruff check src tests examples benchmarks tools
	$(PY) -m pytest

# Benchmarks get their own virtualenv, so the heavy peers (PyTorch CPU, JAX, HIPS autograd)
# never land in .venv.  BENCH_ARGS passes options through: make bench BENCH_ARGS="--quick".
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
