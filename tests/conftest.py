"""Shared fixtures: one tiny PPO run on CartPole, trained once per test session; packages made
to look not installed."""

from __future__ import annotations

import sys
from collections.abc import Callable
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


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make packages look not installed, whatever is: ``without("Box2D", unload=[...])``.

    Importing them fails as for a missing package (``sys.modules`` holds None for them, so
    ``importlib.util.find_spec`` finds nothing too), and the modules named in ``unload`` (with
    their submodules) are imported afresh, so that their imports of those packages fail. The ids
    of the Gymnasium ``namespaces`` given are unregistered, as before their package registered
    them. Everything is restored after the test.
    """
    import gymnasium as gym

    def block(
        *packages: str,
        unload: tuple[str, ...] | list[str] = (),
        namespaces: tuple[str, ...] | list[str] = (),
    ) -> None:
        for package in packages:
            monkeypatch.setitem(sys.modules, package, None)
        for prefix in unload:
            for name in [n for n in sys.modules if n == prefix or n.startswith(f"{prefix}.")]:
                monkeypatch.delitem(sys.modules, name)
        for env_id in [i for i, s in gym.registry.items() if s.namespace in namespaces]:
            monkeypatch.delitem(gym.registry, env_id)

    return block
