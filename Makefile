# mtl-aug — every command a user needs. Corpus roots come from the environment
# (EMODB_ROOT, RAVDESS_ROOT, IEMOCAP_ROOT, MSP_IMPROV_ROOT, LIBRISPEECH_ROOT, DEMAND_ROOT, NOISE_ROOT).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CORPUS ?= synthetic
SYSTEM ?= mtl_aug
FOLD ?=
SEEDS ?= 3
EXTRA ?=
TRAIN ?= ravdess
TEST ?= emodb
SWEEP ?= experiments/sweeps/loss_weights.yaml
COUNT ?= 4
export PYTHONUNBUFFERED := 1

# Default corpus locations for this workplace's shared data; override by exporting the variables.
SHARED ?= ../shared/data
export EMODB_ROOT ?= $(SHARED)/emodb
export RAVDESS_ROOT ?= $(SHARED)/ravdess
export LIBRISPEECH_ROOT ?= $(SHARED)/librispeech/LibriSpeech
export NOISE_ROOT ?= $(SHARED)/speech_commands
export SYNTHETIC_ROOT ?= .cache/synthetic

.PHONY: install test test-fast prepare synth train demo cv cross noise adversarial paper-tables sweep sweep-offline predict export pretrained bench clean

install: $(VENV)/.installed  ## create .venv and install the project (idempotent)
	@$(PY) -c "import torch, torchaudio, lightning, torchmetrics, librosa, pandas, soundfile, wandb; print(f'torch {torch.__version__} torchaudio {torchaudio.__version__} lightning {lightning.__version__} torchmetrics {torchmetrics.__version__} librosa {librosa.__version__} pandas {pandas.__version__} soundfile {soundfile.__version__} wandb {wandb.__version__}')"

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.14.1 torchaudio==2.11.0
	$(PIP) install -q -c constraints.txt -e '.[dev,onnx]'
	touch $@

test:  ## the whole fast suite
	$(PY) -m pytest -q -ra

synth:  ## generate the synthetic demo corpus and its manifest
	$(PY) -m mtl_aug synth --root $(SYNTHETIC_ROOT)
	$(PY) -m mtl_aug prepare synthetic --root $(SYNTHETIC_ROOT)
	$(PY) -m mtl_aug prepare synthetic_unlabelled --root $(SYNTHETIC_ROOT)

prepare:  ## build manifest + folds: make prepare CORPUS=emodb
	$(PY) -m mtl_aug prepare $(CORPUS)

train:  ## make train CORPUS=emodb SYSTEM=mtl_aug FOLD=03 EXTRA="--model.w_aug=0.5"
	$(PY) -m mtl_aug train --config experiments/base.yaml --config experiments/corpora/$(CORPUS).yaml \
	  --config experiments/systems/$(SYSTEM).yaml $(if $(FOLD),--data.fold=$(FOLD)) $(EXTRA)

demo: synth  ## synthetic corpus → MTL-AUG on one fold → test UAR, WA, confusion matrix
	$(PY) -m mtl_aug train --config experiments/base.yaml --config experiments/corpora/synthetic.yaml \
	  --config experiments/systems/mtl_aug.yaml --config experiments/demo.yaml $(EXTRA)
