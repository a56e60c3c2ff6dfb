"""DQN: spaces and options run, runs repeat bitwise, the buffer is checkpointed, it learns, and
bad settings are refused before any env is stepped."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.errors import ConfigError
from mentor.experiment import build

QUIET = ["logging.progress=false", "logging.tensorboard=false"]


def tiny(tmp_path: Path, env_id: str, *overrides: str) -> list[str]:
    return [
        f"output_dir={tmp_path}", f"env.id={env_id}", "method.name=dqn", "env.num_envs=2",
        "method.learning_starts=64", "method.batch_size=16", "method.train_freq=8",
        "method.gradient_steps=1",
        "method.target_update_freq=50", "method.buffer_size=1000", "stopping.total_steps=300",
        "validation.every_steps=200", "validation.episodes=2", "validation.num_envs=2",
        "evaluation.episodes=2", "logging.every_steps=100", *QUIET, *overrides,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("env_id", "options"),
    [
        ("CartPole-v1", []),
        ("CartPole-v1", ["method.dueling=true", "method.n_step=3", "method.double_q=false"]),
        ("CartPole-v1", ["method.prioritized=true", "method.loss=mse",
                         "method.priority_beta={kind: linear, start: 0.4, end: 1.0}"]),
        ("mentor.envs.testing:DictObsEnv", ["env.normalize_obs=true", "method.tau=0.5"]),
        ("mentor.envs.testing:ImageEnv", ["agent.network.hidden_sizes=[32]"]),
    ],
)  # fmt: skip
def test_dqn_runs_with_each_option(tmp_path: Path, env_id: str, options: list[str]) -> None:
    result = mentor.train(build(overrides=tiny(tmp_path, env_id, *options)))
    assert result.stop_reason.startswith("budget") and result.total_steps == 300
    agent = mentor.load(result.run_dir / "final")
    action = agent.act(agent.observation_space.sample())
    assert agent.action_space.contains(action)
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    epsilon = [float(r["explore/epsilon"]) for r in rows if r.get("explore/epsilon")]
    assert epsilon and epsilon == sorted(epsilon, reverse=True)  # logged, and decaying
    assert all(np.isfinite(float(r["train/loss_td"])) for r in rows if r.get("train/loss_td"))


def test_same_seed_gives_bitwise_equal_parameters(tmp_path: Path) -> None:
    weights = []
    for name in ("a", "b"):
        result = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", f"name={name}")))
        weights.append(load_file(str(result.run_dir / "final" / "model.safetensors")))
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_the_checkpoint_keeps_the_replay_buffer(tmp_path: Path) -> None:
    result = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1")))
    replay = load_file(str(result.run_dir / "final" / "replay.safetensors"))
    best = result.run_dir / "checkpoints" / "best"
    assert (best / "model.safetensors").exists() and not (best / "replay.safetensors").exists()
    assert replay["position"].tolist()[1] == 150  # 300 env steps in 2 envs: 150 rows
    assert replay["obs"].shape == (150, 2, 4) and replay["valid"].dtype == torch.bool
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["replay_buffer_bytes"] > 0


# The learning runs of the tests below (benchmarks/seed_distributions.py runs them for many seeds).


def bandit_run(tmp_path: Path, seed: int, *overrides: str) -> mentor.Result:
    return mentor.train(build(overrides=[
        f"output_dir={tmp_path}", "env.id=mentor.envs.testing:DictObsEnv", "method.name=dqn",
        "method.gamma=0", "method.learning_starts=500", "method.learning_rate=1e-3",
        "exploration.epsilon.fraction=0.3", "stopping.total_steps=3000",
        "validation.every_steps=1000", "evaluation.episodes=20", f"seed={seed}", *QUIET,
        *overrides,
    ]))  # fmt: skip


def preset_cartpole_run(tmp_path: Path, seed: int, *overrides: str) -> mentor.Result:
    return mentor.train(build(method="dqn", env_id="CartPole-v1", overrides=[
        f"output_dir={tmp_path}", f"seed={seed}", "validation.every_steps=2000", *QUIET,
        *overrides,
    ]))  # fmt: skip


@pytest.mark.learning
def test_dqn_finds_the_optimal_policy_of_a_bandit_like_task(tmp_path: Path) -> None:
    """With gamma 0 the optimal Q is 1 for the observed target action, 0 for the others: a
    correct DQN plays perfectly (return 16 per episode) within a few thousand steps."""
    result = bandit_run(tmp_path, seed=0)
    # benchmarks/seed_distributions.py dqn_bandit, 2026-12-02, mentor at 6687122: seeds 0-19 all
    # evaluate at 16.0 (min = median = max), and every validation of every seed, the first at
    # 1000 steps, was 16.0 already: the budget is 3x what the task needs.
    assert result.evaluation.return_mean == 16.0


@pytest.mark.learning
def test_dqn_learns_cartpole_with_its_preset(tmp_path: Path) -> None:
    """The shipped preset learns CartPole-v1 within its 50k-step budget: a deterministic
    100-episode evaluation of its best checkpoint returns at least 150 (random actions: 22), and
    at least 0.9 * 475 when a validation reached the reward threshold (475) and stopped it.

    Not "it solves CartPole": the preset does not on every seed. benchmarks/seed_distributions.py
    dqn_cartpole, 2026-12-02, mentor at 6687122, seeds 0-39: 34 reached 475 on validation (after
    22k-44k steps, median 30k), 6 ran out of budget (seeds 2, 10, 21, 22, 28, 39; seed 2 was
    still at 290 after 100k steps, with the preset's exploration schedule kept)."""
    result = preset_cartpole_run(tmp_path, seed=0)
    assert result.evaluation.episodes == 100
    # All 40 seeds: evaluation min 235.5 (seed 10), then 289.7 (2), 302.5 (28), 400.9 (22),
    # median 500. 150 leaves 85 below the lowest, and is 7 times what random actions return.
    assert result.evaluation.return_mean >= 150
    if result.stop_reason.startswith("target"):
        # The 34 that stopped at the target evaluated at min 479.3 (seed 11), median 500.
        assert result.evaluation.return_mean >= 0.9 * 475


def test_dqn_on_a_box_action_space_is_refused_naming_the_alternatives(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"method dqn does not support the action space Box.*"
                                          r"methods that support Box: ppo, sac, td3"):  # fmt: skip
        mentor.train(build(overrides=tiny(tmp_path, "Pendulum-v1")))
    assert not list(tmp_path.iterdir())  # refused before any folder or env step


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.buffer_size=8", "method.batch_size 16 is larger than method.buffer_size 8"),
        ("method.learning_starts=300", "learning_starts 300 is not below stopping.total_steps"),
        ("method.gradient_steps=0", "method.gradient_steps"),
        ("method.train_freq=0", "method.train_freq"),
        ("exploration.entropy_coef=0.1", "exploration.entropy_coef is not used by method dqn"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(overrides=tiny(tmp_path, "CartPole-v1", override))


def test_a_dqn_update_is_sb3s_on_the_same_batch_and_weights() -> None:
    """Issue 19's DQN comparison, line by line: from SB3's initial Q network copied into
    mentor's, three gradient steps on the same three batches (targets from the target network,
    Huber loss, the norm clipped at 10, Adam with SB3's epsilon) leave the same weights, to
    float32 rounding. The update is not where the two differ in env steps to solve."""
    pytest.importorskip("stable_baselines3")
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    from mentor.core.optim import descend
    from mentor.core.replay import ReplaySample
    from mentor.methods.dqn import build_networks, dqn_loss

    lr, batch, gamma = 2.3e-3, 64, 0.99
    sb3 = DQN("MlpPolicy", "CartPole-v1", learning_rate=lr, batch_size=batch, gamma=gamma,
              learning_starts=0, policy_kwargs={"net_arch": [64, 64]}, seed=0,
              device="cpu")  # fmt: skip
    experiment = build(method="dqn", env_id="CartPole-v1", overrides=[
        "agent.network.hidden_sizes=[64, 64]", "agent.network.activation=relu",
        "agent.network.ortho_init=false", "method.double_q=false", f"method.gamma={gamma}",
        f"method.learning_rate={lr}", f"method.batch_size={batch}",
    ])  # fmt: skip
    env = gym.make("CartPole-v1")
    nets = build_networks(experiment, env.observation_space, env.action_space)
    layers = {"body.0": 0, "body.2": 2, "head": 4}
    with torch.no_grad():
        for mine, theirs in ((nets.q, sb3.q_net.q_net), (nets.target, sb3.q_net_target.q_net)):
            for name, index in layers.items():
                mine.get_submodule(name).weight.copy_(theirs[index].weight)
                mine.get_submodule(name).bias.copy_(theirs[index].bias)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        obs, next_obs = (torch.randn(batch, 4, generator=generator) for _ in range(2))
        actions = torch.randint(0, 2, (batch,), generator=generator)
        rewards = torch.ones(batch)
        dones = (torch.rand(batch, generator=generator) < 0.1).float()
        batches.append((obs, actions, rewards, next_obs, dones))
    served = iter(batches)

    def sb3_sample(*_: object, **__: object) -> ReplayBufferSamples:
        obs, actions, rewards, next_obs, dones = next(served)
        return ReplayBufferSamples(
            obs, actions[:, None], next_obs, dones[:, None], rewards[:, None]
        )

    from stable_baselines3.common.logger import Logger

    sb3.set_logger(Logger(None, []))  # train() records its loss; nowhere to write it
    sb3.replay_buffer.sample = sb3_sample
    sb3.train(gradient_steps=3, batch_size=batch)

    class Buffer:
        def __init__(self) -> None:
            self.batches = iter(batches)

        def sample(self, *_: object) -> ReplaySample:
            obs, actions, rewards, next_obs, dones = next(self.batches)
            return ReplaySample(obs, actions, rewards, next_obs, gamma * (1 - dones),
                                torch.ones(batch), np.arange(batch))  # fmt: skip

    cfg = experiment.method
    params = list(nets.q.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, eps=cfg.adam_eps, fused=True)
    buffer, rng = Buffer(), np.random.default_rng(0)
    for _ in range(3):
        terms, *_ = dqn_loss(nets, buffer, cfg, rng, 0.4)
        descend(optimizer, params, terms, cfg.max_grad_norm, "DQN")
    for name, index in layers.items():
        theirs = sb3.q_net.q_net[index]
        assert torch.allclose(nets.q.get_submodule(name).weight, theirs.weight, atol=1e-6), name
        assert torch.allclose(nets.q.get_submodule(name).bias, theirs.bias, atol=1e-6), name
    moved = (nets.q.head.weight - nets.target.head.weight).abs().max()
    assert moved > 1e-3  # three steps of 2.3e-3 moved the weights: the comparison can fail
