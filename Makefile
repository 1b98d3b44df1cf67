# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch first, pinned: an unpinned torch requirement pulls several GB of CUDA packages.
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

DEMO_ARGS ?=

.PHONY: install vendor test lint demo space fixtures clean browser bench

install: $(STAMP) vendor

# onnxruntime-web (pinned, integrity-checked npm tarball) for the demo's in-browser click decoding.
vendor: $(STAMP)
	$(BIN)/python scripts/vendor_onnxruntime_web.py

$(STAMP): pyproject.toml packages/sam3_core/pyproject.toml packages/sam3_sdk/pyproject.toml apps/demo/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e "packages/sam3_core[test]" -e "packages/sam3_sdk[test]" -e ".[dev]" \
		-r apps/demo/requirements.txt
	touch $(STAMP)

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; \
		else echo "Chromium is missing: install it (apt-get install chromium) for the browser tests"; fi; }

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Gradio app on http://127.0.0.1:7860 (model: SAM3_MODEL or --model, default facebook/sam3;
# `make demo DEMO_ARGS="--model tiny-random"` runs offline with random weights).
demo: install
	$(BIN)/python apps/demo/app.py $(DEMO_ARGS)

# The Hugging Face Space as one self-contained folder (app, our two packages, requirements.txt,
# README front matter): push build/space to a Space repo. See README.md, "The Hugging Face Space".
SPACE_DIR ?= build/space
space: install
	$(BIN)/python scripts/build_space.py $(SPACE_DIR)

lint: install
	$(BIN)/ruff check packages apps tests scripts benchmarks
	$(BIN)/ruff format --check packages apps tests scripts benchmarks

# Regenerate the golden outputs with the reference implementation (see README).
fixtures:
	test -x .ref/bin/python || ($(PYTHON) -m venv .ref && .ref/bin/pip install -q transformers==5.23.0 timm av)
	.ref/bin/pip install -q -e packages/sam3_core -e packages/sam3_sdk --no-deps
	.ref/bin/python scripts/make_golden.py

# Speed next to the reference at the real widths (a benchmark, not a test): random-weight checkpoints
# cached in benchmarks/cache, results in benchmarks/results/<machine>.{json,md}. The reference runs
# when .ref exists (`make fixtures`). Quick run: `make bench BENCH_ARGS="--layers 4 --video-rss-frames 30"`.
BENCH_ARGS ?=
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
