# Everything a fresh machine needs: `make demo` and `make test` create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench bench-benchmarl bench-rllib clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,bench,data,envs,multiagent,tune,ray,trading,export,explain]"
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
	$(BIN)/python -m pytest -q -n 2

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

# BenchMARL's own venv, for benchmarks/multiagent.py's BenchMARL rows (not part of `make test`):
# its simple_spread loads through torchrl's wrapper, which imports pettingzoo.mpe (PettingZoo 1.24;
# mentor has 1.25+ and mpe2). torchvision 0.28.0 pins torch 2.13.0, mentor's CPU wheel; an
# unpinned torchvision pulls torch 2.14.1 and several GB of CUDA packages.
BM_VENV := .venv-benchmarl
BM_STAMP := $(BM_VENV)/.installed

$(BM_STAMP):
	$(PYTHON) -m venv $(BM_VENV)
	$(BM_VENV)/bin/pip install --quiet --upgrade pip
	$(BM_VENV)/bin/pip install --quiet torch==2.13.0
	$(BM_VENV)/bin/pip install --quiet torch==2.13.0 torchvision==0.28.0 benchmarl==1.5.2 \
		torchrl==0.11.1 tensordict==0.11.0 "pettingzoo[mpe]==1.24.3"
	touch $(BM_STAMP)

bench-benchmarl: $(BM_STAMP)

# RLlib's own venv, for benchmarks/distributed.py's RLlib PPO rows (not part of `make test`):
# ray[rllib] pins gymnasium 1.2 and more that clash with mentor's venv. torch first and pinned
# (mentor's CPU wheel), then RLlib at mentor's Ray version.
RL_VENV := .venv-rllib
RL_STAMP := $(RL_VENV)/.installed

$(RL_STAMP):
	$(PYTHON) -m venv $(RL_VENV)
	$(RL_VENV)/bin/pip install --quiet --upgrade pip
	$(RL_VENV)/bin/pip install --quiet torch==2.13.0
	$(RL_VENV)/bin/pip install --quiet torch==2.13.0 "ray[rllib]==2.60.0"
	touch $(RL_STAMP)

bench-rllib: $(RL_STAMP)

clean:
	rm -rf $(VENV) runs
