"""mentor explain (issue 20, part 10): integrated-gradients attributions of each decision.

Completeness checked outside captum (each decision's attributions sum to the output's change from
the baseline, within 1%), the written files and report section, features named from the env's
space, saliency for images, and the bad inputs: a network with no gradient path (the layer
named), a folder that is not a run, an unknown baseline, captum missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_rough_edges import one_line_error, run_cli

import mentor
from mentor.errors import ConfigError, MissingPackageError
from mentor.experiment import build
from mentor.explain import check_gradient_path, explain, explained_targets, play

QUICK = ["validation.episodes=2", "validation.num_envs=2", "evaluation.episodes=2",
         "logging.progress=false", "logging.tensorboard=false"]  # fmt: skip


@pytest.fixture
def run(trained_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def test_attributions_sum_to_the_outputs_change_from_the_baseline(run: Path) -> None:
    """Completeness, recomputed here from the written attributions and the agent's own
    networks: for every decision and target, sum_i attr_i = f(obs) - f(baseline) within 1%
    of the change (or of 1% of the largest change, where a decision's is tiny)."""
    summary = explain(run, episodes=2, seed=3)
    written = json.loads((run / "explain" / "explain.json").read_text())
    agent = mentor.load(run)
    obs, actions, _ = play(agent, 2, 3)
    inputs = torch.as_tensor(obs, dtype=torch.float32)
    assert len(written["decisions_explained"]) == len(inputs) == summary["decisions"]
    baseline = inputs.mean(0, keepdim=True).expand_as(inputs)
    targets = explained_targets(agent, actions)
    assert set(targets) == {"action", "value"} == set(summary["targets"])
    for label, (forward, target) in targets.items():
        with torch.no_grad():
            out, base = forward(inputs), forward(baseline)
            if target is not None:
                out, base = (
                    out.gather(1, target.view(-1, 1))[:, 0],
                    base.gather(1, target.view(-1, 1))[:, 0],
                )
        change = (out - base).numpy()
        sums = np.array([sum(row[label]) for row in written["decisions_explained"]])
        scale = np.maximum(np.abs(change), 0.01 * np.abs(change).max())
        assert np.all(np.abs(sums - change) <= 0.01 * scale), label
        assert summary["targets"][label]["worst_completeness_error"] <= 0.01
    assert (run / "explain" / "importance.png").is_file()
    assert (run / "explain" / "timeline.png").is_file()


def test_the_pole_angle_and_its_velocity_explain_a_balancing_policy_more_than_the_cart(
    run: Path,
) -> None:
    """A plausibility check on a policy that balances: CartPole's pole angle and angular
    velocity (obs[2], obs[3]) carry more of the decisions than the cart's position."""
    importance = explain(run, episodes=2)["targets"]["action"]["mean_abs"]
    assert importance["obs[3]"] > importance["obs[0]"]


def briefly_trained(tmp_path: Path, env_id: str, steps: int) -> Path:
    """A PPO run of a few hundred steps on ``env_id``: its run folder."""
    experiment = build(method="ppo", env_id=env_id, overrides=[
        f"output_dir={tmp_path}", f"stopping.total_steps={steps}",
        f"validation.every_steps={steps}", "method.num_steps=32", *QUICK,
    ])  # fmt: skip
    return mentor.train(experiment).run_dir


def test_features_are_named_from_the_envs_dict_space(tmp_path: Path) -> None:
    run_dir = briefly_trained(tmp_path, "mentor.envs.testing:DictObsEnv", 512)
    summary = explain(run_dir, episodes=1)
    space = mentor.load(run_dir).observation_space
    keys = list(space.spaces)
    assert all(any(name.startswith(key) for key in keys) for name in summary["features"])
    assert len(summary["features"]) == len(summary["targets"]["action"]["mean_abs"])


def test_images_get_saliency_maps(tmp_path: Path) -> None:
    run_dir = briefly_trained(tmp_path, "mentor.envs.testing:ImageEnv", 256)
    summary = explain(run_dir, episodes=1, steps=8)
    assert summary["image"] and summary["baseline"] == "zeros"
    assert (run_dir / "explain" / "saliency.png").is_file()


def test_a_network_without_a_gradient_path_names_the_layer_that_cuts_it(run: Path) -> None:
    agent = mentor.load(run)
    policy = agent.policy

    class Detach(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.detach()

    policy.actor_body[0] = torch.nn.Sequential(policy.actor_body[0], Detach())
    forward, _ = explained_targets(agent, np.zeros(1, np.int64))["action"]
    with pytest.raises(ConfigError, match=r"layer 'actor_body\.0\.1' \(Detach\)"):
        check_gradient_path(policy, forward, torch.zeros(1, 4), "action")


def test_the_cli_explains_a_run_and_the_report_shows_it(run: Path) -> None:
    done = run_cli("explain", str(run), "--episodes", "1")
    assert done.returncode == 0, done.stderr
    assert "action: mean |attribution|" in done.stdout and "completeness" in done.stdout
    report = (run / "report" / "report.md").read_text()
    assert "## Explanations" in report and "explain_importance.png" in report
    assert (run / "report" / "explain_importance.png").is_file()


def test_bad_explain_inputs_are_one_line_exit_2(run: Path, tmp_path: Path) -> None:
    assert "is not a run folder" in one_line_error(run_cli("explain", str(tmp_path)))
    said = one_line_error(run_cli("explain", str(run), "--baseline", "median"))
    assert "baseline 'median'" in said and "mean, zeros" in said


def test_without_captum_the_error_names_the_extra(run: Path, without) -> None:
    without("captum", "captum.attr")
    with pytest.raises(MissingPackageError, match=r"pip install 'mentor\[explain\]'"):
        explain(run)
