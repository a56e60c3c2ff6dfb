"""Walk-forward training and testing (mentor/walkforward.py, `mentor backtest`, `mentor demo`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mentor.cli import app
from mentor.errors import ConfigError
from mentor.experiment import parse
from mentor.walkforward import check_market, run_walk_forward

MENTOR = Path(sys.executable).with_name("mentor")


def experiment(tmp_path: Path, **kwargs) -> dict:
    return {
        "name": "wf",
        "output_dir": str(tmp_path),
        "env": {
            "id": "mentor.envs.trading:TradingEnv",
            "num_envs": 2,
            "kwargs": {"synthetic_bars": 420, "window": 10, "episode_bars": 50, **kwargs},
            "info_keys": ["sharpe", "max_drawdown"],
        },
        "validation": {"every_steps": 256},
        "method": {"name": "ppo", "num_steps": 64, "num_epochs": 2, "num_minibatches": 2},
        "stopping": {"total_steps": 768},
        "checkpoints": {"every_steps": 256},
        "logging": {"tensorboard": False, "progress": False},
        "backtest": {"folds": 2, "seeds": [0]},
    }


def test_each_fold_trains_validates_and_tests_on_its_own_bars_in_time_order(tmp_path) -> None:
    """The run of a fold trains on its training bars with the scaler fitted there, picks its
    checkpoint on the validation bars, and its agent plays the test bars once, after both."""
    result = run_walk_forward(parse(experiment(tmp_path)), say=lambda text: None)
    folder = tmp_path / "wf"
    assert {"walk_forward.json", "walk_forward.csv", "summary.md", "walk_forward.png"} <= {
        p.name for p in folder.iterdir()
    }
    tested = [t for t in result.tests if t.method == "agent"]
    assert [(t.fold, t.seed) for t in tested] == [(0, 0), (1, 0)]  # one test per run
    for fold, test in zip(result.folds, tested, strict=True):
        run = yaml.safe_load((Path(test.run) / "experiment.yaml").read_text())
        train, validate = run["env"]["kwargs"], run["validation"]["env"]["kwargs"]
        assert (train["start"], train["end"]) == fold.train and train["scale"] == list(fold.train)
        assert (validate["start"], validate["end"]) == fold.validation
        assert validate["scale"] == list(fold.train) and validate["episode_bars"] is None
        assert fold.train[1] < fold.validation[0] <= fold.validation[1] < fold.test[0]
        assert len(test.equity) == fold.test[1] - fold.test[0] + 1  # every test bar, once
        assert (Path(test.run) / "validation.csv").is_file()
    methods = {t.method for t in result.tests}
    assert methods == {"agent", "buy_and_hold", "random", "ma_crossover"}
    saved = json.loads((folder / "walk_forward.json").read_text())
    assert saved["folds"][1]["bars"]["test"] == list(result.folds[1].test)
    assert set(saved["summary"]) == methods and "sharpe" in saved["summary"]["agent"]


def test_only_the_market_env_and_enough_bars_are_accepted(tmp_path) -> None:
    other = parse({**experiment(tmp_path), "env": {"id": "CartPole-v1"}})
    with pytest.raises(ConfigError, match="is not the market env"):
        check_market(other)
    long_episodes = parse(experiment(tmp_path, episode_bars=200))
    with pytest.raises(ConfigError, match="episode_bars 200 is longer than a fold's training"):
        run_walk_forward(long_episodes, say=lambda text: None)


def test_the_cli_refuses_too_few_bars_in_one_line(tmp_path) -> None:
    """Too few rows for the window and the folds: exit 2, one line naming what would fit."""
    path = tmp_path / "trading.yaml"
    path.write_text(yaml.safe_dump(experiment(tmp_path, synthetic_bars=40, episode_bars=None)))
    done = subprocess.run([str(MENTOR), "backtest", str(path), "--set", "backtest.folds=8"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "each needs at least 2: give about" in done.stderr


def test_the_cli_prints_the_test_table_and_the_demo_exists(tmp_path) -> None:
    path = tmp_path / "trading.yaml"
    path.write_text(yaml.safe_dump(experiment(tmp_path)))
    out = CliRunner().invoke(app, ["backtest", str(path), "--seed", "3", "--name", "cli"])
    assert out.exit_code == 0, out.output
    assert "| agent" in out.output and "| buy_and_hold" in out.output
    assert (tmp_path / "cli" / "fold1-seed3").is_dir()
    shipped = Path(__file__).parents[1] / "examples" / "trading.yaml"
    demo = parse(yaml.safe_load(shipped.read_text()))
    assert check_market(demo).data.name == "googl" and demo.backtest is not None
