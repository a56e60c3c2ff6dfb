"""Image envs (issue 19): Atari under ``env.preset: atari`` (mentor/envs/atari.py) and MinAtar.

The wrapper stack against known frame shapes, the frame stack's order, reward clipping and life
losses for the learner while episode records keep whole games in the game's points, the errors
of a preset that does not fit, and the shipped presets running as shipped with a cut budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from test_cli import assert_one_line_error, run_main
from test_resume import assert_resumes_with_new_episodes
from test_rough_edges import one_line_error, run_cli

import mentor
from mentor.core.networks import ActorCritic, BoardCNN, NatureCNN
from mentor.core.vec_env import VecEnv
from mentor.envs.atari import LearningSignals
from mentor.errors import ConfigError
from mentor.experiment import build, preset
from mentor.sections import NetworkConfig

QUICK = ["validation.episodes=1", "validation.num_envs=1", "evaluation.episodes=1",
         "logging.progress=false", "logging.tensorboard=false"]  # fmt: skip


def test_the_atari_preset_gives_84x84_grayscale_stacks_of_four_channels_last() -> None:
    venv = VecEnv.make("ALE/Breakout-v5", {}, 2, preset="atari")
    try:
        assert venv.observation_space == spaces.Box(0, 255, (84, 84, 4), np.uint8)
        assert venv.action_space == spaces.Discrete(4)  # Breakout's minimal action set
        frames = venv.reset(seed=0)
        assert frames.shape == (2, 84, 84, 4) and frames.dtype == np.uint8
        # upright, not transposed: Breakout's wall and bricks fill the top, its floor is empty
        # (seed 0: 53 against 11 of 255 on average), its left and right are alike (49, 49)
        newest = frames[0, ..., 3].astype(float)
        assert newest[:21].mean() > 3 * newest[-21:].mean()
        assert abs(newest[:, :21].mean() - newest[:, -21:].mean()) < 5
        for _ in range(3):
            before = frames
            frames = venv.step(np.array([1, 2]))[0]
            # the stack shifts by one frame, the newest last: the old frames 1-3 are 0-2 now
            assert np.array_equal(frames[..., :3], before[..., 1:])
        assert frames[..., 3].any()  # a frame with something drawn on it, not a blank
    finally:
        venv.close()


def test_without_the_preset_an_ale_id_is_the_raw_game_one_env_per_copy() -> None:
    """ale-py's vector env preprocesses (channels first, clipped rewards): without the preset
    8 copies are 8 raw games, 210 x 160 RGB frames, not mistaken for an 84-channel image."""
    venv = VecEnv.make("ALE/Breakout-v5", {}, 8)
    try:
        assert venv.observation_space.shape == (210, 160, 3)
        assert isinstance(venv.env, gym.vector.SyncVectorEnv)
    finally:
        venv.close()
    with pytest.raises(ConfigError, match=r"env\.preset: atari"):
        VecEnv.make("ALE/Breakout-v5", {}, 8, vectorization="native")


def test_learning_signals_clip_rewards_and_end_the_horizon_at_a_lost_life() -> None:
    signals = LearningSignals(3)
    signals.reset({"lives": np.array([5, 5, 3])})
    rewards, terminated = signals(
        np.array([7.0, -2.0, 0.0], dtype=np.float32),
        np.array([False, False, False]),
        {"lives": np.array([4, 5, 3])},
        np.array([False, False, False]),
    )
    assert rewards.tolist() == [1.0, -1.0, 0.0] and rewards.dtype == np.float32
    assert terminated.tolist() == [True, False, False]  # copy 0 lost a life
    # a reset copy's lives are refilled, not lost; a game's own end stays terminated
    rewards, terminated = signals(
        np.zeros(3, dtype=np.float32),
        np.array([False, False, True]),
        {"lives": np.array([5, 4, 0])},
        np.array([True, False, False]),
    )
    assert terminated.tolist() == [False, True, True]


class ScriptedGame(gym.vector.VectorEnv):
    """Two copies of a game whose rewards and lives follow a script (NEXT_STEP autoreset)."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, script: list[tuple[list[float], list[int], list[bool]]]) -> None:
        self.num_envs = 2
        self.single_observation_space = spaces.Box(0, 255, (4, 4, 1), np.uint8)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 2)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 2)
        self.script, self.t = script, 0

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[np.ndarray, dict]:
        return np.zeros((2, 4, 4, 1), np.uint8), {"lives": np.array([3, 3])}

    def step(self, actions: Any) -> tuple:
        rewards, lives, terminated = self.script[self.t]
        self.t += 1
        return (np.zeros((2, 4, 4, 1), np.uint8), np.array(rewards), np.array(terminated),
                np.zeros(2, bool), {"lives": np.array(lives)})  # fmt: skip


def test_episode_records_keep_whole_games_in_points_while_the_learner_sees_lives() -> None:
    """Copy 0 scores 7 and 4, loses a life, scores -3, then its game ends: the learner saw
    1, 1, 0, -1 with a horizon's end at the lost life; the record is one game of 8 points over
    4 steps."""
    script = [([7.0, 0.0], [3, 3], [False, False]),
              ([4.0, 1.0], [2, 3], [False, False]),
              ([0.0, 0.0], [2, 3], [False, False]),
              ([-3.0, 0.0], [0, 3], [True, False])]  # fmt: skip
    venv = VecEnv(ScriptedGame(script), env_id="scripted", preset="atari")
    venv.reset(seed=0)
    seen = [venv.step(np.zeros(2, np.int64)) for _ in script]
    assert [float(r[0]) for _, r, _, _ in seen] == [1.0, 1.0, 0.0, -1.0]
    assert [bool(t[0]) for _, _, t, _ in seen] == [False, True, False, True]
    assert not any(bool(t[1]) for _, _, t, _ in seen)
    (episode,) = venv.pop_episodes()
    assert (episode.env_index, episode.ret, episode.length) == (0, 8.0, 4)
    assert venv.needs_reset.tolist() == [True, False]  # the lost life reset nothing


def test_a_preset_that_does_not_fit_the_env_is_one_line_exit_2(tmp_path: Path) -> None:
    done = run_cli("train", "ppo", "CartPole-v1", "--set", "env.preset=atari", cwd=tmp_path)
    line = one_line_error(done)
    assert "env.preset 'atari'" in line and "ALE/Breakout-v5" in line and "CartPole-v1" in line
    done = run_cli("train", "ppo", "CartPole-v1", "--set", "env.preset=mujoco", cwd=tmp_path)
    assert "atari" in one_line_error(done)


def test_the_family_presets_apply_to_every_game_of_the_family() -> None:
    for game in ("ALE/Pong-v5", "ALE/Breakout-v5", "ALE/SpaceInvaders-v5"):
        assert preset("ppo", game)["env"]["preset"] == "atari"
        assert preset("dqn", game)["env"]["preset"] == "atari"
    assert preset("ppo", "MinAtar/Asterix-v1")["agent"]["network"]["convolutions"] == [[16, 3, 1]]
    assert "preset" not in preset("ppo", "CartPole-v1").get("env", {})


def test_the_atari_networks_are_the_nature_cnn_and_minatars_small_one() -> None:
    atari = build(method="ppo", env_id="ALE/Breakout-v5")
    image = spaces.Box(0, 255, (84, 84, 4), np.uint8)
    policy = ActorCritic(image, spaces.Discrete(4), atari.agent.network)
    assert isinstance(policy.cnn, NatureCNN) and policy.cnn.out_size == 512
    assert [m.out_channels for m in policy.cnn.convs if isinstance(m, torch.nn.Conv2d)] == [
        32, 64, 64,
    ]  # fmt: skip
    minatar = build(method="ppo", env_id="MinAtar/Breakout-v1")
    board = spaces.Box(0, 1, (10, 10, 4), bool)
    policy = ActorCritic(board, spaces.Discrete(3), minatar.agent.network)
    assert isinstance(policy.cnn, BoardCNN)
    assert policy.cnn.out_size == 16 * 8 * 8  # 3 x 3, no padding: 10 x 10 -> 8 x 8
    logits = policy.policy_params(torch.zeros(5, 400))
    assert logits.shape == (5, 3)


def test_convolutions_that_do_not_fit_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\[channels, kernel, stride\]"):
        NetworkConfig(convolutions=[[16, 3]])
    with pytest.raises(ValueError, match="padding >= 0"):
        NetworkConfig(convolutions=[[16, 3, 1, -1]])
    board = spaces.Box(0, 1, (10, 10, 4), bool)
    with pytest.raises(ValueError, match="do not fit a 10 x 10 input"):
        ActorCritic(board, spaces.Discrete(3), NetworkConfig(kind="cnn", convolutions=[[8, 11, 1]]))
    with pytest.raises(ValueError, match="convolutions shape a CNN"):
        ActorCritic(
            spaces.Box(-1, 1, (4,)), spaces.Discrete(2), NetworkConfig(convolutions=[[8, 3, 1]])
        )


@pytest.mark.parametrize(
    ("method", "env_id", "cut"),
    [
        ("ppo", "ALE/Pong-v5", ["method.num_steps=32", "env.num_envs=2"]),
        ("dqn", "ALE/Pong-v5", ["method.learning_starts=64", "method.buffer_size=1000"]),
        ("ppo", "MinAtar/Breakout-v1", []),
    ],
)
def test_each_image_preset_runs(tmp_path: Path, method: str, env_id: str, cut: list[str]) -> None:
    """The shipped preset with its budget cut: the preprocessed env, the network and the
    method's settings as shipped train, validate and evaluate whole games (an Atari episode
    record is a game: many steps, not a life's few)."""
    steps = 256
    experiment = build(method=method, env_id=env_id, overrides=[
        *cut, f"stopping.total_steps={steps}", f"validation.every_steps={steps}",
        f"output_dir={tmp_path}", "env.max_episode_steps=300", *QUICK,
    ])  # fmt: skip
    shipped = build(method=method, env_id=env_id)
    assert experiment.agent.network == shipped.agent.network
    assert experiment.env.preset == shipped.env.preset
    result = mentor.train(experiment)
    assert result.total_steps >= steps
    assert (result.run_dir / "evaluation.json").is_file()


def test_a_resumed_atari_run_starts_new_games_and_says_so(tmp_path: Path) -> None:
    """ALE's vector env has no state to save: a resumed run starts new games, seeded, and its
    manifest names that fallback."""
    experiment = build(method="ppo", env_id="ALE/Pong-v5", overrides=[
        "env.num_envs=2", "method.num_steps=32", "stopping.total_steps=256",
        "checkpoints.every_steps=64", "validation.every_steps=256", "checkpoints.keep_last=10",
        "env.max_episode_steps=300", f"output_dir={tmp_path}", *QUICK,
    ])  # fmt: skip
    assert_resumes_with_new_episodes(experiment, tmp_path)


def test_train_on_a_minatar_id_without_minatar_names_the_package(
    tmp_path, without, capsys, monkeypatch
) -> None:
    """The bad input of a missing env package (issue 19): which package, which extra."""
    monkeypatch.chdir(tmp_path)
    without("minatar", namespaces=["MinAtar"])
    code, out, err = run_main(["train", "ppo", "MinAtar/Breakout-v1"], capsys, monkeypatch)
    assert_one_line_error(
        code, out, err,
        r"env 'MinAtar/Breakout-v1' needs the package minatar, .*pip install 'mentor\[envs\]'.*",
    )  # fmt: skip
