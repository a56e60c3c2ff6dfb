"""gSDE, generalized state-dependent exploration (issue 19, ``core/sde.py``): the policy's
density is exact, the collection noise has that density at every state and is drawn again at
the stated frequency, runs with it resume bitwise, and bad input is refused."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from test_resume import assert_bitwise_equal, copy_stopped_at, train
from test_rough_edges import one_line_error, run_cli

from mentor.core import sde as sde_module
from mentor.core.distributions import SquashedGaussian, StateGaussian
from mentor.core.sde import ExplorationNoise, StateDependentStd
from mentor.errors import ConfigError
from mentor.experiment import build
from mentor.methods import ppo, sac

SDE = "exploration.sde={sample_freq: -1, log_std_init: -1.0}"


def networks(method: str):
    experiment = build(method=method, env_id="Pendulum-v1", overrides=[SDE])
    env = gym.make("Pendulum-v1")
    module = ppo if method == "ppo" else sac
    return module.build_networks(experiment, env.observation_space, env.action_space)


def test_the_state_dependent_std_is_the_formula() -> None:
    """log std_k(s) = 0.5 log(sum_j z_j^2 sigma_jk^2 + 1e-6); no gradient reaches z unless the
    features are learned, and then the formula's own."""
    std = StateDependentStd(3, 2, -1.0)
    with torch.no_grad():
        std.log_std.copy_(torch.tensor([[-1.0, 0.0], [0.5, -2.0], [0.0, 1.0]]))
    z = torch.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
    sigma2 = (2 * std.log_std.detach()).exp()
    expected = 0.5 * torch.log((z.detach()[0, :, None] ** 2 * sigma2).sum(0) + 1e-6)
    assert torch.allclose(std(z)[0], expected)
    std(z).sum().backward()
    assert z.grad is None and std.log_std.grad.abs().sum() > 0
    learned = StateDependentStd(3, 2, -1.0, learn_features=True)
    with torch.no_grad():
        learned.log_std.copy_(std.log_std)
    assert torch.allclose(learned(z)[0], expected)
    learned(z).sum().backward()
    # d/dz_j of 0.5 log(v_k) summed over k: z_j sigma_jk^2 / v_k
    variance = (z.detach()[0, :, None] ** 2 * sigma2).sum(0) + 1e-6
    assert torch.allclose(z.grad[0], (z.detach()[0, :, None] * sigma2 / variance).sum(1))


def test_sac_learns_the_gsde_features_and_ppo_holds_them() -> None:
    """As in the authors' implementation: SAC's std gradient reaches the actor's features (its
    entropy bonus widens the noise through them; held, SAC+gSDE on MountainCarContinuous reached
    the flag in its 13th episode instead of its 2nd, seed 0), PPO's does not."""
    assert networks("sac").actor.sde.learn_features
    assert not networks("ppo").sde.learn_features


def test_the_state_gaussian_log_prob_and_entropy_are_exact() -> None:
    generator = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(64, 3, generator=generator), torch.randn(64, 3, generator=generator)
    actions = torch.randn(64, 3, generator=generator) * 2
    params = torch.cat([mean, log_std], -1)
    normal = torch.distributions.Normal(mean, log_std.exp())
    dist = StateGaussian(3)
    assert torch.allclose(dist.log_prob(params, actions), normal.log_prob(actions).sum(-1))
    assert torch.allclose(dist.entropy(params), normal.entropy().sum(-1))
    assert torch.equal(dist.sample(params, True), mean)


@pytest.mark.parametrize("method", ["ppo", "sac"])
def test_the_collection_noise_has_the_policys_density_at_a_state(method: str) -> None:
    """At one state, the actions explored with freshly drawn matrices are distributed as the
    policy whose log-probability the update uses: their mean and std per dimension (20,000
    draws; the standard error of the std is 0.5%) match the Gaussian's, before SAC's tanh."""
    torch.manual_seed(0)
    nets = networks(method)
    obs = torch.tensor([[0.3, -0.9, 1.7]])
    with torch.no_grad():
        params = nets.policy_params(obs)
        mean, log_std = params.chunk(2, -1)
        if method == "sac":
            mean, log_std = SquashedGaussian.split(params)
        n = 20_000
        eps = torch.randn(n, nets.sde.features if method == "ppo" else nets.actor.sde.features, 1)
        actions = nets.explore(obs.expand(n, 3), eps)
    pre = torch.atanh(actions.clamp(-1 + 1e-6, 1 - 1e-6)) if method == "sac" else actions
    assert abs(pre.mean().item() - mean.item()) < 4 * log_std.exp().item() / math.sqrt(n)
    assert pre.std().item() == pytest.approx(log_std.exp().item(), rel=0.02)
    # The log-probability the update uses is that of this Gaussian (of atanh a, for SAC).
    normal = torch.distributions.Normal(mean[0], log_std.exp()[0])
    dist_log_prob = nets.dist.log_prob(params.expand(5, -1), actions[:5])
    expected = normal.log_prob(pre[:5]).sum(-1)
    if method == "sac":
        expected = expected - torch.log(1 - actions[:5].square()).sum(-1)
    assert torch.allclose(dist_log_prob, expected, atol=1e-3)


def test_one_draw_gives_a_smooth_function_of_the_state() -> None:
    """Between draws the push is a function of the state: the same state, the same action;
    a nearby state, a nearby action; a new draw, another function."""
    torch.manual_seed(1)
    nets = networks("ppo")
    eps = torch.randn(1, nets.sde.features, 1)
    obs = torch.tensor([[0.3, -0.9, 1.7]])
    with torch.no_grad():
        a = nets.explore(obs, eps)
        assert torch.equal(nets.explore(obs, eps), a)
        near = nets.explore(obs + 1e-3, eps)
        other = nets.explore(obs, torch.randn(1, nets.sde.features, 1))
    assert (near - a).abs().item() < 1e-2 < (other - a).abs().item()


def test_the_matrices_are_drawn_again_every_sample_freq_steps() -> None:
    noise = ExplorationNoise(2, 4, 1, sample_freq=3)
    seen = [noise.step().clone() for _ in range(10)]
    changed = [t for t in range(1, 10) if not torch.equal(seen[t], seen[t - 1])]
    assert changed == [3, 6, 9] and noise.draws == 4
    assert not torch.equal(seen[0][0], seen[0][1])  # one matrix per env
    once = ExplorationNoise(2, 4, 1, sample_freq=-1)
    once.new_rollout()
    first = [once.step().clone() for _ in range(7)]
    assert all(torch.equal(m, first[0]) for m in first) and once.draws == 1
    once.new_rollout()
    assert not torch.equal(once.step(), first[0]) and once.draws == 2


@pytest.mark.parametrize(
    ("method", "extra", "draws"),
    [
        # PPO, once a rollout: 4 rollouts of 32 steps; every 10 steps: at steps 0, 10, ..., 120
        # of the 128 (counted across rollouts).
        ("ppo", ["method.num_steps=32", "stopping.total_steps=256"], 4),
        (
            "ppo",
            ["method.num_steps=32", "stopping.total_steps=256", "exploration.sde.sample_freq=10"],
            13,
        ),
        # SAC, once a round of gradient steps: train_freq 8 over 2 envs, a draw every 4 vector
        # steps of the 150 after the 100 warm-up env steps: 38.
        (
            "sac",
            ["method.train_freq=8", "method.learning_starts=100", "stopping.total_steps=400"],
            38,
        ),
    ],
)
def test_training_draws_the_noise_at_the_stated_frequency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, extra: list[str], draws: int
) -> None:
    counted = []
    real_draw = sde_module.ExplorationNoise.draw
    monkeypatch.setattr(
        sde_module.ExplorationNoise, "draw", lambda self: (counted.append(1), real_draw(self))
    )
    experiment = build(method=method, env_id="Pendulum-v1", overrides=[
        SDE, *extra, "env.num_envs=2", "validation.every_steps=100000", "evaluation.episodes=0",
        "logging.progress=false", "logging.tensorboard=false", f"output_dir={tmp_path}",
    ])  # fmt: skip
    import mentor

    mentor.train(experiment)
    assert len(counted) == draws


@pytest.mark.parametrize("method", ["ppo", "sac"])
def test_a_run_with_gsde_resumes_bitwise_equal(tmp_path: Path, method: str) -> None:
    """The matrices and their step count are training state: a run stopped between draws
    explores on exactly as the unbroken one (``exploration.sde.sample_freq`` 50: draws fall
    between checkpoints)."""
    extra = ["env.id=Pendulum-v1", SDE, "exploration.sde.sample_freq=50"]
    if method == "ppo":
        extra += ["env.num_envs=2", "method.num_steps=128", "stopping.total_steps=2048",
                  "checkpoints.every_steps=512", "validation.every_steps=1024"]  # fmt: skip
    reference = train(method, tmp_path, f"{method}-sde", *extra)
    run = copy_stopped_at(reference, tmp_path, keep=1)
    import mentor

    mentor.resume(run)
    assert_bitwise_equal(run, reference)


def test_gsde_with_a_discrete_action_space_is_one_line(tmp_path: Path) -> None:
    """Bad input (issue 19): gSDE on CartPole's Discrete(2) actions, from the CLI."""
    done = run_cli("train", "ppo", "CartPole-v1", "--set", SDE, "--set",
                   f"output_dir={tmp_path}", "--set", "logging.progress=false")  # fmt: skip
    line = one_line_error(done)
    assert "exploration.sde needs Box actions" in line and "Discrete(2)" in line


@pytest.mark.parametrize(
    ("method", "override", "said"),
    [
        ("ppo", "exploration.sde.sample_freq=0", "sample_freq 0: give a number of steps >= 1"),
        ("dqn", SDE, "exploration.sde is not used by method dqn"),
        ("td3", SDE, "exploration.sde is not used by method td3"),
        ("ippo", SDE, "exploration.sde is not used by method ippo"),
        ("gail", SDE, "exploration.sde is not used by method gail"),
    ],
)
def test_bad_gsde_settings_are_refused(method: str, override: str, said: str) -> None:
    env_id = "CartPole-v1" if method == "dqn" else "Pendulum-v1"
    overrides = [SDE, override] if override != SDE else [SDE]
    if method == "ippo":
        env_id = "mpe2.simple_spread_v3"
    with pytest.raises(ConfigError, match=said):
        build(method=method, env_id=env_id, overrides=overrides)
