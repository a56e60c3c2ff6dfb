"""PPO: every supported space runs, runs repeat bitwise, faults stop cleanly, and it learns."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.errors import CheckpointError, ConfigError, EnvError, NonFiniteError
from mentor.experiment import build, parse

QUIET = ["logging.progress=false", "logging.tensorboard=false"]


def tiny(tmp_path: Path, env_id: str, *overrides: str) -> list[str]:
    """Overrides for a run of a few hundred steps in tmp_path."""
    return [
        f"output_dir={tmp_path}", f"env.id={env_id}", "env.num_envs=4", "method.num_steps=32",
        "method.num_epochs=2", "method.num_minibatches=2", "stopping.total_steps=384",
        "validation.every_steps=256", "validation.episodes=2", "validation.num_envs=2",
        "evaluation.episodes=2", *QUIET, *overrides,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "env_id",
    [
        "CartPole-v1",  # Box obs, Discrete actions
        "Pendulum-v1",  # Box actions
        "FrozenLake-v1",  # Discrete obs
        "mentor.envs.testing:MultiDiscreteEnv",
        "mentor.envs.testing:MultiBinaryEnv",
        "mentor.envs.testing:DictObsEnv",
        "mentor.envs.testing:ImageEnv",  # uint8 images through the CNN
    ],
)
def test_ppo_runs_on_every_supported_space(tmp_path: Path, env_id: str) -> None:
    result = mentor.train(build(overrides=tiny(tmp_path, env_id)))
    assert result.stop_reason.startswith("budget")
    assert result.total_steps == 384
    agent = mentor.load(result.run_dir)
    env = agent.experiment.env
    from mentor.envs.resolve import make_env

    single = make_env(env.id, env.kwargs)
    obs, _ = single.reset(seed=0)
    action = agent.act(obs)
    assert single.action_space.contains(
        np.asarray(action, dtype=single.action_space.dtype)
        if not isinstance(single.action_space, gym.spaces.Discrete)
        else action
    )
    assert len(result.validations) == 1 and result.evaluation.episodes == 2


@pytest.mark.parametrize("fast_kernels", ["1", "0"])  # MENTOR_FAST_KERNELS=0: nn.Tanh
@pytest.mark.parametrize("options", [[], ["env.normalize_obs=true", "env.normalize_reward=true",
                                          "agent.network.shared=true"]])  # fmt: skip
def test_same_seed_gives_bitwise_equal_parameters(
    tmp_path: Path, monkeypatch, options, fast_kernels: str
) -> None:
    monkeypatch.setenv("MENTOR_FAST_KERNELS", fast_kernels)
    weights = []
    for name in ("a", "b"):
        overrides = tiny(tmp_path, "CartPole-v1", f"name={name}", "seed=5", *options)
        result = mentor.train(build(overrides=overrides))
        weights.append(load_file(str(result.run_dir / "final" / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    other = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", "name=c", "seed=6")))
    different = load_file(str(other.run_dir / "final" / "model.safetensors"))
    assert not torch.equal(different["actor_head.weight"], weights[0]["actor_head.weight"])


def test_observation_statistics_are_saved_with_the_agent(tmp_path: Path) -> None:
    result = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", "env.normalize_obs=true")))
    weights = load_file(str(result.run_dir / "final" / "model.safetensors"))
    assert weights["normalizer.stats.count"].item() > 300  # every valid observation counted
    agent = mentor.load(result.run_dir / "final")
    assert torch.equal(agent.policy.normalizer.stats.mean, weights["normalizer.stats.mean"])


def test_nan_observation_stops_with_a_clear_error_and_keeps_checkpoints(tmp_path: Path) -> None:
    # FAULT-6: NaN appears after 700 env steps; a checkpoint was written at 512.
    overrides = tiny(tmp_path, "mentor.envs.testing:NaNEnv", "env.kwargs={nan_after: 350}",
                     "checkpoints.every_steps=256", "stopping.total_steps=4096",
                     "validation.every_steps=100000", "env.vectorization=sync")  # fmt: skip
    with pytest.raises(NonFiniteError, match=r"env \d returned an observation with nan"):
        mentor.train(build(overrides=overrides))
    run_dir = tmp_path / "ppo-mentor.envs.testing_NaNEnv"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stop_reason"].startswith("error: env")
    assert not (run_dir / "final").exists()  # nothing written from the poisoned state
    agent = mentor.load(run_dir)  # the last good periodic checkpoint
    assert agent.folder.name.startswith("step_")


def test_nan_loss_names_the_loss_term(tmp_path: Path) -> None:
    # FAULT-35: with the env check off, a NaN reward reaches the returns and the value loss.
    poison = "env.kwargs={nan_after: 20, where: reward}"
    overrides = tiny(tmp_path, "mentor.envs.testing:NaNEnv", poison, "env.check_finite=false")
    with pytest.raises(NonFiniteError, match="loss/value"):
        mentor.train(build(overrides=overrides))


def test_initial_policy_from_a_checkpoint_whole_partial_and_frozen(tmp_path: Path) -> None:
    source = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", "name=source")))
    trained = load_file(str(source.run_dir / "final" / "model.safetensors"))
    # Whole, frozen actor body: after training on, the frozen layers are exactly the loaded ones.
    result = mentor.train(build(overrides=tiny(
        tmp_path, "CartPole-v1", "name=frozen", f"agent.init={source.run_dir / 'final'}",
        "agent.freeze=[actor_body]",
    )))  # fmt: skip
    after = load_file(str(result.run_dir / "final" / "model.safetensors"))
    assert torch.equal(after["actor_body.0.weight"], trained["actor_body.0.weight"])
    assert not torch.equal(after["critic_head.weight"], trained["critic_head.weight"])
    # Partial: only the critic is loaded; the actor starts from the seeded random init.
    experiment = build(overrides=tiny(
        tmp_path, "CartPole-v1", "name=partial", "seed=9", f"agent.init={source.run_dir / 'final'}",
        "agent.init_layers=[critic_]", "stopping.total_steps=1",
    ))  # fmt: skip
    from mentor.agent import Agent, initialize

    agent = Agent.build(experiment, *_cartpole_spaces())
    initialize(agent, experiment.agent)
    state = agent.policy.state_dict()
    assert torch.equal(state["critic_head.weight"], trained["critic_head.weight"])
    assert not torch.equal(state["actor_head.weight"], trained["actor_head.weight"])
    bad = parse({"agent": {"init": str(source.run_dir), "init_layers": ["nothing"]}})
    with pytest.raises(ConfigError, match="matches no parameter"):
        initialize(Agent.build(bad, *_cartpole_spaces()), bad.agent)


def _cartpole_spaces():
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


def test_plateau_stops_training_and_says_why(tmp_path: Path) -> None:
    # A learning rate too small to move: validation returns stay flat, so the trend test stops.
    overrides = tiny(tmp_path, "CartPole-v1", "method.learning_rate=1e-9",
                     "stopping.total_steps=100000", "validation.every_steps=128",
                     "stopping.plateau={window: 5}")  # fmt: skip
    result = mentor.train(build(overrides=overrides))
    assert result.stop_reason.startswith("plateau: no upward trend in the last 5 validations")
    assert result.total_steps < 100_000
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["stop_reason"] == result.stop_reason


def test_checkpoints_keep_the_latest_few_and_the_best(tmp_path: Path) -> None:
    overrides = tiny(tmp_path, "CartPole-v1", "checkpoints.every_steps=128",
                     "checkpoints.keep_last=2", "stopping.total_steps=768")  # fmt: skip
    result = mentor.train(build(overrides=overrides))
    periodic = sorted(p.name for p in (result.run_dir / "checkpoints").glob("step_*"))
    assert periodic == ["step_000000000640", "step_000000000768"]
    assert (result.run_dir / "checkpoints" / "best" / "meta.json").exists()
    assert not list(result.run_dir.rglob(".tmp-*"))


def preset_cartpole_run(tmp_path: Path, seed: int, *overrides: str) -> mentor.Result:
    """The run of the test below (benchmarks/seed_distributions.py runs it for many seeds)."""
    overrides = (f"output_dir={tmp_path}", f"seed={seed}", *QUIET, *overrides)
    return mentor.train(build(method="ppo", env_id="CartPole-v1", overrides=list(overrides)))


@pytest.mark.learning
def test_ppo_solves_cartpole_within_seconds(tmp_path: Path) -> None:
    """The shipped preset reaches CartPole-v1's reward threshold (475, Gymnasium's definition of
    solved) on its deterministic 20-episode validation within its 100k-step budget, and the
    100-episode final evaluation of that checkpoint, on other seeds, confirms it to within 10%.

    Measured by benchmarks/seed_distributions.py ppo_cartpole, 2026-12-02, mentor at 6687122:
    seeds 0-39 and, with MENTOR_FAST_KERNELS=0 (other numerics), seeds 0-19; 60 runs."""
    result = preset_cartpole_run(tmp_path, seed=0)
    # Every run stopped at the target: steps to it min 10k, median 20k, max 50k (seed 38, and
    # seeds 3 and 12 under nn.Tanh), half the budget.
    assert result.stop_reason.startswith("target")
    assert result.evaluation.episodes == 100
    # A 20-episode mean of 475 does not make a 100-episode one: the evaluation was below 475 in 2
    # of the 60 runs (seed 36: 453.0 after validating at 475.9; seed 0: 472.6 after 480.8),
    # median 500. 0.9 * 475 = 427.5 leaves 25 below the lowest; a policy that did not solve the
    # task stops at the budget, not at the target, and fails the assertion above.
    assert result.evaluation.return_mean >= 0.9 * 475


def test_a_setup_error_is_recorded_in_the_manifest(tmp_path: Path) -> None:
    # FAULT-27 through agent.init: the checkpoint's spaces differ from the env's.
    source = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", "name=source")))
    overrides = tiny(tmp_path, "Acrobot-v1", "name=mismatch", f"agent.init={source.run_dir}")
    with pytest.raises(CheckpointError, match="observation space"):
        mentor.train(build(overrides=overrides))
    manifest = json.loads((tmp_path / "mismatch" / "manifest.json").read_text())
    assert manifest["stop_reason"].startswith("error: agent.init")


def test_options_async_envs_target_kl_value_clipping_and_schedules(tmp_path: Path) -> None:
    overrides = tiny(
        tmp_path, "CartPole-v1", "env.vectorization=async", "env.num_envs=2",
        "method.target_kl=1e-9", "method.num_epochs=5", "method.value_clip_coef=0.2",
        "method.clip_coef={kind: linear, start: 0.3, end: 0.1}",
        "exploration.entropy_coef={kind: exponential, start: 0.1, end: 0.001}",
        "method.max_grad_norm=null",
    )  # fmt: skip
    result = mentor.train(build(overrides=overrides))
    assert result.total_steps == 384
    import csv

    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(row["train/epochs"] == "1" for row in rows)  # the KL target stops after epoch 1
    clip = [float(row["train/clip_coef"]) for row in rows]
    entropy = [float(row["train/entropy_coef"]) for row in rows]
    assert clip[0] == pytest.approx(0.3) and clip == sorted(clip, reverse=True)
    assert entropy[0] == pytest.approx(0.1) and entropy[-1] < entropy[0]


class BareResetEnv(gym.Env):
    """Breaks the API (FAULT-1): reset returns the observation alone, not (obs, info)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32)

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


def test_an_env_that_breaks_the_api_is_named_before_training(tmp_path: Path) -> None:
    overrides = tiny(tmp_path, f"{__name__}:BareResetEnv")
    with pytest.raises(EnvError, match=r"breaks the Gymnasium API \(reset API: .*\(obs, info\)"):
        mentor.train(build(overrides=overrides))
    assert not list(tmp_path.iterdir())  # no run folder for a run that could not start


def test_freezing_every_parameter_is_a_clear_error(tmp_path: Path) -> None:
    source = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", "name=source")))
    overrides = tiny(tmp_path, "CartPole-v1", "name=frozen", f"agent.init={source.run_dir}",
                     "agent.freeze=[actor, critic]")  # fmt: skip
    with pytest.raises(ConfigError, match="freezes every parameter of the network"):
        mentor.train(build(overrides=overrides))


def test_validation_and_final_evaluation_use_their_own_number_of_envs(tmp_path, monkeypatch):
    from mentor.core.vec_env import VecEnv

    made: list[int] = []
    original = VecEnv.make.__func__

    def recording(cls, env_id, kwargs, num_envs, **options):
        made.append(num_envs)
        return original(cls, env_id, kwargs, num_envs, **options)

    monkeypatch.setattr(VecEnv, "make", classmethod(recording))
    overrides = tiny(tmp_path, "CartPole-v1", "validation.num_envs=3", "validation.episodes=6",
                     "evaluation.num_envs=5", "evaluation.episodes=10")  # fmt: skip
    result = mentor.train(build(overrides=overrides))
    assert made == [4, 3, 5]  # training, validation, final evaluation
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    assert evaluation["episodes"] == 10
