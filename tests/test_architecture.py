"""The joints the methods plug into (issue 11): one registration per method, imports that point
down, one policy interface, PPO's public loop with a critic input. Every registered method
trains a few hundred steps on a space it supports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import ClassVar, Literal

import gymnasium as gym
import numpy as np
import pytest
import torch
from pydantic import Field

import mentor
from mentor.agent import Agent
from mentor.core.networks import ActorCritic, PolicyHead
from mentor.data.load import save_dataset
from mentor.data.record import record
from mentor.errors import ConfigError
from mentor.experiment import (
    METHOD_CONFIGS,
    BCConfig,
    Experiment,
    OffPolicyConfig,
    PPOConfig,
    build,
    method_module,
)
from mentor.experiment.methods import MethodSection, _registered
from mentor.methods import ppo
from mentor.runs.folder import RunFolder
from mentor.runs.session import training_setup

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["logging.progress=false", "logging.tensorboard=false"]
# An env of each action kind the methods support (small and quick).
ENVS = {"Discrete": "CartPole-v1", "Box": "mentor.envs.testing:ContinuousEnv"}


# --- imports -----------------------------------------------------------------------------------


def test_the_import_contracts_hold() -> None:
    """import-linter's contracts in pyproject.toml: layers, methods independent of each other,
    the core free of the experiment, runs and methods (also run by make test and make lint)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_no_module_imports_a_private_name_of_another() -> None:
    """`from mentor.x import _name` across modules: what a module keeps private stays so (GAIL
    once called ppo._train)."""
    offenders = []
    for path in (ROOT / "mentor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mentor"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and node.module != "mentor":
                    offenders.append(f"{path.relative_to(ROOT)}: {node.module} {private}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not (node.attr.startswith("__"))
            ):
                value = node.value
                if isinstance(value, ast.Name) and value.id in {"ppo", "sac", "td3", "bc", "gail"}:
                    offenders.append(f"{path.relative_to(ROOT)}: {value.id}.{node.attr}")
    assert not offenders, offenders


# --- one registration ------------------------------------------------------------------------


def test_every_registered_method_has_its_module_and_preset() -> None:
    for name, cfg in METHOD_CONFIGS.items():
        module = method_module(name)
        assert callable(module.train) and callable(module.build_networks), name
        assert cfg.supported_actions, name
        assert (ROOT / "mentor" / "presets" / f"{name}.yaml").is_file(), name


def test_a_method_registered_without_a_preset_or_a_space_is_refused() -> None:
    class NoPreset(MethodSection):
        name: Literal["nopreset"] = Field("nopreset")
        module: ClassVar[str] = "mentor.methods.ppo"
        supported_actions: ClassVar = ("Discrete",)

    class NoSpace(MethodSection):
        name: Literal["ppo"] = Field("ppo")
        module: ClassVar[str] = "mentor.methods.ppo"
        supported_actions: ClassVar = ()

    with pytest.raises(
        TypeError,
        match=r"NoPreset is registered without a preset file "
        r"presets/nopreset\.yaml",
    ):
        _registered((NoPreset,))
    with pytest.raises(TypeError, match="NoSpace is registered without supported action spaces"):
        _registered((NoSpace,))
    with pytest.raises(TypeError, match="method name 'ppo' is registered twice"):
        _registered((PPOConfig, PPOConfig))


def test_unknown_methods_get_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown method 'ppp' \(did you mean: ppo"):
        method_module("ppp")


def random_policy(space: gym.Space):
    def act(obs: np.ndarray) -> np.ndarray:
        return np.stack([space.sample() for _ in range(len(obs))])

    return act


def smoke_overrides(name: str, tmp_path: Path, env_id: str) -> list[str]:
    """A few hundred steps of the method, whatever its family."""
    cfg = METHOD_CONFIGS[name]
    extra = ["stopping.total_steps=256", "env.num_envs=2"]
    if issubclass(cfg, PPOConfig):
        extra += ["method.num_steps=64", "method.num_minibatches=2"]
    if issubclass(cfg, OffPolicyConfig):
        extra += ["method.learning_starts=64", "method.batch_size=32", "method.buffer_size=1000"]
    if issubclass(cfg, BCConfig):
        extra += ["method.max_epochs=2"]
    if name == "rarl":  # on CartPole's Discrete actions the adversary perturbs observations
        extra += ["method.adversary=observation", "method.num_steps=64"]
    if name == "dagger":
        extra += [
            "method.expert=test_architecture:dagger_expert",
            "method.rounds=1",
            "method.episodes_per_round=2",
        ]
    if cfg.needs_data:
        env = gym.make(env_id) if ":" not in env_id else None
        space = env.action_space if env is not None else gym.spaces.Box(-1, 1, (2,), np.float32)
        data = record(random_policy(space), env_id, {}, 3, seed=0)
        extra.append(f"data.path={save_dataset(data, tmp_path / 'data', env_id=env_id)}")
    return [
        f"output_dir={tmp_path}",
        "validation.every_steps=128",
        "validation.episodes=2",
        "validation.num_envs=2",
        "evaluation.episodes=2",
        *QUIET,
        *extra,
    ]


def dagger_expert(obs: np.ndarray) -> np.ndarray:
    """CartPole: push toward where the pole falls."""
    return (np.asarray(obs)[:, 2] > 0).astype(np.int64)


@pytest.mark.parametrize("name", list(METHOD_CONFIGS))
def test_every_registered_method_trains_on_a_space_it_supports(name: str, tmp_path) -> None:
    supported = [kind for kind in ENVS if kind in METHOD_CONFIGS[name].supported_actions]
    env_id = ENVS[supported[0]]
    if METHOD_CONFIGS[name].multi_agent:  # a small PettingZoo env, Discrete actions
        env_id = "mentor.envs.teams:beacons"
    experiment = build(
        method=name, env_id=env_id, overrides=smoke_overrides(name, tmp_path, env_id)
    )
    result = mentor.train(experiment)
    assert not result.stop_reason.startswith(("error", "interrupted")), result.stop_reason
    assert (result.run_dir / "final" / "model.safetensors").is_file()
    assert result.evaluation is not None and np.isfinite(result.evaluation.return_mean)
    agent = result.agent  # and it loads as an agent
    assert isinstance(agent, Agent)
    assert agent.experiment.method == experiment.method


# --- one policy interface ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "env_id"),
    [
        ("ppo", "CartPole-v1"),
        ("ppo", "Pendulum-v1"),
        ("sac", "Pendulum-v1"),
        ("sac", "CartPole-v1"),
        ("td3", "Pendulum-v1"),
        ("dqn", "CartPole-v1"),
    ],
)
def test_every_network_answers_the_policy_interface(name: str, env_id: str) -> None:
    """Its mode is the action the agent takes; log-probabilities have one value per row; the
    policy's parameters are the networks' without the critics'."""
    env = gym.make(env_id)
    experiment = build(method=name, env_id=env_id)
    agent = Agent.build(experiment, env.observation_space, env.action_space)
    nets: PolicyHead = agent.policy
    obs = torch.as_tensor(np.stack([env.observation_space.sample() for _ in range(5)]))
    params = nets.policy_params(obs)
    mode = nets.dist.sample(params, True)
    expected = agent.predict(obs.numpy(), deterministic=True)
    if nets.unit_box_actions and isinstance(env.action_space, gym.spaces.Box):
        low, high = env.action_space.low, env.action_space.high
        expected = 2 * (expected - low) / (high - low) - 1  # the env's units back to [-1, 1]
    np.testing.assert_allclose(mode.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    if nets.dist.has_density:
        assert nets.dist.log_prob(params, mode).shape == (5,)
        assert nets.dist.entropy(params).shape == (5,)
    own = {id(p) for p in nets.actor_parameters()}
    critic = getattr(nets, "critic", None) or getattr(nets, "critic_head", None)
    if critic is not None:
        assert not own & {id(p) for p in critic.parameters()}


@pytest.mark.parametrize(
    ("policy_of", "env_id", "loss"),
    [("td3", "Pendulum-v1", "mse"), ("dqn", "CartPole-v1", "log_likelihood")],
)
def test_bc_trains_the_networks_of_td3_and_dqn(policy_of, env_id, loss, tmp_path) -> None:
    from mentor.agent import policy_from

    name = "pendulum" if env_id == "Pendulum-v1" else "cartpole"
    data = record(policy_from(f"mentor.envs.experts:{name}"), env_id, {}, 3, seed=0)
    path = save_dataset(data, tmp_path / "data", env_id=env_id)
    experiment = build(
        method="bc",
        env_id=env_id,
        overrides=[
            f"output_dir={tmp_path}",
            f"data.path={path}",
            f"method.policy_of={policy_of}",
            f"method.loss={loss}",
            "method.max_epochs=3",
            "evaluation.episodes=2",
            *QUIET,
        ],
    )
    result = mentor.train(experiment)
    agent = mentor.load(result.run_dir)
    assert type(agent.policy).__name__ == {"td3": "TD3Networks", "dqn": "DQNNetworks"}[policy_of]
    with pytest.raises(ConfigError, match="td3's policy is deterministic and has no likelihood"):
        mentor.train(
            build(
                method="bc",
                env_id="Pendulum-v1",
                overrides=[
                    f"output_dir={tmp_path}",
                    f"data.path={path}",
                    "method.policy_of=td3",
                    *QUIET,
                ],
            )
        )


# --- PPO's public loop with a critic input -----------------------------------------------------


class TimeInEpisode:
    """The critic reads the observation and the fraction of the time limit elapsed: the
    information a time-limited task's value depends on and a Markov actor does not need."""

    space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, venv) -> np.ndarray:
        self.calls += 1
        elapsed = venv.episode_length[:, None].astype(np.float32) / 500.0
        return np.concatenate([venv.last_obs, elapsed], axis=1)


def test_ppo_run_feeds_a_critic_input_to_the_critic(tmp_path: Path) -> None:
    experiment = build(
        method="ppo",
        env_id="CartPole-v1",
        overrides=[
            f"output_dir={tmp_path}",
            "stopping.total_steps=2048",
            "stopping.target_return=null",
            # The final evaluation reloads the agent through PPO's build_networks, whose critic
            # reads the observation: a method with a critic input builds its critic there.
            "evaluation.episodes=0",
            "checkpoints.keep_best=false",
            "validation.every_steps=1024",
            *QUIET,
        ],
    )
    run = RunFolder.create(tmp_path, "critic-input")
    run.start(experiment.to_yaml(), {"name": "critic-input"})
    critic = TimeInEpisode()
    with training_setup(experiment) as (venv, agent):
        cfg = experiment.agent.network
        agent.policy = ActorCritic(
            venv.observation_space, venv.action_space, cfg, critic_space=critic.space
        )
        before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
        result = ppo.run(experiment, run, venv, agent, critic_input=critic)
    assert result.total_steps == 2048
    # One call per collected step and one for the bootstrap, per rollout (8 rollouts of 32).
    assert critic.calls == 8 * (32 + 1)
    after = agent.policy.state_dict()
    assert after["critic_body.0.weight"].shape == (64, 5)  # it reads the 5 numbers
    assert not torch.equal(before["critic_body.0.weight"], after["critic_body.0.weight"])
    with (
        pytest.raises(ValueError, match="critic_input and the networks disagree"),
        training_setup(experiment) as (venv, agent),
    ):
        ppo.run(experiment, RunFolder.create(tmp_path, "x"), venv, agent, critic_input=critic)


def test_an_experiment_never_mentions_torch() -> None:
    """The experiment (schema, methods, loading) and mentor.sections stay torch-free."""
    code = "import sys, mentor.experiment; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
    assert Experiment().method.name == "ppo"
