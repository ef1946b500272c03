# Entry points: `make demo` (end to end on embedded DuckDB), `make test` (what CI runs) and
# `make test-fast` (the same checks, pytest without the `slow` Monte-Carlo/end-to-end tests and the
# `engines` tests that start Spark and PostgreSQL).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin


.PHONY: docs demo test test-fast lint typecheck imports unit unit-fast bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "seglift needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing seglift and its dependencies into $(VENV) (a few minutes on a fresh machine)"
	$(BIN)/python -m pip install --progress-bar off -e . | grep -E --line-buffered "^(Collecting|Successfully)" || true
	@$(BIN)/python -c "import experiment" || (echo "error: the install into $(VENV) failed; run: $(BIN)/python -m pip install -e ." >&2; exit 1)
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "installing seglift with its test tools into $(VENV) (a few minutes on a fresh machine)"
	$(BIN)/python -m pip install --progress-bar off -e ".[dev]" | grep -E --line-buffered "^(Collecting|Successfully)" || true
	@$(BIN)/python -c "import experiment, pytest" || (echo "error: the install into $(VENV) failed; run: $(BIN)/python -m pip install -e '.[dev]'" >&2; exit 1)
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/exp demo
	@echo "exp is installed in $(BIN): run 'source $(BIN)/activate' to put it on your PATH (or call $(BIN)/exp)"

# The README's screenshot, from a fresh demo run (same seed, so it is the demo's own output).
docs: demo
	$(BIN)/python docs/screenshot.py demo/report.html docs/demo-report.png

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

unit: $(VENV)/.installed-dev
	$(BIN)/pytest

unit-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not slow and not engines" -n auto --dist worksteal

test: lint typecheck imports unit

test-fast: lint typecheck imports unit-fast

# The quick sizes of the benchmark suite (200k and 1M users; the data is built once into
# SEGLIFT_BENCH, default $TMPDIR/seglift-bench): every contender a whole process, as CPU and
# wall ratios of a bare DuckDB query, with peak RSS (README "Benchmarks").
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/suite.py --quick --with sequential,validate,refine

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
