"""The report's robustness section (mentor/report/robustness.py): a RARL protagonist's returns
with and without its adversary, and under `mentor eval --perturb`, beside another run's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import mentor
from mentor.experiment import build
from mentor.report import robustness

PENDULUM = "Pendulum-v1"


def short_run(tmp_path, method: str):
    return mentor.train(build(method=method, env_id=PENDULUM, overrides=[
        f"output_dir={tmp_path}", f"name={method}", "env.num_envs=1", "method.num_steps=128",
        "stopping.total_steps=1024", "method.num_minibatches=2", "logging.progress=false",
        "logging.tensorboard=false", "validation.every_steps=256", "validation.episodes=2",
        "evaluation.episodes=2",
    ])).run_dir  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mentor.cli", *args], capture_output=True,
                          text=True)  # fmt: skip


def test_a_rarl_report_shows_its_returns_with_and_without_the_adversary_beside_ppos(
    tmp_path,
) -> None:
    rarl, ppo = short_run(tmp_path, "rarl"), short_run(tmp_path, "ppo")
    for run in (rarl, ppo):
        shown = cli("eval", str(run), "--episodes", "2", "--num-envs", "1",
                    "--perturb", "action_noise=0.3")  # fmt: skip
        assert shown.returncode == 0, shown.stderr
    done = cli("report", str(rarl), "--compare", str(ppo))
    assert done.returncode == 0, done.stderr
    text = (rarl / "report" / "report.md").read_text()
    section = text[text.index("## Robustness") :]
    assert "Return, clean" in section and "Return, action_noise=0.3" in section
    assert "rarl: under the adversary" in section and "rarl: without it" in section
    perturbed_row = section.split("Return, action_noise=0.3", 1)[1].splitlines()[0]
    assert "ppo: " in perturbed_row
    # each run's gap from its final evaluation, whose episodes evaluation.json now keeps
    assert perturbed_row.count(", gap ") == 2 and perturbed_row.count("[") == 4, perturbed_row
    assert (rarl / "report" / "robustness.png").stat().st_size > 10_000


def test_a_report_compared_with_a_folder_that_is_not_a_run_is_refused_in_one_line(
    tmp_path,
) -> None:
    rarl = short_run(tmp_path, "rarl")
    done = cli("report", str(rarl), "--compare", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "not a run folder" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_generalization_gap_is_the_perturbed_mean_minus_the_clean_with_an_interval() -> None:
    """The gap table of `mentor eval --perturb` (issue 20 part 11): a shift of -5 in every
    episode is a gap of -5.0 whose interval holds -5 and not 0; without episodes, no interval."""
    rng = np.random.default_rng(0)
    clean_episodes = list(100 + rng.normal(0, 2, 40))
    clean = robustness.Condition(float(np.mean(clean_episodes)), (99.0, 101.0), clean_episodes)
    shifted = [r - 5 for r in clean_episodes]
    perturbed = robustness.Condition(float(np.mean(shifted)), (94.0, 96.0), shifted)
    run = robustness.Robustness("agent", {"clean": clean, "obs_noise=0.1": perturbed})
    rows = dict(robustness.rows([run]))
    text = rows["Return, obs_noise=0.1"]
    assert text.startswith(f"agent: {perturbed.mean:.1f} [94.0, 96.0], gap -5.0 [")
    low, high = (float(x) for x in text.split("gap -5.0 [", 1)[1].rstrip("]").split(", "))
    assert low < -5 < high < 0
    bare = robustness.Condition(perturbed.mean)  # a file from before episodes were kept
    rows = dict(robustness.rows([robustness.Robustness("agent", {"clean": clean, "x": bare})]))
    assert rows["Return, x"] == f"agent: {bare.mean:.1f}, gap -5.0"


def test_an_action_delay_is_a_condition_of_its_own_not_the_clean_return() -> None:
    assert robustness.label({"action_delay": 2, "obs_noise": 0.0}) == "action_delay=2"
    assert (
        robustness.label({"obs_noise": 0.1, "params": {"m": 1.3}}) == "obs_noise=0.1, param.m=1.3"
    )
    assert robustness.label({}) == robustness.CLEAN
