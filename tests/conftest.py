"""Shared fixtures: one tiny PPO run on CartPole, trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

# The overrides that make a run small enough for the test suite: 8 updates of 256 steps, two
# validations (so checkpoints/best exists), a short final evaluation, nothing on the console.
TINY_RUN = [
    "stopping.total_steps=2048",
    "validation.every_steps=1024",
    "validation.episodes=2",
    "validation.num_envs=2",
    "evaluation.episodes=2",
    "logging.progress=false",
    "logging.tensorboard=false",
]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a finished tiny PPO run on CartPole-v1 (observation normalization on, so
    its checkpoints carry statistics as well as weights). Tests must not change it: copy it."""
    from mentor import api
    from mentor.experiment import build

    output_dir = tmp_path_factory.mktemp("runs")
    experiment = build(
        method="ppo",
        env_id="CartPole-v1",
        overrides=[*TINY_RUN, "seed=3", "env.normalize_obs=true", f"output_dir={output_dir}"],
    )
    return api.train(experiment).run_dir
