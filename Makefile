# Two commands for a newcomer: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# ONNX Runtime build: onnxruntime-gpu also runs on CPU (and proves the CUDA provider check);
# set ORT=cpu for the smaller CPU-only wheel. macOS has no onnxruntime-gpu wheels, so there cpu is the default.
ORT    ?= $(if $(filter Darwin,$(shell uname -s)),cpu,gpu)
# Accelerator: cpu (default: the small CPU torch, what CI installs) or cuda: `make venv ACCEL=cuda` installs
# torch's CUDA build from PyPI (its Linux wheel, which pulls the nvidia-* CUDA/cuDNN wheels; the local
# +cpu wheel is excluded) and onnxruntime-gpu with its [cuda,cudnn] extras (the CUDA runtime and cuDNN
# it was built against), so the CUDA and TensorRT providers load without a system CUDA install.
ACCEL  ?= cpu
ifeq ($(ACCEL),cpu)
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed-$(ORT)
else ifeq ($(ACCEL),cuda)
ORT    := gpu
TORCH  := torch==2.13.0,!=2.13.0+cpu
STAMP  := $(VENV)/.installed-cuda
else
$(error ACCEL must be cpu or cuda; got '$(ACCEL)'. Use `make venv` (CPU) or `make venv ACCEL=cuda` (NVIDIA GPU))
endif
PYTEST_ARGS ?=

.PHONY: venv demo lint test test-slow test-all bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt "$(TORCH)"
	$(PIP) install -q -c constraints.txt -e ".[$(ORT),dev]"
ifeq ($(ACCEL),cuda)
	$(PIP) install -q -c constraints.txt "onnxruntime-gpu[cuda,cudnn]"
endif
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(PY) -m audiosep_kit.cli.demo --out demo_out

# The architecture and the code's hygiene: the layer contract (import-linter, in pyproject.toml),
# ruff's lint and format check, and mypy. Part of `make test`, so CI refuses what breaks them.
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check audiosep_kit tests benchmarks
	$(VENV)/bin/ruff format --check audiosep_kit tests benchmarks
	$(VENV)/bin/mypy audiosep_kit

# The everyday suite (about 10 minutes on 2 cores); tests marked slow (full export sweeps, whole-encoder
# compile and AOTInductor conformance, the demo) run in `make test-slow`, and CI runs both.
test: lint
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-json=.benchmarks/latest.json $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo_out .pytest_cache .benchmarks build *.egg-info
