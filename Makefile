# Two commands for a newcomer:  `make demo`  and  `make test`.
# Both create (once) a project-local virtual environment in .venv and install duetrl into it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint notebooks bench book browser clean

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

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

notebooks: $(STAMP)
	$(BIN)/duetrl notebooks --out build/notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/attention.py
	$(BIN)/python benchmarks/lm.py --threads 1

# The book: the static site in English and Chinese (build/book/html/index.html), every tutorial
# executed in full mode; MathJax comes once from the npm registry (equations work offline).
book: $(STAMP)
	$(BIN)/python docs/build.py --out build/book

# System packages for the book's browser test: headless Chromium, ChromeDriver, a CJK font.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	    fc-list :lang=zh | grep -q .; then echo "chromium, chromedriver and a CJK font: found"; \
	else apt-get update -q && apt-get install -y -q chromium chromium-driver fonts-wqy-zenhei; fi

clean:
	rm -rf $(VENV) build .pytest_cache
