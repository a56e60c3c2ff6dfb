"""GAIL: the discriminator separates expert from random pairs, GAIL imitates a CartPole expert
from 10 episodes, its options run on every space, a space mismatch is refused, resume is exact."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.agent import policy_from
from mentor.core.device import set_threads
from mentor.data.dataset import Dataset
from mentor.data.load import save_dataset
from mentor.data.record import record
from mentor.envs.resolve import make_env
from mentor.errors import DatasetError
from mentor.experiment import GAILConfig, build
from mentor.methods import gail

QUIET = ["logging.progress=false", "logging.tensorboard=false"]
RANDOM_RETURN, EXPERT_RETURN = 22.0, 500.0  # CartPole-v1: a uniformly random policy, the best


def cartpole_expert(obs: np.ndarray) -> np.ndarray:
    """Push toward the side the pole falls to (angle plus half its velocity): 500 every time."""
    obs = np.asarray(obs)
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def random_policy(env_id: str, seed: int = 0):
    """Uniformly random actions, one per observation of the batch (a dict for Dict spaces)."""
    space = make_env(env_id, None).action_space
    space.seed(seed)

    def act(obs: np.ndarray | dict) -> np.ndarray:
        batch = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
        return np.stack([space.sample() for _ in range(batch)])

    return act


@pytest.fixture(scope="module")
def expert_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path]:
    """10 episodes of the scripted CartPole expert, in memory and as a dataset folder."""
    dataset = record(cartpole_expert, "CartPole-v1", None, episodes=10, seed=0)
    assert (dataset.episode_returns() == EXPERT_RETURN).all()
    folder = save_dataset(dataset, tmp_path_factory.mktemp("data") / "cartpole-expert")
    return dataset, folder


def tiny(tmp_path: Path, env_id: str, data: Path, *extra: str) -> list[str]:
    """A GAIL run of a few rollouts."""
    return [
        "method.name=gail", f"env.id={env_id}", f"data.path={data}", f"output_dir={tmp_path}",
        "env.num_envs=2", "method.num_steps=32", "method.num_epochs=2", "method.num_minibatches=2",
        "method.discriminator_batch_size=16", "stopping.total_steps=192",
        "validation.every_steps=128", "validation.episodes=2", "validation.num_envs=2",
        "evaluation.episodes=2", "env.max_episode_steps=50", *QUIET, *extra,
    ]  # fmt: skip


# --- the discriminator alone --------------------------------------------------------------------


@pytest.mark.learning
def test_discriminator_separates_expert_from_random_pairs(expert_data) -> None:
    expert, _ = expert_data
    metrics, expert_accuracy, random_accuracy, rewards = separate(expert, seed=0)
    assert set(metrics) >= {"discriminator/loss_bce", "discriminator/accuracy_expert"}
    assert expert_accuracy > 0.9 and random_accuracy > 0.9, (expert_accuracy, random_accuracy)
    assert rewards["gail"][0] > rewards["gail"][1] > 0
    assert rewards["airl"][0] > 0 > rewards["airl"][1]


def separate(expert: Dataset, seed: int) -> tuple[dict, float, float, dict[str, list[float]]]:
    """The discriminator of the test above, trained 30 steps on 80% of the expert's episodes and
    of 250 random ones (its weights and batches seeded by ``seed``): its last metrics, its
    accuracies and mean rewards (expert, random) on the other 20%."""
    rng = np.random.default_rng(0)
    random = record(lambda obs: rng.integers(0, 2, len(obs)), "CartPole-v1", None, 250, seed=100)
    cpu = torch.device("cpu")
    set_threads(1)  # as training does: fastest for small networks

    def halves(ds: Dataset) -> tuple:  # the first 80% of the episodes train, the rest test
        k = int(0.8 * ds.num_episodes)
        return tuple(
            gail.expert_pairs(ds.episodes(list(part)), ds.action_space, cpu)
            for part in (range(k), range(k, ds.num_episodes))
        )

    (expert_train, expert_test), (random_train, random_test) = halves(expert), halves(random)
    cfg = GAILConfig(
        gradient_penalty=None, discriminator_learning_rate=1e-3, discriminator_batch_size=64
    )
    torch.manual_seed(seed)
    disc = gail.build_discriminator(
        cfg, expert.observation_space, expert.action_space, expert_train[0]
    )
    optimizer = torch.optim.Adam(disc.parameters(), lr=cfg.discriminator_learning_rate)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(30):
        metrics = gail.train_discriminator(
            disc, optimizer, expert_train, *random_train, cfg, generator
        )
    with torch.no_grad():
        expert_accuracy = (disc(*expert_test) > 0).float().mean().item()
        random_accuracy = (disc(*random_test) < 0).float().mean().item()
        # rewards: gail's -log(1 - D) is higher on the expert's pairs, and positive
        rewards = {
            kind: [gail.discriminator_rewards(disc, *pairs, kind).mean().item()
                   for pairs in (expert_test, random_test)]
            for kind in ("gail", "airl")
        }  # fmt: skip
    return metrics, expert_accuracy, random_accuracy, rewards


def test_gradient_penalty_is_r1_on_expert_inputs() -> None:
    """The penalty term is (gamma / 2) times the mean squared norm of the logit's input gradient
    at the expert pairs, computed here by hand."""
    from gymnasium import spaces

    cfg = GAILConfig(gradient_penalty=4.0, discriminator_hidden_sizes=[8])
    obs_space = spaces.Box(-1, 1, (3,))
    action_space = spaces.Discrete(2)
    torch.manual_seed(0)
    disc = gail.build_discriminator(cfg, obs_space, action_space, torch.randn(10, 3))
    obs, actions = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    terms, _ = gail.discriminator_loss(disc, obs, actions, obs, actions, cfg.gradient_penalty)
    x_obs, x_act = (x.requires_grad_(True) for x in disc.inputs(obs, actions))
    grads = torch.autograd.grad(disc.logits_from(x_obs, x_act).sum(), [x_obs, x_act])
    expected = 2.0 * sum(g.square().sum(1) for g in grads).mean()
    torch.testing.assert_close(terms["loss/gradient_penalty"], expected)
    assert set(terms) == {"loss/bce", "loss/gradient_penalty"}
    terms, _ = gail.discriminator_loss(disc, obs, actions, obs, actions, None)
    assert set(terms) == {"loss/bce"}


def test_absorbing_rows_and_the_reward_of_a_terminated_step(tmp_path: Path) -> None:
    """Expert side: one absorbing row per terminated episode. Rollout: a terminated step's reward
    is its pair's plus gamma / (1 - gamma) times the absorbing state's; other steps keep theirs."""
    from mentor.core.storage import RolloutStorage
    from mentor.core.vec_env import VecEnv

    random = record(random_policy("CartPole-v1"), "CartPole-v1", None, episodes=3, seed=0)
    assert random.terminations.sum() == 3  # random CartPole episodes fall
    folder = save_dataset(random, tmp_path / "random")
    experiment = build(method="gail", env_id="CartPole-v1", overrides=[
        f"data.path={folder}", "method.reward=airl", "method.gamma=0.9"])  # fmt: skip
    venv = VecEnv.make("CartPole-v1", {}, 2)
    model = gail.DiscriminatorReward(experiment, venv, random, torch.device("cpu"))
    obs, actions, flags = model.expert
    assert flags.tolist() == [0.0] * len(random) + [1.0] * 3
    assert (obs[len(random) :] == 0).all() and (actions[len(random) :] == 0).all()
    assert model.discriminator.absorbing

    storage = RolloutStorage(3, 2, (4,), torch.float32, (), torch.int64)
    storage.obs.normal_(generator=torch.Generator().manual_seed(0))
    storage.actions[:] = torch.tensor([[0, 1], [1, 1], [0, 0]])
    storage.terminated[1, 0] = True
    storage.valid[2, 0] = False  # the reset step after that termination
    metrics = model(storage)
    pairs = storage.obs.flatten(0, 1), storage.actions.flatten(0, 1)
    own = gail.discriminator_rewards(model.discriminator, *pairs, "airl").view(3, 2)
    absorbing = metrics["discriminator/absorbing_reward"]
    expected = own.clone()
    expected[1, 0] += 0.9 / (1 - 0.9) * absorbing
    expected[2, 0] = 0.0
    torch.testing.assert_close(storage.rewards, expected)
    one = gail.with_absorbing(pairs[0][:0], pairs[1][:0], 1)
    assert gail.discriminator_rewards(model.discriminator, *one[:2], "airl", one[2]).item() == (
        pytest.approx(absorbing)
    )


def test_absorbing_is_on_with_airl_by_default_and_needs_gamma_below_1(tmp_path: Path) -> None:
    assert GAILConfig(reward="airl").uses_absorbing and not GAILConfig().uses_absorbing
    assert GAILConfig(reward="gail", absorbing=True).uses_absorbing
    from mentor.core.vec_env import VecEnv
    from mentor.errors import ConfigError

    random = record(random_policy("CartPole-v1"), "CartPole-v1", None, episodes=1, seed=0)
    folder = save_dataset(random, tmp_path / "random")
    experiment = build(method="gail", env_id="CartPole-v1", overrides=[
        f"data.path={folder}", "method.reward=airl", "method.gamma=1"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"method\.absorbing needs method\.gamma < 1"):
        gail.DiscriminatorReward(experiment, VecEnv.make("CartPole-v1", {}, 1), random,
                                 torch.device("cpu"))  # fmt: skip


# --- imitation ----------------------------------------------------------------------------------


# The learning runs of the tests below (benchmarks/seed_distributions.py runs them for many seeds).


def cartpole_score(result: mentor.Result) -> float:
    """The final evaluation's return on a scale from random actions (0) to the expert (1)."""
    return (result.evaluation.return_mean - RANDOM_RETURN) / (EXPERT_RETURN - RANDOM_RETURN)


def imitate_cartpole(
    tmp_path: Path, folder: Path, reward: str, seed: int, *overrides: str
) -> mentor.Result:
    """GAIL's CartPole preset on the demonstrations in ``folder``."""
    options = [f"data.path={folder}", f"output_dir={tmp_path}", "evaluation.episodes=20",
               f"seed={seed}", f"method.reward={reward}", *QUIET, *overrides]  # fmt: skip
    return mentor.train(build(method="gail", env_id="CartPole-v1", overrides=options))


def airl_on_random_actions(tmp_path: Path, seed: int, *overrides: str) -> mentor.Result:
    rng = np.random.default_rng(0)
    data = record(lambda obs: rng.integers(0, 2, len(obs)), "CartPole-v1", None, 230, seed=0)
    folder = save_dataset(data, tmp_path / "random")
    budget = "stopping.total_steps=30000"
    return imitate_cartpole(tmp_path, folder, "airl", seed, budget, *overrides)


def imitate_td3_pendulum(
    tmp_path: Path, seed: int, *overrides: str
) -> tuple[float, float, mentor.Result]:
    """TD3's Pendulum preset trained here as the expert, GAIL's preset on 10 of its episodes,
    both with ``seed``: the expert's return and GAIL's score."""
    run = [f"output_dir={tmp_path}", "evaluation.episodes=20", f"seed={seed}", *QUIET]
    expert = mentor.train(build(method="td3", env_id="Pendulum-v1", overrides=run))
    expert_return, random_return = expert.evaluation.return_mean, -1200.0
    data = record(policy_from(str(expert.run_dir)), "Pendulum-v1", None, episodes=10, seed=0)
    folder = save_dataset(data, tmp_path / "pendulum-expert")
    options = [f"data.path={folder}", "stopping.target_return=-250", *overrides]
    result = mentor.train(build(method="gail", env_id="Pendulum-v1", overrides=[*run, *options]))
    score = (result.evaluation.return_mean - random_return) / (expert_return - random_return)
    return expert_return, score, result


@pytest.mark.learning
@pytest.mark.parametrize("reward", ["gail", "airl"])
def test_gail_imitates_the_cartpole_expert_from_10_episodes(
    tmp_path: Path, expert_data, reward: str
) -> None:
    _, folder = expert_data
    result = imitate_cartpole(tmp_path, folder, reward, seed=1)
    score = cartpole_score(result)
    assert score >= 0.90, (score, result.stop_reason, result.validations)
    with open(result.run_dir / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    for key in ("discriminator/loss_bce", "discriminator/loss_gradient_penalty",
                "discriminator/accuracy_expert", "discriminator/accuracy_policy",
                "discriminator/reward_mean", "train/loss_policy",
                "rollout/ep_return_mean"):  # fmt: skip
        assert key in row, key
    # the agent is PPO's actor-critic: it loads and acts like any mentor agent
    agent = mentor.load(result.run_dir)
    assert agent.act(np.zeros(4, dtype=np.float32)) in (0, 1)


@pytest.mark.learning
def test_airl_reward_learns_nothing_from_random_actions(tmp_path: Path) -> None:
    """The control for the test above: CartPole rewards survival, so the gail reward (always
    positive) reaches 500 from any data; the airl reward reaches it only from the expert's."""
    result = airl_on_random_actions(tmp_path, seed=1)
    score = cartpole_score(result)
    assert score < 0.5, (score, result.validations)


@pytest.mark.learning
def test_gail_imitates_a_td3_pendulum_expert_from_10_episodes(tmp_path: Path) -> None:
    """Continuous actions: the expert is TD3's Pendulum preset (about -160), trained here."""
    expert_return, score, result = imitate_td3_pendulum(tmp_path, seed=0)
    assert expert_return > -250
    assert score >= 0.85, (score, result.stop_reason, result.validations)


# --- options and spaces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "options"),
    [
        ("CartPole-v1", ["method.spectral_norm=true", "method.reward=airl"]),
        ("CartPole-v1", ["method.gradient_penalty=null", "env.normalize_reward=true"]),
        ("Pendulum-v1", ["method.spectral_norm=true"]),  # Box actions
        ("mentor.envs.testing:MultiDiscreteEnv", []),
        ("mentor.envs.testing:MultiBinaryEnv", []),
        ("mentor.envs.testing:DictObsEnv", []),
        ("mentor.envs.testing:ImageEnv", ["method.spectral_norm=true"]),  # a CNN discriminator
    ],
)
def test_options_run_on_every_space(tmp_path: Path, env_id: str, options: list[str]) -> None:
    data = record(random_policy(env_id), env_id, None, episodes=3, max_episode_steps=50)
    folder = save_dataset(data, tmp_path / "data")
    result = mentor.train(build(overrides=tiny(tmp_path, env_id, folder, *options)))
    assert result.stop_reason.startswith("budget") and result.total_steps == 192
    weights = load_file(str(result.run_dir / "final" / "discriminator.safetensors"))
    if "method.spectral_norm=true" in options:
        assert any("parametrizations" in key for key in weights)
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(np.isfinite(float(row["discriminator/loss_bce"])) for row in rows)
    assert ("discriminator/loss_gradient_penalty" in rows[0]) == (
        "method.gradient_penalty=null" not in options
    )


def test_space_mismatch_is_refused_before_training(tmp_path: Path) -> None:
    pendulum = record(random_policy("Pendulum-v1"), "Pendulum-v1", None, 1, max_episode_steps=20)
    folder = save_dataset(pendulum, tmp_path / "pendulum")
    with pytest.raises(DatasetError, match="space"):
        mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", folder)))
    assert not (tmp_path / "gail-CartPole-v1" / "checkpoints").exists() or not list(
        (tmp_path / "gail-CartPole-v1" / "checkpoints").iterdir()
    )


# --- resume -------------------------------------------------------------------------------------


def test_resume_is_bitwise_exact(tmp_path: Path, expert_data) -> None:
    """A run stopped at half its budget and resumed ends where one never stopped does: the
    policy, the discriminator, and both optimizers' moments."""
    _, folder = expert_data
    # a constant learning rate: a schedule would follow the budget, which the resume changes
    options = ["stopping.total_steps=384", "checkpoints.every_steps=64", "seed=3",
               "method.learning_rate=0.001",
               "env.max_episode_steps=500"]  # fmt: skip
    whole = mentor.train(build(overrides=tiny(tmp_path, "CartPole-v1", folder, "name=a", *options)))
    half = mentor.train(build(overrides=tiny(
        tmp_path, "CartPole-v1", folder, "name=b", *options, "stopping.total_steps=192"
    )))  # fmt: skip
    resumed = mentor.resume(half.run_dir, ["stopping.total_steps=384"])
    assert resumed.total_steps == whole.total_steps == 384
    for part in ("model", "discriminator", "optimizer_discriminator", "optimizer"):
        ours = load_file(str(resumed.run_dir / "final" / f"{part}.safetensors"))
        theirs = load_file(str(whole.run_dir / "final" / f"{part}.safetensors"))
        assert ours.keys() == theirs.keys() and ours, part
        for key in theirs:
            assert torch.equal(ours[key], theirs[key]), f"{part}.{key} differs after resume"
