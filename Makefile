# fmkeras — every target sets itself up first (venv, package + deps, Debian's Fashion-MNIST).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FMKERAS := $(VENV)/bin/fmkeras
# Empty: each command starts from the default for its data and machine (fmkeras.recipes.default_recipe):
# cnn_fashion, or cnn_fashion_fast where training runs in float32 on the CPU (no GPU, no native bfloat16).
RECIPE ?=
RECIPE_FLAG = $(if $(RECIPE),--recipe=$(RECIPE))
EPOCHS ?=
ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist processes: the tests leave one of the 2 cores idle, so 2 halves the wall time (0 = serial).
PYTEST_WORKERS ?= 2
FASHION_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install train test bench clean fashion-mnist help

help:
	@echo "make train [RECIPE=cnn_fashion|cnn_fashion_fast|lenet|...] [EPOCHS=N] [ARGS='--set=train.batch_size=64']"
	@echo "make train-photos [PHOTOS=DIR] | make predict-photos [PHOTOS=DIR]"
	@echo "make test | make bench | make install | make clean"

install: $(VENV)/.installed fashion-mnist

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Debian's package when apt-get and root (or sudo) are there; otherwise fmkeras downloads Fashion-MNIST
# the keras.datasets way on first use (~/.keras/datasets/fashion-mnist, SHA-256 checked).
fashion-mnist:
	@test -f $(FASHION_DIR)/train-images-idx3-ubyte.gz || \
	  if command -v apt-get >/dev/null && { [ -z "$(SUDO)" ] || sudo -n true 2>/dev/null; }; then \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "no apt-get or root here: Fashion-MNIST will be downloaded via keras.datasets on first use"; fi

train: install
	$(FMKERAS) train $(RECIPE_FLAG) $(if $(EPOCHS),--epochs=$(EPOCHS)) $(ARGS)

test: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: install
	@failed=""; for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || failed="$$failed $$script"; done; \
	  if [ -n "$$failed" ]; then echo "benchmarks that failed or missed their target:$$failed"; exit 1; fi

clean:
	rm -rf runs build dist *.egg-info .pytest_cache
	find saved_models -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# --- backbones, transfer, recipes ---
.PHONY: list bench-transfer

list: install
	$(FMKERAS) list

bench-transfer: install
	$(PY) benchmarks/transfer.py $(ARGS)

# --- input pipeline ---------------------------------------------------------------------
PREVIEW_OUT ?= augment_preview.png
.PHONY: bench-pipeline preview mosaics

bench-pipeline: install
	$(PY) benchmarks/pipeline.py $(ARGS)

# Multi-label images: 2x2 Fashion-MNIST mosaics + labels.csv (data.source=multilabel:data/mosaics/labels.csv).
MOSAICS_DIR ?= data/mosaics
mosaics: install
	$(PY) -m fmkeras.data.mosaic --out $(MOSAICS_DIR) --train 20000 --test 4000 --seed 0 $(ARGS)

preview: install
	$(FMKERAS) data preview $(RECIPE_FLAG) --preview_out=$(PREVIEW_OUT) $(ARGS)

# --- serving: REST server over saved_models/<MODEL>, TFLite export of a run ---
# default: what `make train` exports (saved_models/<recipe name>), RECIPE's or this machine's default recipe's
MODEL ?= $(or $(RECIPE),$(shell $(PY) -c "from fmkeras.recipes import default_recipe; print(default_recipe())" 2>/dev/null))
PORT ?= 8501
QUANTIZE ?= int8
.PHONY: serve tflite
serve: install
	$(FMKERAS) serve --model_base_path=saved_models/$(MODEL) --port=$(PORT) $(ARGS)

tflite: install
	@test -n "$(RUN)" || (echo "usage: make tflite RUN=runs/<run dir> [QUANTIZE=int8|dynamic|float16|none]"; exit 2)
	$(FMKERAS) export --run_dir=$(RUN) --format=tflite --quantize=$(QUANTIZE) $(ARGS)

# --- tuning and distributed training ---
TUNE_RECIPE ?= cnn_fashion_tune
WORKERS ?= 2
.PHONY: tune train-multiworker

# Resumable keras-tuner search: rerunning continues where an interrupted search stopped.
tune: install
	$(FMKERAS) tune --recipe=$(TUNE_RECIPE) $(ARGS)

# $(WORKERS) multi-worker processes on 127.0.0.1 (TF_CONFIG per process) sharing one run directory;
# kill one and rerun: training resumes from the last backup (distribute.backup_every_steps).
train-multiworker: install
	@base=$$(( 20000 + $$$$ % 20000 )); run_dir=runs/$(or $(RECIPE),default)-multiworker; \
	cluster=$$($(PY) -c "import json; print(json.dumps(['127.0.0.1:%d' % ($$base + i) for i in range($(WORKERS))]))"); \
	for i in $$(seq 0 $$(( $(WORKERS) - 1 ))); do \
	  TF_CONFIG="{\"cluster\": {\"worker\": $$cluster}, \"task\": {\"type\": \"worker\", \"index\": $$i}}" \
	    $(FMKERAS) train $(RECIPE_FLAG) --strategy=multiworker --run_dir=$$run_dir $(ARGS) & \
	done; wait

# --- Transformers, text and notebooks ---
.PHONY: notebooks text-data text-corpus text-pretrain bench-text bench-lora
NOTEBOOK_ARGS ?=

notebooks: install
	$(PY) notebooks/run.py $(NOTEBOOK_ARGS)

text-data: install
	$(PY) -m fmkeras.data.debian_packages data/debian_packages.csv

# Rewrites the committed text:debian snapshot from this machine's apt lists; put the printed sha256 into
# SNAPSHOT_SHA256 (fmkeras/data/debian_snapshot.py) and re-measure the text figures.
text-corpus: install
	$(PY) -m fmkeras.data.debian_snapshot fmkeras/data/corpora/debian_packages.jsonl.gz

text-pretrain: install
	$(PY) -m fmkeras.pretrain.text_mlm --out=runs/text_pretrain $(ARGS)

bench-text: install
	$(PY) benchmarks/text.py $(ARGS)

bench-lora: install
	$(PY) benchmarks/lora.py $(ARGS)

# --- multi-label images (data: make mosaics) ---
.PHONY: bench-multilabel

bench-multilabel: install
	$(PY) benchmarks/multilabel.py --out benchmarks/results/multilabel.json $(ARGS)

# --- self-supervised pretraining, low-label evaluation, distillation, adversarial training ---
.PHONY: pretrain bench-low-label bench-robust-distill
PRETRAIN_EPOCHS ?= 5

pretrain: install
	$(FMKERAS) pretrain $(RECIPE_FLAG) --pretrain_epochs=$(PRETRAIN_EPOCHS) $(ARGS)

bench-low-label: install
	$(PY) benchmarks/low_label.py $(ARGS)

bench-robust-distill: install
	$(PY) benchmarks/robust_distill.py $(ARGS)

# --- reliability: kill/resume chains, torn checkpoints, hostile model files, weight hashes,
# determinism and SavedModel parity. Prints a JSON scoreboard; fails if any scenario fails.
.PHONY: reliability
reliability: install
	$(PY) -m reliability $(ARGS)

# --- low-label oracle ceiling: the same backbone pretrained SUPERVISED (labels of the other 59.4k training
# images) beside SimCLR, probe + fine-tune on the same 600 labels; an upper bound, not an SSL result (~20 min).
.PHONY: bench-low-label-ceiling
bench-low-label-ceiling: install
	mkdir -p benchmarks/results
	$(PY) benchmarks/low_label.py --ceiling $(ARGS) > benchmarks/results/low_label_ceiling.json.tmp
	mv benchmarks/results/low_label_ceiling.json.tmp benchmarks/results/low_label_ceiling.json
	cat benchmarks/results/low_label_ceiling.json

# --- photos: an ImageNet-pretrained EfficientNet-Lite0 transferred to a folder of photos ---
# PHOTOS: a folder with one sub-folder per class (or train/ and val/); default: the ants-vs-bees tutorial photos.
PHOTOS ?= ../shared/data/hymenoptera
.PHONY: train-photos predict-photos bench-photos bench-low-label-photos
train-photos: install
	$(FMKERAS) train --data=folder:$(PHOTOS) $(ARGS)

predict-photos: install
	$(FMKERAS) predict --model=preset:efficientnet_lite0 --top_k=5 $(ARGS) $(PHOTOS)

bench-photos: install
	$(PY) benchmarks/transfer_photos.py --data=$(PHOTOS) $(ARGS)

bench-low-label-photos: install
	$(PY) benchmarks/low_label.py --protocol photos --data=$(PHOTOS) \
	  --plot=benchmarks/results/low_label_photos.png $(ARGS)

# --- fast training: time to accuracy against keras.io's Simple MNIST convnet, LR range test, pruning ---
.PHONY: bench-time-to-accuracy lr-find bench-prune
# make train's default recipe's figures go to time_to_accuracy.json, a named recipe's to
# time_to_accuracy_<recipe>.json (the JSON's recipe_name says which recipe ran)
TTA_JSON = benchmarks/results/time_to_accuracy$(if $(RECIPE),_$(RECIPE)).json
bench-time-to-accuracy: install
	mkdir -p benchmarks/results
	$(PY) benchmarks/time_to_accuracy.py $(RECIPE_FLAG) --out $(TTA_JSON).tmp $(ARGS); status=$$?; \
	  mv $(TTA_JSON).tmp $(TTA_JSON); exit $$status

lr-find: install
	$(FMKERAS) lr_find $(RECIPE_FLAG) $(ARGS)

bench-prune: install
	$(PY) benchmarks/prune.py $(ARGS)
