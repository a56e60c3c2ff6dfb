"""Continual learning (issue 16, second part): a sequence of tasks, the performance matrix and
its measures, the loss terms that keep earlier tasks (EWC, online EWC, L2, rehearsal), exact
resume across a task boundary, and the bad input refused."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from torch import nn

import mentor
from mentor.continual.keep import EWC, L2, Rehearsal, fisher_diagonal
from mentor.continual.metrics import area, continual_metrics
from mentor.core.distributions import make_dist
from mentor.errors import ConfigError
from mentor.experiment import build

TASKS = [{"id": "CartPole-v1"}, {"id": "mentor/CartPole-Reversed-v1", "name": "reversed"},
         {"id": "mentor/CartPole-LongPole-v1", "name": "long"}]  # fmt: skip


def sequence(tmp_path, name: str, *extra: str, **continual):
    config = {"tasks": TASKS, "steps_per_task": 1024, "eval_episodes": 2, **continual}
    return build(method="ppo", env_id="CartPole-v1", overrides=[
        f"output_dir={tmp_path}", f"name={name}", f"continual={json.dumps(config)}",
        "validation.every_steps=512", "validation.episodes=2", "validation.num_envs=2",
        "evaluation.episodes=2", "logging.progress=false", "logging.tensorboard=false", *extra,
    ])  # fmt: skip


# --- the measures -----------------------------------------------------------------------------


def test_the_continual_measures_against_a_hand_built_matrix() -> None:
    matrix = [[0.9, 0.1, 0.0], [0.4, 0.8, 0.2], [0.3, 0.5, 0.7]]
    out = continual_metrics(matrix, aucs=[0.5, 0.6, 0.7], baselines=[0.5, 0.4, 0.8])
    assert out["average_performance"] == pytest.approx(0.5)
    assert out["forgetting"] == pytest.approx([0.6, 0.3])  # 0.9 - 0.3, 0.8 - 0.5
    assert out["forgetting_mean"] == pytest.approx(0.45)
    # (AUC - baseline) / (1 - baseline): 0 / 0.5, 0.2 / 0.6, -0.1 / 0.2.
    assert out["forward_transfer"] == pytest.approx([0.0, 1 / 3, -0.5])
    # Two rows of three tasks: forgetting of the first only.
    assert continual_metrics(matrix[:2])["forgetting"] == pytest.approx([0.5])
    assert area([0, 100, 200], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="a row per task trained so far"):
        continual_metrics([[0.1], [0.2]])


# --- the loss terms ---------------------------------------------------------------------------


class Linear(nn.Module):
    """A categorical policy pi(a|s) = softmax(W s): d log pi(a|s) / dW = (e_a - pi) s^T."""

    def __init__(self, weight: list[list[float]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))
        self.dist = make_dist(__import__("gymnasium").spaces.Discrete(2), 0.0)

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        return obs @ self.weight.T

    def actor_parameters(self) -> list[nn.Parameter]:
        return [self.weight]


def test_the_ewc_penalty_and_its_gradient_against_a_hand_computed_example() -> None:
    policy = Linear([[1.0, 2.0], [3.0, 4.0]])
    ewc = EWC(policy, strength=10.0, online=False, decay=1.0)
    ewc.fishers = [{"weight": torch.tensor([[1.0, 0.0], [2.0, 0.5]])}]
    ewc.anchors = [{"weight": torch.tensor([[0.0, 2.0], [1.0, 2.0]])}]
    term = ewc.terms([policy.weight])["loss/ewc"]
    # 10 / 2 x (1 x 1^2 + 0 + 2 x 2^2 + 0.5 x 2^2) = 5 x 11 = 55
    assert term.item() == pytest.approx(55.0)
    term.backward()
    # d/dW = 10 x F x (W - W*)
    expected = 10 * torch.tensor([[1.0, 0.0], [2.0, 0.5]]) * torch.tensor([[1.0, 0.0], [2.0, 2.0]])
    assert torch.allclose(policy.weight.grad, expected)
    assert ewc.terms([]) == {}  # none of these parameters is held: no term


def test_the_fisher_diagonal_matches_its_expectation_and_online_ewc_decays_it() -> None:
    """E over a ~ pi of ((e_a - pi) s)^2 for a softmax over W s, one state repeated: the
    estimate from 4,000 draws within 5% of the exact value."""
    policy = Linear([[0.5, -0.2], [0.1, 0.3]])
    state = torch.tensor([1.0, 2.0])
    p = torch.softmax(policy.policy_params(state.unsqueeze(0)), -1)[0]
    exact = torch.zeros(2, 2)
    for a in range(2):
        e = torch.zeros(2)
        e[a] = 1.0
        exact += p[a] * torch.outer(e - p, state).square()
    estimate = fisher_diagonal(policy, state.repeat(4000, 1), seed=0)["weight"]
    assert torch.allclose(estimate, exact, rtol=0.05)
    torch.manual_seed(5)
    before = torch.rand(3)
    fisher_diagonal(policy, state.repeat(10, 1), seed=0)
    torch.manual_seed(5)
    assert torch.equal(before, torch.rand(3))  # the run's stream is left as it was

    online = EWC(policy, strength=1.0, online=True, decay=0.5)
    online.task_end(policy, state.repeat(50, 1), seed=1)
    first = online.fishers[0]["weight"].clone()
    online.task_end(policy, state.repeat(50, 1), seed=1)  # the same states, the same draws
    assert len(online.fishers) == 1 and torch.allclose(online.fishers[0]["weight"], 1.5 * first)


def test_l2_and_rehearsal_terms_pull_toward_the_last_task() -> None:
    policy = Linear([[1.0, 0.0], [0.0, 1.0]])
    l2 = L2(policy, strength=2.0)
    assert l2.terms([policy.weight]) == {}  # before any task ends
    l2.task_end(policy, torch.zeros(1, 2), seed=0)
    with torch.no_grad():
        policy.weight += 1.0
    assert l2.terms([policy.weight])["loss/l2"].item() == pytest.approx(4.0)  # 2/2 x 4 x 1^2
    rehearse = Rehearsal(policy, strength=1.0, batch_size=8, seed=0)
    states = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(4, 1)
    rehearse.task_end(policy, states, seed=0)
    assert rehearse.actions.tolist() == [0, 1] * 4  # the old policy's modes
    assert rehearse.terms([]) == {}  # no actor parameter among them: no term
    term = rehearse.terms([policy.weight])["loss/rehearsal"]
    # W = [[2, 1], [1, 2]] now: each kept state's logits are (2, 1) for its kept action, so
    # every draw's -log pi is log(1 + e^-1), whichever states the batch holds.
    assert term.item() == pytest.approx(math.log(1 + math.exp(-1)))
    state = rehearse.state_dict()
    again = Rehearsal(policy, 1.0, 8, 0)
    again.load_state_dict(state)
    assert torch.equal(again.states, rehearse.states)


# --- runs -------------------------------------------------------------------------------------


def test_a_continual_run_fills_its_matrix_and_resumes_across_a_task_boundary_bitwise(
    tmp_path,
) -> None:
    """FAULT-32 across a task boundary: three CartPole tasks of 1,024 steps with EWC and
    rehearsal (their Fisher, anchors and kept states in the checkpoint), stopped after the
    checkpoint at 1,536 (past the first boundary) and resumed: the same weights, logs and
    matrix as the run that never stopped."""
    from test_resume import assert_resumes_bitwise, manifest

    def run(name: str):
        return sequence(tmp_path, name, "checkpoints.every_steps=512", "checkpoints.keep_last=10",
                        regularizer={"kind": "ewc", "strength": 100.0, "fisher_samples": 64},
                        rehearsal={"kind": "distill", "states": 64, "batch_size": 16},
                        task_id=True)  # fmt: skip

    reference = assert_resumes_bitwise(run, tmp_path, keep=3)
    result = json.loads((reference / "continual.json").read_text())
    assert result["tasks"] == ["task0", "reversed", "long"]
    assert len(result["matrix"]) == 3 and all(len(row) == 3 for row in result["matrix"])
    assert result["row_steps"] == [1024, 2048, 3072]
    assert all(0 <= v <= 1 for row in result["matrix"] for v in row)
    assert result["forgetting"] == pytest.approx(
        [result["matrix"][i][i] - result["matrix"][-1][i] for i in range(2)]
    )
    assert manifest(reference)["continual"] == result
    copy = reference.parent / "copy"
    resumed = json.loads((copy / "continual.json").read_text())
    assert resumed == result  # the matrix too, bitwise
    logged = (reference / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train/loss_ewc" in logged and "train/loss_rehearsal" in logged
    from mentor.report.report import write_report

    folder = write_report(reference)  # the matrix as a heatmap, the measures in the text
    assert (folder / "continual.png").stat().st_size > 0
    assert "Forgetting (mean)" in (folder / "report.md").read_text()


def test_forward_transfer_is_measured_against_single_task_runs(tmp_path) -> None:
    """continual.baselines: each task's run alone (its validation.csv); forward transfer is
    (AUC - AUC_b) / (1 - AUC_b) per task, with the areas in the matrix's units (return / 500)."""
    baselines = []
    for index, returns in enumerate([(50, 150, 250), (100, 200, 300)]):
        folder = tmp_path / f"alone{index}"
        folder.mkdir()
        lines = "".join(f"{step},{r}\n" for step, r in zip((0, 256, 512), returns, strict=True))
        (folder / "validation.csv").write_text("step,return_mean\n" + lines)
        baselines.append(str(folder))
    config = {"tasks": TASKS[:2], "steps_per_task": 512, "eval_episodes": 2,
              "baselines": baselines}  # fmt: skip
    result = mentor.train(build(method="ppo", env_id="CartPole-v1", overrides=[
        f"output_dir={tmp_path}", f"continual={json.dumps(config)}", "validation.every_steps=256",
        "validation.episodes=2", "evaluation.episodes=0", "logging.progress=false",
        "logging.tensorboard=false",
    ]))  # fmt: skip
    data = json.loads((result.run_dir / "continual.json").read_text())
    # Trapezoids over 0-512: (0.1 + 0.3) / 2 and (0.3 + 0.5) / 2 -> 0.3; the second 0.4.
    assert data["baseline_auc"] == pytest.approx([0.3, 0.4])
    expected = [(a - b) / (1 - b) for a, b in zip(data["auc"], [0.3, 0.4], strict=True)]
    assert data["forward_transfer"] == pytest.approx(expected)
    with pytest.raises(ConfigError, match=r"baselines has 1 runs for 2 tasks"):
        build(overrides=[f"continual={json.dumps({**config, 'baselines': baselines[:1]})}"])
    missing = {**config, "baselines": [str(tmp_path), baselines[1]]}
    with pytest.raises(ConfigError, match=r"baselines\[0\] .* has no validation.csv"):
        mentor.train(build(method="ppo", env_id="CartPole-v1", overrides=[
            f"output_dir={tmp_path}", f"continual={json.dumps(missing)}",
            "logging.progress=false"]))  # fmt: skip


def test_bad_continual_input_is_refused_naming_the_problem(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"fisher_samples=0: ewc estimates the Fisher diagonal"):
        sequence(tmp_path, "a", regularizer={"kind": "ewc", "fisher_samples": 0})
    with pytest.raises(ConfigError, match=r"continual.tasks needs at least 2 tasks"):
        build(overrides=['continual={"tasks": [{}], "steps_per_task": 10}'])
    with pytest.raises(ConfigError, match=r"continual and curriculum both decide"):
        sequence(tmp_path, "b", 'curriculum.randomize={"length": {"uniform": [0.4, 0.6]}}')
    pendulums = [{"id": "Pendulum-v1"}, {"id": "mentor/Pendulum-Heavy-v1"}]
    config = {"tasks": pendulums, "steps_per_task": 512, "regularizer": {"kind": "l2"}}
    replay = {"tasks": TASKS[:2], "steps_per_task": 512, "rehearsal": {"kind": "replay"}}
    with pytest.raises(ConfigError, match=r"method ppo has no replay buffer"):
        build(method="ppo", env_id="CartPole-v1", overrides=[f"continual={json.dumps(replay)}"])
    with pytest.raises(ConfigError, match=r"replay with method.prioritized"):
        build(method="dqn", env_id="CartPole-v1", overrides=[
            f"continual={json.dumps(replay)}", "method.prioritized=true"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"method td3 does not yet"):
        build(method="td3", env_id="Pendulum-v1", overrides=[f"continual={json.dumps(config)}"])
    # Tasks whose spaces differ, without an adapter: both named.
    mixed = {"tasks": [{"id": "CartPole-v1"}, {"id": "Acrobot-v1"}], "steps_per_task": 512}
    experiment = build(method="ppo", env_id="CartPole-v1", overrides=[
        f"output_dir={tmp_path}", f"continual={json.dumps(mixed)}", "logging.progress=false",
    ])  # fmt: skip
    with pytest.raises(ConfigError, match=r"task1 \(Acrobot-v1\) has observation space .*task0"):
        mentor.train(experiment)


def test_replay_rehearsal_keeps_a_tasks_transitions_and_mixes_them_into_every_batch() -> None:
    """Off-policy rehearsal: transitions of a finished task (reward 1 here) kept beyond the
    ring, which the next task (reward 2) overwrites; a quarter of each batch comes from them;
    the kept ones are in the buffer's checkpoint."""
    import numpy as np

    from mentor.core.replay import ReplayBuffer

    buffer = ReplayBuffer(64, 2, (3,), torch.float32, (), torch.int64, gamma=0.9)

    def play(reward: float, steps: int) -> None:
        for _ in range(steps):
            flags = np.zeros(2, dtype=bool)
            buffer.add(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64),
                       np.full(2, reward, np.float32), flags, flags, ~flags)  # fmt: skip

    play(1.0, 20)
    assert buffer.keep(16, rows_back=20, generator=np.random.default_rng(0), share=0.25) == 16
    play(2.0, 40)  # the ring (33 rows) now holds the second task only
    batch = buffer.sample(40, np.random.default_rng(1))
    assert batch.rewards[:30].eq(2.0).all() and batch.rewards[30:].eq(1.0).all()
    assert (batch.indices[30:] == -1).all()
    again = ReplayBuffer(64, 2, (3,), torch.float32, (), torch.int64, gamma=0.9)
    again.load_state_dict(buffer.state_dict())
    assert torch.equal(again.kept["obs"], buffer.kept["obs"]) and again.kept_share == 0.25


@pytest.mark.parametrize(
    ("method", "tasks", "keep"),
    [("dqn", TASKS[:2], {"regularizer": {"kind": "ewc", "fisher_samples": 32}}),
     ("sac", [{"id": "Pendulum-v1"}, {"id": "mentor/Pendulum-Heavy-v1"}],
      {"rehearsal": {"kind": "distill", "states": 32, "batch_size": 8},
       "regularizer": {"kind": "l2"}}),
     ("td3", [{"id": "Pendulum-v1"}, {"id": "mentor/Pendulum-Heavy-v1"}],
      {"rehearsal": {"kind": "replay", "states": 64, "share": 0.5}})],
)  # fmt: skip
def test_off_policy_methods_add_the_terms_to_their_own_losses(tmp_path, method, tasks, keep):
    """DQN (EWC on the softmax of its Q-values) and SAC (L2 and rehearsal, each over the
    actor's or the critics' parameters) log the terms from the second task on."""
    config = {"tasks": tasks, "steps_per_task": 512, "eval_episodes": 1, **keep}
    result = mentor.train(build(method=method, env_id=tasks[0]["id"], overrides=[
        f"output_dir={tmp_path}", f"continual={json.dumps(config)}", "method.learning_starts=128",
        "method.batch_size=32", "logging.every_steps=128", "validation.every_steps=512",
        "validation.episodes=1", "evaluation.episodes=0", "logging.progress=false",
        "logging.tensorboard=false",
    ]))  # fmt: skip
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = {k for row in rows for k, v in row.items() if v and k.startswith("train/loss_")}
    if method == "td3":  # replay rehearsal: the first task's transitions kept in the buffer
        from mentor.runs import checkpoint

        replay = checkpoint.load(result.run_dir / "final")[0]["replay"]
        assert len(replay["kept/obs"]) == 64 and float(replay["kept_share"]) == 0.5
        return
    sac = {"train/loss_l2_actor", "train/loss_l2_critic", "train/loss_rehearsal_actor"}
    wanted = {"dqn": {"train/loss_ewc"}, "sac": sac}[method]
    assert wanted <= logged, logged
