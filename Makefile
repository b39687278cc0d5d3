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

.PHONY: install test prepare synth train demo cv cross noise adversarial paper-tables headline sweep sweep-offline predict export pretrained bench bench-cv bench-inference clean bench-quick

install: $(VENV)/.installed  ## create .venv and install the project (idempotent)
	@$(PY) -c "import torch, torchaudio, lightning, torchmetrics, librosa, pandas, soundfile, wandb; print(f'torch {torch.__version__} torchaudio {torchaudio.__version__} lightning {lightning.__version__} torchmetrics {torchmetrics.__version__} librosa {librosa.__version__} pandas {pandas.__version__} soundfile {soundfile.__version__} wandb {wandb.__version__}')"

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.14.1 torchaudio==2.11.0
	$(PIP) install -q -c constraints.txt -e '.[dev,onnx]'
	# the pre-trained voice encoder's weights (front end option voice_tracks); --no-deps: its own audio
	# helpers need webrtcvad, which the toolkit does not use
	$(PIP) install -q --no-deps resemblyzer==0.1.4
	touch $@

test:  ## the whole fast suite
	$(PY) -m pytest -q -ra

synth:  ## generate the synthetic demo corpus and its manifest
	$(PY) -m mtl_aug synth --root $(SYNTHETIC_ROOT)
	$(PY) -m mtl_aug prepare synthetic --root $(SYNTHETIC_ROOT)
	$(PY) -m mtl_aug prepare synthetic_unlabelled --root $(SYNTHETIC_ROOT)

prepare:  ## build manifest + folds: make prepare CORPUS=emodb
	$(PY) -m mtl_aug prepare $(CORPUS)

train:  ## make train CORPUS=emodb SYSTEM=mtl_aug FOLD=03 EXTRA="--model.w_aug=0.5" (your own corpus: its data_manifests/<name>/config.yaml)
	$(PY) -m mtl_aug train --corpus $(CORPUS) --system $(SYSTEM) $(if $(FOLD),--data.fold=$(FOLD)) $(EXTRA)

demo: synth  ## synthetic corpus → MTL-AUG on one fold → test UAR, WA, confusion matrix
	$(PY) -m mtl_aug train --config experiments/base.yaml --config experiments/corpora/synthetic.yaml \
	  --config experiments/systems/mtl_aug.yaml --config experiments/demo.yaml $(EXTRA)

# Evaluation targets (mtl_aug/evaluation). Variables as in the main Makefile:
# CORPUS, SYSTEM, SEEDS, FOLD (here: a comma list of folds, empty = all), TRAIN, TEST, EXTRA (LightningCLI flags).
# Every target resumes: finished fold x seed runs are skipped, so rerun the same line after an interruption.
NORMALIZE ?= utterance
JOBS ?= auto

cv:  ## every fold x seed: make cv CORPUS=emodb SYSTEM=mtl_aug SEEDS=3 [NORMALIZE=speaker] [JOBS=auto]
	$(PY) -m mtl_aug cv --corpus $(CORPUS) --system $(SYSTEM) --seeds $(SEEDS) --normalize $(NORMALIZE) --jobs $(JOBS) $(if $(FOLD),--folds $(FOLD)) $(if $(EXTRA),-- $(EXTRA))

cross:  ## cross-corpus: make cross TRAIN=ravdess TEST=emodb SYSTEM=mtl_aug [NORMALIZE=speaker]
	$(PY) -m mtl_aug cross --train $(TRAIN) --test $(TEST) --system $(SYSTEM) --seeds $(SEEDS) --normalize $(NORMALIZE) $(if $(EXTRA),-- $(EXTRA))

noise:  ## UAR at clean/20/10/0 dB real noise, reusing the cv checkpoints: make noise CORPUS=emodb SYSTEM=mtl_aug [NORMALIZE=speaker]
	$(PY) -m mtl_aug noise --corpus $(CORPUS) --system $(SYSTEM) --seeds $(SEEDS) --normalize $(NORMALIZE) $(if $(FOLD),--folds $(FOLD)) $(if $(EXTRA),-- $(EXTRA))

adversarial:  ## UAR under FGSM/PGD at 40/30/20 dB: make adversarial CORPUS=emodb SYSTEM=mtl_aug [NORMALIZE=speaker]
	$(PY) -m mtl_aug adversarial --corpus $(CORPUS) --system $(SYSTEM) --seeds $(SEEDS) --normalize $(NORMALIZE) $(if $(FOLD),--folds $(FOLD)) $(if $(EXTRA),-- $(EXTRA))

paper-tables:  ## every paper table for the corpora present -> experiments/results/tables.md (make paper-tables ARGS=--dry-run)
	$(PY) -m mtl_aug paper-tables --seeds $(SEEDS) $(ARGS) $(if $(EXTRA),-- $(EXTRA))

headline:  ## README.md's results table from the result files (rows/columns: experiments/results/headline.yaml)
	$(PY) -m mtl_aug headline

# --- Inference, export, release models (docs/inference.md). CORPUS, SYSTEM, EXTRA as at the top of
# the Makefile; 
AUDIO ?=
CKPT ?=
FORMAT ?= onnx
OUT ?= model.$(if $(filter onnx,$(FORMAT)),onnx,pt)
EPOCHS ?=

predict:  ## emotion of files/folders/globs: make predict AUDIO="recordings/ call.wav" CKPT=pretrained/emodb/model.ckpt [ARGS="--csv out.csv"]
	$(PY) -m mtl_aug predict $(AUDIO) --ckpt $(CKPT) $(ARGS)

export:  ## one graph wave+lengths -> probabilities, parity-checked: make export CKPT=model.ckpt FORMAT=onnx|torchscript [OUT=model.onnx]
	$(PY) -m mtl_aug export --ckpt $(CKPT) --format $(FORMAT) --out $(OUT)

pretrained:  ## release model on all speakers + model card: make pretrained CORPUS=emodb [SYSTEM=mtl_aug] [EPOCHS=40] [SEEDS=3: a seed ensemble]
	$(PY) -m mtl_aug pretrained --corpus $(CORPUS) --system $(SYSTEM) $(if $(EPOCHS),--max-epochs $(EPOCHS)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(EXTRA),-- $(EXTRA))

bench-inference:  ## real-time factor on 1 CPU thread (eager, TorchScript, ONNX Runtime) for a 10 s utterance
	$(PY) benchmarks/bench_inference.py $(if $(CKPT),--ckpt $(CKPT))

# --- W&B sweeps (docs/sweeps.md). SWEEP and COUNT are already defined at the top of the Makefile:
#   SWEEP ?= experiments/sweeps/loss_weights.yaml
#   COUNT ?= 4
# `sweep` and `sweep-offline` are already in .PHONY.

sweep:  ## create a W&B sweep (server + `wandb login`) and print its agent command: make sweep SWEEP=experiments/sweeps/loss_weights.yaml
	$(PY) -m mtl_aug sweep $(SWEEP) --online

sweep-offline:  ## run a sweep here, no server, resumable, JOBS trials at once: make sweep-offline SWEEP=experiments/sweeps/smoke.yaml COUNT=2
	$(PY) -m mtl_aug sweep $(SWEEP) --count $(COUNT) --jobs $(JOBS) $(EXTRA)

# --- Benchmarks (docs/benchmarks.md).
# ARGS: extra flags of the script, e.g. ARGS="--only training,inference" or ARGS=--candidates.
# FOLD (bench-cv): comma list of folds; fewer than all gives an estimate of the 10-fold time.
BENCH_CORPUS ?= emodb

bench:  ## benchmark suite (~6 min on 2 cores) -> experiments/results/bench.{md,json}: make bench [ARGS="--only training"]
	$(PY) benchmarks/run_all.py $(ARGS)

bench-quick:  ## the suite at tiny sizes on the synthetic corpus (checks code paths; numbers meaningless) -> bench_quick.{md,json}
	$(PY) benchmarks/run_all.py --quick $(ARGS)

bench-cv:  ## wall time of one EMODB-2s LOSO cv run (10 folds, 1 seed: long), cold cache, + cold/warm data setup: make bench-cv [FOLD=03]
	$(PY) benchmarks/bench_cv.py --corpus $(BENCH_CORPUS) --system $(SYSTEM) $(if $(FOLD),--folds $(FOLD)) $(ARGS) $(if $(EXTRA),-- $(EXTRA))
