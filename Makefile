# fmkeras — every target sets itself up first (venv, package + deps, Debian's Fashion-MNIST).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMKERAS := $(VENV)/bin/fmkeras
RECIPE ?= cnn_fashion
EPOCHS ?=
ARGS ?=
PYTEST_ARGS ?=
FASHION_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install train test bench clean fashion-mnist help

help:
	@echo "make train [RECIPE=cnn_fashion] [EPOCHS=N] [ARGS='--set=train.batch_size=64']"
	@echo "make test | make bench | make install | make clean"

install: $(VENV)/.installed fashion-mnist

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

fashion-mnist:
	@test -f $(FASHION_DIR)/train-images-idx3-ubyte.gz || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist)

train: install
	$(FMKERAS) train --recipe=$(RECIPE) $(if $(EPOCHS),--epochs=$(EPOCHS)) $(ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf runs build dist *.egg-info .pytest_cache
	find saved_models -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# --- reliability (issue 9): kill/resume chains, torn checkpoints, hostile model files, weight hashes,
# determinism and SavedModel parity. Prints a JSON scoreboard; fails if any scenario fails.
.PHONY: reliability
reliability: install
	$(PY) -m reliability $(ARGS)
