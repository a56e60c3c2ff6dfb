# Everything a fresh machine needs: `make demo` and `make test` create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,bench,data,envs,multiagent]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mentor train examples/cartpole.yaml --name demo --overwrite
	$(BIN)/mentor eval runs/demo --episodes 100
	$(BIN)/mentor report runs/demo
	@echo "report: runs/demo/report/report.html"

test: $(STAMP)
	$(BIN)/ruff check mentor tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check mentor tests benchmarks
	$(BIN)/ruff format --check mentor tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format mentor tests benchmarks
	$(BIN)/ruff check --fix mentor tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/ppo_cartpole.py
	$(BIN)/python benchmarks/offpolicy.py

clean:
	rm -rf $(VENV) runs
