# Two commands for a newcomer:  `make demo`  and  `make test`.
# Both create (once) a project-local virtual environment in .venv and install duetrl into it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint notebooks bench bench-quick book pdf browser mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes (idempotent).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/duetrl demo

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lint: $(STAMP)
	$(BIN)/ruff check .

notebooks: $(STAMP)
	$(BIN)/duetrl notebooks --out build/notebooks

# Every benchmark, one after another, and one table of the ratios measured in that run
# (benchmarks/RESULTS.md; 17 min on an idle 2-core machine, 2026-12-07). The peers (Stable-Baselines3, Hugging Face) come with
# the bench extra. `make bench-quick`: small sizes, one seed, a few minutes (RESULTS-quick.md).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --quick

# Mutation testing of the numeric core, not part of `make test` (about 30 min on 2 cores):
# tools/mutate.py plants one small bug at a time in each module of tools/mutation.toml, runs the
# fast tests that own it, and keeps the scores in MUTATION.md. Some modules: make mutate
# MODULES="tabular bandits"; one mutant at a time on a busy machine: MUTATE_JOBS=1.
MUTATE_JOBS ?= 2
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py --jobs $(MUTATE_JOBS) $(MODULES)

# The book: the static site in English and Chinese (build/book/html/index.html), every tutorial
# executed in full mode; MathJax comes once from the npm registry (equations work offline).
# Headless Chromium (make browser) prints each language's PDF at the end of the build.
book: $(STAMP) browser
	$(BIN)/python docs/build.py --out build/book

# Only the PDFs of a book already built (build/book/html/<lang>/_downloads/duetrl-<lang>.pdf).
pdf: $(STAMP) browser
	$(BIN)/python docs/build.py --out build/book --pdf-only

# System packages for the book's browser test: headless Chromium, ChromeDriver, a CJK font.
# Installed when missing and we are root (CI); otherwise the test is skipped with this hint.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	    fc-list :lang=zh 2>/dev/null | grep -q .; then echo "browser test: Chromium found"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && \
	    apt-get install -y -q chromium chromium-driver fonts-wqy-zenhei; \
	else echo "browser test skipped: sudo make browser installs Chromium (Debian packages)"; fi

clean:
	rm -rf $(VENV) build .pytest_cache
