"""The Box2D envs users try after CartPole (issue 19): their presets run as shipped (with a budget
cut to a few hundred steps), and a resumed run says in its manifest that it started new
episodes (Box2D's world has no snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_resume import assert_resumes_with_new_episodes

import mentor
from mentor.experiment import available_presets, build

QUICK = ["validation.episodes=1", "validation.num_envs=1", "evaluation.episodes=1",
         "logging.progress=false", "logging.tensorboard=false"]  # fmt: skip
BOX2D = [
    ("ppo", "LunarLander-v3", ["method.num_steps=32", "method.num_minibatches=8"]),
    ("ppo", "LunarLanderContinuous-v3", ["method.num_steps=32", "method.num_minibatches=8"]),
    ("dqn", "LunarLander-v3", []),
    ("sac", "LunarLanderContinuous-v3", ["method.learning_starts=100"]),
    ("td3", "LunarLanderContinuous-v3", ["method.learning_starts=100"]),
    ("sac", "BipedalWalker-v3", ["method.learning_starts=100"]),
    (
        "td3",
        "BipedalWalker-v3",
        ["method.learning_starts=100", "method.train_freq=100", "method.gradient_steps=10"],
    ),
]


@pytest.mark.parametrize(("method", "env_id", "cut"), BOX2D)
def test_each_box2d_preset_runs(tmp_path: Path, method: str, env_id: str, cut: list[str]) -> None:
    """The shipped preset, its budget cut: the env, the networks and the method's settings as
    shipped (gSDE for BipedalWalker's SAC) train and evaluate without an error."""
    assert env_id in available_presets()[method]
    steps = 1024 if method == "ppo" else 400
    experiment = build(method=method, env_id=env_id, overrides=[
        *cut, f"stopping.total_steps={steps}", f"validation.every_steps={steps}",
        f"output_dir={tmp_path}", *QUICK,
    ])  # fmt: skip
    shipped = build(method=method, env_id=env_id)
    assert experiment.agent.network == shipped.agent.network
    assert experiment.exploration == shipped.exploration
    result = mentor.train(experiment)
    assert result.total_steps >= steps
    assert (result.run_dir / "evaluation.json").is_file()


def test_a_resumed_box2d_run_names_its_fallback_in_the_manifest(tmp_path: Path) -> None:
    """Box2D's world cannot be snapshot: the resumed run starts new episodes, seeded, and its
    manifest says so (the documented fallback, not a silent one)."""
    experiment = build(method="ppo", env_id="LunarLander-v3", overrides=[
        "env.num_envs=2", "method.num_steps=64", "method.num_minibatches=4",
        "stopping.total_steps=512", "checkpoints.every_steps=128", "validation.every_steps=512",
        "checkpoints.keep_last=10", f"output_dir={tmp_path}", *QUICK,
    ])  # fmt: skip
    assert_resumes_with_new_episodes(experiment, tmp_path)
