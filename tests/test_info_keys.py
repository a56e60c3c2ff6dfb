"""A run on an env whose info says whether an episode succeeded and what each step cost
(``env.info_keys``, issue 11 item 4): the declared keys reach every output of the run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mentor
from mentor.cli import app
from mentor.experiment import build
from mentor.report.report import write_report
from mentor.runs.logger import MetricsLogger

QUIET = ["logging.progress=false", "logging.tensorboard=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    experiment = build(
        method="ppo",
        env_id="mentor.envs.testing:InfoEnv",
        overrides=[
            f"output_dir={tmp_path_factory.mktemp('runs')}",
            "env.info_keys=[is_success, {cost: sum}]",
            "env.num_envs=4",
            "method.num_steps=64",
            "stopping.total_steps=1024",
            "validation.every_steps=512",
            "validation.episodes=4",
            "validation.num_envs=2",
            "evaluation.episodes=4",
            "evaluation.num_envs=2",
            "evaluation.success_threshold=0",  # every return reaches it: is_success must decide
            *QUIET,
        ],
    )
    return mentor.train(experiment).run_dir


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_training_rows_have_the_mean_of_each_key(run: Path) -> None:
    logged = [row for row in rows(run / "metrics.csv") if row["rollout/episodes"]]
    assert logged
    for row in logged:
        assert 0.0 <= float(row["rollout/is_success_mean"]) <= 1.0
        assert 0.0 <= float(row["rollout/cost_mean"]) <= 16.0  # at most 1 for each of 16 steps


def test_validation_csv_has_a_column_per_key(run: Path) -> None:
    validations = rows(run / "validation.csv")
    assert len(validations) == 2
    for row in validations:
        assert float(row["is_success_mean"]) == float(row["success_rate"])
        assert 0.0 <= float(row["cost_mean"]) <= 16.0


def test_the_final_evaluation_takes_the_success_from_is_success(run: Path) -> None:
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["success_from"] == "is_success"
    assert evaluation["success_threshold"] is None
    assert set(evaluation["info"]) == {"is_success", "cost"}
    assert evaluation["success_rate"] == evaluation["info"]["is_success"]


def test_the_report_shows_each_key(run: Path) -> None:
    markdown = (write_report(run) / "report.md").read_text()
    assert "| Final mean is_success |" in markdown and "| Final mean cost |" in markdown
    assert "| Mean cost |" in markdown
    assert "| Success rate (the env's is_success) |" in markdown


def test_mentor_eval_shows_each_key_and_where_the_success_came_from(run: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(run), "--episodes", "4", "--num-envs", "2"])
    assert result.exit_code == 0, result.output
    assert "success (is_success)" in result.output and "cost (mean)" in result.output
    # Keys given to mentor.evaluate replace the experiment's: without is_success, the
    # threshold decides.
    agent = mentor.load(run)
    summary = mentor.evaluate(
        agent,
        "mentor.envs.testing:InfoEnv",
        2,
        num_envs=2,
        env_kwargs={"length": 4},
        info_keys={"cost": "sum"},
    )
    assert set(summary.info) == {"cost"} and summary.success_from == "threshold"


def test_tensorboard_gets_an_eval_scalar_per_key(tmp_path: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.scalars: dict[str, float] = {}

        def add_scalar(self, key: str, value: float, step: int) -> None:
            self.scalars[key] = value

        def close(self) -> None:
            pass

    logger = MetricsLogger(tmp_path, 100, csv_on=True, tensorboard=False, progress=False)
    logger.tb = Recorder()
    summary = mentor.evaluation.statistics.summarize(
        np.ones(3), np.ones(3), successes=[1, 0, 1], info={"is_success": [1, 0, 1], "cost": [3]}
    )
    logger.log_validation(10, summary.to_dict())
    logger.close()
    assert logger.tb.scalars["eval/cost_mean"] == 3.0
    assert logger.tb.scalars["eval/is_success_mean"] == pytest.approx(2 / 3)
    assert rows(tmp_path / "validation.csv")[0]["cost_mean"] == "3.0"
