"""Federated averaging (mentor/methods/fedavg.py, issue 20 part 8): the server's weighted mean,
secure aggregation's masks, differential privacy's clip, noise and budget, what crosses a
client's boundary, bad input, exact resume, and learning on a reduced budget."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error, run_main
from test_resume import assert_resumes_bitwise

import mentor
from mentor.core.vec_env import VecEnv
from mentor.errors import ConfigError
from mentor.experiment import build
from mentor.methods import fedavg
from mentor.report.report import write_report

QUIET = ["logging.progress=false", "logging.tensorboard=false"]
TWO = "method.clients=[{params: {length: 0.4}}, {params: {length: 0.8}}]"


def short(tmp_path: Path, name: str, *extra: str):
    """Two CartPole clients, 256 env steps each a round (2 rollouts of 2 x 64)."""
    return build(method="fedavg", env_id="CartPole-v1", overrides=[
        f"output_dir={tmp_path}", f"name={name}", "seed=3", TWO, "env.num_envs=2",
        "method.num_steps=64", "method.local_steps=256", "method.num_epochs=2",
        "agent.network.hidden_sizes=[16, 16]", "stopping.total_steps=2048",
        "checkpoints.every_steps=512", "checkpoints.keep_last=10", "validation.every_steps=1024",
        "validation.episodes=2", "evaluation.episodes=2", "method.matrix_episodes=2", *QUIET,
        *extra,
    ])  # fmt: skip


# --- the server's arithmetic ------------------------------------------------------------------


def test_the_server_step_is_the_mean_of_the_clients_changes_weighted_by_their_steps() -> None:
    """Two clients, 100 and 300 steps, changes [1, 2] and [3, -2]: (100 [1, 2] + 300 [3, -2]) /
    400 = [2.5, -1]."""
    changes = [np.array([1.0, 2.0]), np.array([3.0, -2.0])]
    steps = [100.0, 300.0]
    step = fedavg.aggregate([n * d for n, d in zip(steps, changes, strict=True)], steps, False)
    np.testing.assert_allclose(step, [2.5, -1.0])


def test_pairwise_masks_cancel_in_the_sum_and_hide_each_contribution() -> None:
    rng = np.random.default_rng(0)
    plain = [rng.normal(0, 0.01, 1000) * n for n in (512, 512, 1024)]
    weights = [512.0, 512.0, 1024.0]
    masked = [fedavg.mask(fedavg.encode(c), k, 3, seed=11, round_index=4)
              for k, c in enumerate(plain)]  # fmt: skip
    for contribution, seen in zip(plain, masked, strict=True):
        # what the server holds of one client is far from its contribution, in fixed point
        as_numbers = fedavg.decode(seen)
        assert np.mean(np.abs(as_numbers - contribution)) > 1e6
    secure = fedavg.aggregate(masked, weights, True)
    expected = fedavg.aggregate(plain, weights, False)
    # only the fixed point's rounding remains: 2^-24 per client, over the sum of the weights
    np.testing.assert_allclose(secure, expected, rtol=0, atol=3 * 2.0**-24 / sum(weights))
    other_round = [fedavg.mask(fedavg.encode(c), k, 3, seed=11, round_index=5)
                   for k, c in enumerate(plain)]  # fmt: skip
    assert not np.array_equal(other_round[0], masked[0])  # new masks each round


def test_an_update_longer_than_the_clip_is_scaled_to_it_and_a_shorter_one_is_kept() -> None:
    long = np.array([3.0, 4.0])
    np.testing.assert_allclose(fedavg.clip(long, 1.0), [0.6, 0.8])
    np.testing.assert_allclose(fedavg.clip(long, 10.0), long)


def test_the_privacy_budget_is_the_renyi_bound_minimised_over_its_order() -> None:
    """The closed form against a search over the order a of T a / (2 z^2) + log(1/d) / (a-1)."""
    for rounds, z, delta in ((1, 1.0, 1e-5), (100, 1.1, 1e-5), (400, 4.0, 1e-6)):
        orders = 1.0 + np.geomspace(1e-4, 1e4, 200_001)
        searched = np.min(rounds * orders / (2 * z * z) + math.log(1 / delta) / (orders - 1))
        assert fedavg.dp_epsilon(rounds, z, delta) == pytest.approx(searched, rel=1e-5)
    assert fedavg.dp_epsilon(0, 1.0, 1e-5) == 0.0
    assert fedavg.dp_epsilon(10, 0.0, 1e-5) == math.inf
    assert fedavg.dp_epsilon(100, 2.0, 1e-5) < fedavg.dp_epsilon(100, 1.0, 1e-5)


# --- bad input (one line, exit 2) ---------------------------------------------------------------


def test_federated_training_with_one_client_is_refused_in_one_line(capsys, monkeypatch) -> None:
    one = "method.clients=[{params: {length: 0.5}}]"
    code, out, err = run_main(["train", "fedavg", "CartPole-v1", "--set", one], capsys, monkeypatch)
    assert_one_line_error(code, out, err, r"method\.clients has 1 client.*two or more")


def test_clients_whose_spaces_differ_are_refused_naming_the_client(tmp_path: Path) -> None:
    """FAULT-11's federated form: envs of one model with different spaces, refused at start."""
    experiment = short(tmp_path, "spaces", "method.clients=[{}, {env: Acrobot-v1}]")
    with pytest.raises(ConfigError, match=r"method\.clients\[1\] \(env 'Acrobot-v1'\).*spaces"):
        mentor.train(experiment)


def test_a_client_parameter_the_env_lacks_is_named_with_the_client(tmp_path: Path) -> None:
    experiment = short(tmp_path, "typo", "method.clients=[{}, {params: {lenght: 0.7}}]")
    with pytest.raises(ConfigError, match=r"method\.clients\[1\].*no parameter 'lenght'"):
        mentor.train(experiment)


def test_privacy_noise_without_a_clip_is_refused(capsys, monkeypatch) -> None:
    """FAULT-22: contradictory options, before anything starts."""
    code, out, err = run_main(["train", "fedavg", "CartPole-v1", "--set", "method.dp_noise=1.0"],
                              capsys, monkeypatch)  # fmt: skip
    assert_one_line_error(code, out, err, r"dp_noise without method\.dp_clip")


# --- what crosses a client's boundary -----------------------------------------------------------


@pytest.fixture
def received(monkeypatch) -> list[fedavg.Update]:
    """Every update a client sends the server, in order."""
    sent: list[fedavg.Update] = []
    train_round = fedavg.Client.train_round

    def spied(self, *args):
        update = train_round(self, *args)
        sent.append(update)
        return update

    monkeypatch.setattr(fedavg.Client, "train_round", spied)
    return sent


def test_no_observation_action_or_reward_crosses_a_client_boundary(
    tmp_path: Path, monkeypatch, received: list[fedavg.Update]
) -> None:
    """Every value the clients' envs produced or received (observations, actions, rewards) is
    recorded, and so is everything the server got back from a client; the server's holdings are
    the weights' shapes and scalar summaries, and share no value with the experience."""
    seen: list[np.ndarray] = []
    step, reset = VecEnv.step, VecEnv.reset

    def recording_step(self, actions):
        obs, rewards, terminated, truncated = step(self, actions)
        seen.extend([np.asarray(actions, np.float64).ravel(), obs.ravel(), rewards.ravel()])
        return obs, rewards, terminated, truncated

    def recording_reset(self, seed=None):
        obs = reset(self, seed=seed)
        seen.append(obs.ravel())
        return obs

    monkeypatch.setattr(VecEnv, "step", recording_step)
    monkeypatch.setattr(VecEnv, "reset", recording_reset)
    result = mentor.train(short(tmp_path, "boundary", "stopping.total_steps=1024",
                                "validation.every_steps=100000"))  # fmt: skip
    agent = mentor.load(result.run_dir / "final")
    size = sum(p.numel() for p in agent.policy.parameters() if p.requires_grad)
    assert len(received) == 4  # 2 rounds x 2 clients
    experience = np.concatenate(seen)
    experience = experience[(experience != 0) & (np.abs(experience) != 1)]  # not informative
    assert experience.size > 1000
    for update in received:
        assert set(vars(update)) == {"contribution", "weight", "steps", "metrics", "local"}
        for array in (update.contribution, update.local):
            assert array.shape == (size,)  # one number per weight of the model
            assert not np.isin(array, experience).any()
        assert all(isinstance(v, float) for v in update.metrics.values())
        assert isinstance(update.steps, int) and isinstance(update.weight, float)


# --- the run -------------------------------------------------------------------------------------


def test_a_federated_run_resumes_bitwise_equal(tmp_path: Path) -> None:
    """FAULT-32: each client's optimizer, reward scaler, minibatch order and envs are in the
    checkpoint, so a stopped run continues bitwise."""
    assert_resumes_bitwise(lambda name: short(tmp_path, name, "method.secure_aggregation=true"),
                           tmp_path)  # fmt: skip


def test_the_server_model_is_the_weighted_mean_of_the_clients_local_models(
    tmp_path: Path, received: list[fedavg.Update]
) -> None:
    """One round, clients of 256 and 768 steps: the run's final weights are (256 w0 + 768 w1)
    / 1024 of the weights each client sent (``Update.local``), exactly as averaged in float64
    and stored in float32."""
    clients = "method.clients=[{params: {length: 0.4}}, {params: {length: 0.8}, steps: 768}]"
    result = mentor.train(short(tmp_path, "mean", clients, "stopping.total_steps=1024"))
    assert [u.steps for u in received] == [256, 768]
    expected = (256 * received[0].local + 768 * received[1].local) / 1024
    agent = mentor.load(result.run_dir / "final")
    params = [p for p in agent.policy.parameters() if p.requires_grad]
    ours = torch.nn.utils.parameters_to_vector(params).detach().double().numpy()
    np.testing.assert_allclose(ours, expected.astype(np.float32), rtol=0, atol=1e-6)


def test_the_run_writes_the_per_client_matrix_and_the_privacy_budget(tmp_path: Path) -> None:
    result = mentor.train(short(tmp_path, "dp", "method.dp_clip=1.0", "method.dp_noise=0.5"))
    data = json.loads((result.run_dir / "federation.json").read_text())
    assert set(data["returns"]) == {"server", "client_0", "client_1"}
    assert all(len(row) == 2 and all(r > 0 for r in row) for row in data["returns"].values())
    rounds = data["rounds"]
    assert rounds == 4 and data["dp"]["epsilon"] == pytest.approx(
        fedavg.dp_epsilon(rounds, 0.5, 1e-5))  # fmt: skip
    text = (write_report(result.run_dir) / "report.md").read_text()
    section = text[text.index("## Federated clients") :]
    assert "| Client 1 | length=0.8 |" in section and "epsilon " in section
    assert "| client_1 on clients 0-1 |" in section
    secure = mentor.train(short(tmp_path, "secure", "method.secure_aggregation=true"))
    rows = json.loads((secure.run_dir / "federation.json").read_text())["returns"]
    assert set(rows) == {"server"}  # the server never saw a client's own weights


def test_clients_run_as_ray_actors_with_workers_through_every_round_to_the_matrix(
    tmp_path: Path,
) -> None:
    """Each client a Ray actor of its own: the run's rounds and steps, and the matrix scored by
    the actors, with secure aggregation only the server's row."""
    import ray

    try:
        result = mentor.train(short(tmp_path, "ray", "distributed.workers=2",
                                    "method.secure_aggregation=true", "stopping.total_steps=1024",
                                    "method.matrix_episodes=1"))  # fmt: skip
    finally:
        ray.shutdown()
    data = json.loads((result.run_dir / "federation.json").read_text())
    assert data["rounds"] == 2 and data["steps"] == 1024
    assert list(data["returns"]) == ["server"] and len(data["returns"]["server"]) == 2
    assert result.stop_reason.startswith("budget")


def test_fedavg_with_running_statistics_of_client_data_is_refused(capsys, monkeypatch) -> None:
    """FAULT-22: env.normalize_obs would keep statistics of each client's observations."""
    code, out, err = run_main(["train", "fedavg", "CartPole-v1", "--set", "env.normalize_obs=true"],
                              capsys, monkeypatch)  # fmt: skip
    assert_one_line_error(code, out, err, r"normalize_obs.*turn them off")


def test_two_federated_clients_learn_both_poles_beyond_a_random_policy(tmp_path: Path) -> None:
    """The preset's local training, two clients (poles 0.25 and 1.0), 16,384 env steps in all:
    the server's model, scored by each client on its own pole (10 episodes each). Seeds 0-9 of
    this exact configuration: mean over the two poles 101-495, median 165; a random policy
    scores about 22. Threshold 60: below the worst seed by 40%, nearly 3x random."""
    experiment = build(method="fedavg", env_id="CartPole-v1", overrides=[
        f"output_dir={tmp_path}", "name=learn", "seed=0",
        "method.clients=[{params: {length: 0.25}}, {params: {length: 1.0}}]",
        "stopping.total_steps=16384", "validation.every_steps=100000", "evaluation.episodes=2",
        "method.matrix_episodes=10", "checkpoints.every_steps=null", *QUIET,
    ])  # fmt: skip
    result = mentor.train(experiment)
    server = json.loads((result.run_dir / "federation.json").read_text())["returns"]["server"]
    assert np.mean(server) > 60, server
