# Two commands do all setup on a fresh machine with Python >= 3.10 and pip:
#   make tour   -> .venv, install, execute every notebook headless, build/tour/index.html (an offline
#                  site: prints where it is and how long each notebook took)
#   make test   -> .venv, install, pytest (unit, Brian2, the tour once with every panel swept, its pages
#                  and JupyterLab in a real Chromium when one is installed, nbval --nbval-lax)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONUNBUFFERED := 1
# Lesson claims and exercise solutions fail the notebook when they stop holding (snnkit/lessons.py).
test: export SNNKIT_STRICT_CLAIMS := 1
# The CPU machines of CI have 2 cores; keep BLAS from oversubscribing them.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
JUPYTER_ROOT := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)

.PHONY: all venv tour test test-fast test-gpu lab bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,brian2]"
	touch $(STAMP)

venv: $(STAMP)

tour: $(STAMP)
	$(BIN)/snnkit tour

test: $(STAMP)
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider

# On a machine with CUDA: pip install -e ".[gpu]" first (or use the conda environment.yml).
test-gpu:
	SNNKIT_BACKEND=cupy $(PYTHON) -m pytest tests -m gpu -p no:cacheprovider

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(JUPYTER_ROOT)

bench:
	$(PYTHON) -m snnkit.cli bench $(NAME)

clean:
	rm -rf build .pytest_cache
