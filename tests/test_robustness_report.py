"""The report's robustness section (mentor/report/robustness.py): a RARL protagonist's returns
with and without its adversary, and under `mentor eval --perturb`, beside another run's."""

from __future__ import annotations

import subprocess
import sys

import mentor
from mentor.experiment import build

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
    assert "ppo: " in section.split("Return, action_noise=0.3", 1)[1].splitlines()[0]
    assert (rarl / "report" / "robustness.png").stat().st_size > 10_000


def test_a_report_compared_with_a_folder_that_is_not_a_run_is_refused_in_one_line(
    tmp_path,
) -> None:
    rarl = short_run(tmp_path, "rarl")
    done = cli("report", str(rarl), "--compare", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "not a run folder" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
