"""``mentor tune-report``: the report of a tiny study, and the errors of a folder without one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mentor.errors import ConfigError
from mentor.tune.report import write_tune_report

TINY = """\
method: {name: ppo, num_steps: 32, num_minibatches: 2}
env: {id: CartPole-v1, num_envs: 4}
stopping: {total_steps: 1024}
validation: {every_steps: 256, episodes: 4, num_envs: 2}
evaluation: {episodes: 4}
logging: {tensorboard: false}
tune:
  seeds: [0, 1]
  trials: 3
  top_k: 1
  recheck_seeds: [7, 8]
  startup_trials: 2
  pruner: none
  space:
    method.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
    agent.network.hidden_sizes: {depth: [1, 2], width: [16, 32]}
    method.clip_coef: {choice: [0.1, 0.2]}
"""

PARAMS = {
    "method.learning_rate",
    "agent.network.hidden_sizes.depth",
    "agent.network.hidden_sizes.width",
    "method.clip_coef",
}
PLOTS = ("history.png", "parallel.png", "importances.png", "best_curves.png", "recheck.png")


def test_report_of_a_tiny_study(tmp_path: Path) -> None:
    from rich.console import Console

    from mentor.tune.study import tune

    file = tmp_path / "tiny.yaml"
    file.write_text(TINY)
    folder = tmp_path / "t"
    tune(file, folder=folder, name="t", say=lambda line: None)

    console = Console(record=True, width=160)
    page = write_tune_report(folder, console=console)

    assert page == folder / "report" / "index.html"
    for name in PLOTS:
        assert (folder / "report" / name).stat().st_size > 0, name
    importances = json.loads((folder / "report" / "importances.json").read_text())
    assert set(importances["importances"]) == PARAMS
    best = json.loads((folder / "best.json").read_text())["trial"]
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and page.stat().st_size > 0
    assert f"best: trial {best}," in text
    assert all(f'src="{name}"' in text for name in PLOTS)
    assert "http" not in text  # self-contained: no external asset
    printed = console.export_text()
    assert "tuning overhead" in printed and f"best: trial {best}," in printed


def test_a_folder_without_a_study_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no study\.db"):
        write_tune_report(tmp_path)
    with pytest.raises(ConfigError, match="no such folder"):
        write_tune_report(tmp_path / "missing")
    missing = tmp_path / "elsewhere.db"
    with pytest.raises(ConfigError, match="no such file"):
        write_tune_report(tmp_path, storage=f"sqlite:///{missing}")
    assert not missing.exists()  # refused, not made empty


def test_cli_on_a_missing_folder_says_one_line(tmp_path: Path) -> None:
    path = tmp_path / "no-such-tune"
    done = subprocess.run(
        [sys.executable, "-m", "mentor.cli", "tune-report", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "error:" in lines[0] and "no-such-tune" in lines[0]
