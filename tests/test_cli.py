"""Tests of the ``mentor`` command line.

``mentor.cli.main`` is what turns a MentorError into one line on stderr and exit code 2; the
Typer ``app`` itself lets the typed exception through. So the error cases run ``main()`` in this
process (``run_main``) or the installed ``mentor`` script in a subprocess, and the cases that
succeed use Typer's CliRunner on ``app``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mentor.cli import app, main
from mentor.errors import CheckpointError, ConfigError, UnknownEnvError
from mentor.experiment import Experiment, parse

MENTOR = Path(sys.executable).with_name("mentor")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_TRAIN = [
    "train", "ppo", "CartPole-v1", "--seed", "1",
    "--set", "stopping.total_steps=2048",
    "--set", "validation.every_steps=1024",
    "--set", "validation.episodes=2",
    "--set", "evaluation.episodes=3",
    "--set", "logging.tensorboard=false",
    "--quiet",
]  # fmt: skip

BROKEN_ENV = '''
import gymnasium as gym
import numpy as np


class BareReset(gym.Env):
    """Breaks the API: reset returns the observation alone, not (obs, info) (FAULT-1)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32)

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, False, False, {}
'''

GOOD_ENV = BROKEN_ENV.replace("class BareReset", "class Good").replace(
    "return np.zeros(3, np.float32)\n", "return np.zeros(3, np.float32), {}\n", 1
)

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def run_main(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """Run the ``mentor`` entry point in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mentor", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(code: int, out: str, err: str, pattern: str) -> None:
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- bad input: exit 2, one line, nothing created ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ["train", "ppo", "CartPol-v1"],
            r"unknown env id 'CartPol-v1' \(did you mean: CartPole-v1, CartPole-v0",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--set", "method.learning_rat=0.001"],
            r"unknown key 'method\.learning_rat' \(did you mean: learning_rate\?\); valid keys "
            r"here: name, learning_rate, ",
        ),
        (
            ["train", "ppo", "CartPole-v1", "-s", "env.num_env=2"],
            r"unknown key 'env\.num_env' \(did you mean: num_envs\?\)",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--set", "method.gamma"],
            r"override 'method\.gamma' is not of the form section\.key=value",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--set", "method.gamma=1.5"],
            r"'method\.gamma' = 1\.5: Input should be less than or equal to 1",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--set", "method.learning_rate=0"],
            r"'method\.learning_rate' = 0: learning_rate must be > 0",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--set", "method.num_minibatches=3"],
            r"8 \* 32 = 256 steps does not split into method\.num_minibatches = 3",
        ),
        (
            ["train", "ppo", "CartPole-v1", "--set", "agent.freeze=[actor]"],
            r"agent\.freeze need agent\.init to name a checkpoint",
        ),
        (["train", "ppo"], r"'ppo' is not an experiment file; .*mentor train ppo CartPole-v1"),
        (["train", "ppx", "CartPole-v1"], r"unknown method 'ppx' \(did you mean: ppo\?\)"),
        (["show-defaults", "ppx"], r"unknown method 'ppx' \(did you mean: ppo\?\)"),
        (["check-env", "CartPole-v1", "--kwargs", "{oops"], r"--kwargs is not valid JSON"),
    ],
    ids=[
        "unknown-env",
        "unknown-key",
        "unknown-key-short-option",
        "malformed-set",
        "gamma-out-of-range",
        "lr-zero",
        "minibatches",
        "freeze-without-init",
        "method-without-env",
        "unknown-method",
        "show-defaults-unknown-method",
        "bad-kwargs-json",
    ],
)
def test_bad_input_exits_2_with_one_line(args, pattern, in_tmp, capsys, monkeypatch) -> None:
    """FAULT-20/21/22 through the command line: caught before any run folder is made."""
    assert_one_line_error(*run_main(args, capsys, monkeypatch), pattern)
    assert not (in_tmp / "runs").exists()


def test_app_lets_the_typed_error_through() -> None:
    """Without ``main`` the error is the typed exception (``main`` is what prints it)."""
    result = invoke("train", "ppo", "CartPole-v1", "--set", "env.num_env=2")
    assert isinstance(result.exception, ConfigError)
    assert "did you mean: num_envs?" in str(result.exception)
    result = invoke("train", "ppo", "CartPol-v1")
    assert isinstance(result.exception, UnknownEnvError)
    result = invoke("eval", "does/not/exist")
    assert isinstance(result.exception, CheckpointError)


def test_unknown_key_in_a_file_names_the_file_and_the_key(in_tmp, capsys, monkeypatch) -> None:
    """FAULT-21 from a file: the path of the file, the dotted key and a did-you-mean."""
    (in_tmp / "exp.yaml").write_text("env:\n  id: CartPole-v1\nmethod:\n  num_epoch: 3\n")
    result = run_main(["train", "exp.yaml"], capsys, monkeypatch)
    assert_one_line_error(
        *result, r"exp\.yaml: unknown key 'method\.num_epoch' \(did you mean: num_epochs"
    )
    result = run_main(["train", "exp.yaml", "CartPole-v1"], capsys, monkeypatch)
    assert_one_line_error(*result, r"got an experiment file 'exp\.yaml' and an env id")
    result = run_main(["train", "missing.yaml"], capsys, monkeypatch)
    assert_one_line_error(*result, r"experiment file 'missing\.yaml' does not exist")
    (in_tmp / "typo.yaml").write_text("env:\n  id: CartPol-v1\n")
    result = run_main(["train", "typo.yaml"], capsys, monkeypatch)
    assert_one_line_error(*result, r"unknown env id 'CartPol-v1' \(did you mean: CartPole-v1")
    (in_tmp / "list.yaml").write_text("- 1\n- 2\n")
    result = run_main(["train", "list.yaml"], capsys, monkeypatch)
    assert_one_line_error(*result, r"list\.yaml: expected a mapping of sections, got list")
    assert not (in_tmp / "runs").exists()


def test_eval_of_something_that_is_not_a_run(in_tmp, capsys, monkeypatch) -> None:
    result = run_main(["eval", "runs/nothing-here"], capsys, monkeypatch)
    assert_one_line_error(*result, r"'runs/nothing-here' does not exist")
    (in_tmp / "not-a-run").mkdir()
    (in_tmp / "not-a-run" / "notes.txt").write_text("hello")
    result = run_main(["eval", "not-a-run"], capsys, monkeypatch)
    assert_one_line_error(
        *result, r"'not-a-run' is neither a mentor run folder nor a checkpoint folder"
    )


def test_error_message_with_brackets_is_printed_as_it_is(capsys, monkeypatch) -> None:
    """A '[...]' in a message is text, not rich markup: the user sees every character."""
    code, out, err = run_main(["train", "ppo", "[red]CartPole-v1"], capsys, monkeypatch)
    assert_one_line_error(code, out, err, r"unknown env id '\[red\]CartPole-v1'")


def test_check_env_on_a_broken_env_names_the_failed_check(tmp_path, capsys, monkeypatch) -> None:
    """FAULT-1 at the command line: exit 2, and the table names the check that failed."""
    (tmp_path / "mentor_test_broken_env.py").write_text(BROKEN_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["check-env", "mentor_test_broken_env:BareReset", "--steps", "20"]
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 2
    assert "Traceback" not in out + err
    assert "reset API" in out
    assert "bare ndarray" in " ".join(out.split())
    assert "failed 2 checks" in " ".join(out.split())


def test_check_env_on_an_unimportable_entry_point(capsys, monkeypatch) -> None:
    code, out, err = run_main(["check-env", "no_such_module_xyz:Env"], capsys, monkeypatch)
    assert_one_line_error(code, out, err, r"cannot import module 'no_such_module_xyz'")
    assert "add that folder to PYTHONPATH" in err


def test_check_env_imports_an_entry_point_from_the_working_folder(in_tmp, monkeypatch) -> None:
    """As `mentor record` does for experts: the ``mentor`` script does not put it on the path."""
    (in_tmp / "mentor_test_cli_cwd_env.py").write_text(GOOD_ENV)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(in_tmp))])
    monkeypatch.delitem(sys.modules, "mentor_test_cli_cwd_env", raising=False)
    try:
        result = invoke("check-env", "mentor_test_cli_cwd_env:Good", "--steps", "10")
    finally:
        sys.modules.pop("mentor_test_cli_cwd_env", None)
    assert result.exit_code == 0, result.output
    assert "mentor_test_cli_cwd_env:Good passed" in result.output


# --- what is not the env's fault: a missing package, a space mentor does not support yet --------


def test_train_on_an_env_whose_package_is_missing(in_tmp, without, capsys, monkeypatch) -> None:
    without("Box2D", unload=["gymnasium.envs.box2d"])
    code, out, err = run_main(["train", "ppo", "LunarLander-v3"], capsys, monkeypatch)
    assert_one_line_error(
        code,
        out,
        err,
        r"env 'LunarLander-v3' needs the package box2d, which is not installed here: "
        r"pip install 'mentor\[envs\]' \(Gymnasium: Box2D is not installed",
    )
    assert "Gymnasium API" not in err
    assert not (in_tmp / "runs").exists()


def test_train_on_an_atari_id_without_ale_py(in_tmp, without, capsys, monkeypatch) -> None:
    without("ale_py", namespaces=["ALE"])
    code, out, err = run_main(["train", "ppo", "ALE/Pong-v5"], capsys, monkeypatch)
    assert_one_line_error(
        code,
        out,
        err,
        r"env 'ALE/Pong-v5' needs the package ale-py, .*pip install 'mentor\[envs\]'.*"
        r"Gymnasium: Namespace ALE not found",
    )
    assert "unknown env id" not in err


def test_check_env_on_an_entry_point_that_imports_a_missing_package(
    in_tmp, capsys, monkeypatch
) -> None:
    (in_tmp / "mentor_test_cli_jax_env.py").write_text("import mentor_test_cli_no_jax\n")
    monkeypatch.syspath_prepend(str(in_tmp))
    code, out, err = run_main(["check-env", "mentor_test_cli_jax_env:Env"], capsys, monkeypatch)
    assert_one_line_error(
        code, out, err, r"needs the package mentor_test_cli_no_jax, which is not installed here"
    )


def test_train_on_a_tuple_observation_space_says_it_is_not_supported_yet(
    in_tmp, capsys, monkeypatch
) -> None:
    code, out, err = run_main(["train", "ppo", "Blackjack-v1"], capsys, monkeypatch)
    assert_one_line_error(
        code,
        out,
        err,
        r"env 'Blackjack-v1': the observation space is a Tuple space \(Tuple\(Discrete\(32\), "
        r".*which mentor does not support yet; supported: Box, Discrete, MultiDiscrete, "
        r"MultiBinary, Dict",
    )
    assert "Gymnasium API" not in err
    assert not (in_tmp / "runs").exists()


def test_check_env_on_a_tuple_observation_space() -> None:
    result = invoke("check-env", "Blackjack-v1", "--steps", "20")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "is a Tuple space" in text and "not support yet" in text
    assert "Blackjack-v1 uses a space mentor does not support yet" in text


def test_check_env_on_a_good_env_exits_0() -> None:
    result = invoke("check-env", "CartPole-v1", "--steps", "20")
    assert result.exit_code == 0, result.output
    assert "CartPole-v1 passed" in result.output


def test_subprocess_bad_key_exits_2_with_one_line_and_no_traceback(tmp_path) -> None:
    """The installed script, as a user runs it: exit 2, one line on stderr, whatever the width."""
    proc = subprocess.run(
        [str(MENTOR), "train", "ppo", "CartPole-v1", "--set", "method.learning_rat=0.001"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "40"},
        timeout=120,
        check=False,
    )
    assert_one_line_error(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        r"unknown key 'method\.learning_rat' \(did you mean: learning_rate\?\)",
    )
    assert not (tmp_path / "runs").exists()


# --- commands that print -----------------------------------------------------------------------


def test_show_defaults_prints_every_field_as_yaml() -> None:
    result = invoke("show-defaults", "ppo")
    assert result.exit_code == 0, result.output
    assert "gae_lambda: 0.95" in result.output
    assert yaml.safe_load(result.output) == Experiment().model_dump(mode="json")


def test_show_defaults_with_an_env_prints_the_preset() -> None:
    result = invoke("show-defaults", "ppo", "CartPole-v1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# ppo on CartPole-v1: defaults + preset")
    shown = parse(yaml.safe_load(result.output))
    assert shown.method.num_steps == 32  # the preset's value, not the default 128
    assert shown.env.id == "CartPole-v1"


def test_envs_lists_matching_ids_and_presets() -> None:
    result = invoke("envs", "Cart")
    assert result.exit_code == 0, result.output
    assert "CartPole-v1" in result.output
    assert "Acrobot" not in result.output
    row = next(line for line in result.output.splitlines() if "CartPole-v1 " in line)
    assert "475" in row and "ppo" in row


def test_envs_hides_ids_whose_package_is_missing_and_says_what_installs_it(without) -> None:
    without("Box2D", unload=["gymnasium.envs.box2d"])
    result = invoke("envs", "Lunar")
    assert result.exit_code == 0, result.output
    assert "LunarLander-v3" not in result.output
    text = " ".join(result.output.split())
    # LunarLander-v3, LunarLanderContinuous-v3 and mentor/LunarLander-v3, -Moon-v3, -Windy-v3
    assert "5 ids need the package box2d, which is not installed here: pip install " in text
    assert "'mentor[envs]'" in text and "--all lists them" in text

    result = invoke("envs", "Lunar", "--all")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "LunarLander-v3 " in line)
    assert "needs the" in row  # the reason, in its own column (folded over lines)


def test_envs_says_which_package_registers_a_missing_namespace(without) -> None:
    without("ale_py", namespaces=["ALE"])
    result = invoke("envs", "ALE")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "ALE/... ids need the package ale-py, which is not installed here: pip install " in text


# --- a whole run ------------------------------------------------------------------------------


@pytest.mark.learning
def test_train_eval_report_end_to_end(in_tmp: Path) -> None:
    proc = subprocess.run(
        [str(MENTOR), *TINY_TRAIN],
        capture_output=True,
        text=True,
        cwd=in_tmp,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = in_tmp / "runs" / "ppo-CartPole-v1"
    assert f"run {Path('runs') / 'ppo-CartPole-v1'}" in proc.stdout

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stop_reason"]
    assert manifest["stop"] is not None
    # The whole budget: the preset's target (475) would stop it at 1024 steps. Measured by
    # benchmarks/seed_distributions.py cli_tiny_ppo, 2026-12-02, mentor at 6687122, seeds 0-19:
    # every run went to 2048; best 2-episode validation min 20.5, median 55.5, max 318 (seed 7).
    assert manifest["total_steps"] == 2048
    assert manifest["seed"] == 1
    experiment = parse(yaml.safe_load((run / "experiment.yaml").read_text()))
    assert (experiment.seed, experiment.stopping.total_steps) == (1, 2048)
    assert experiment.method.num_steps == 32  # the preset was applied under the overrides
    with open(run / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 2048 // (8 * 32)
    with open(run / "validation.csv") as f:
        assert [int(float(row["step"])) for row in csv.DictReader(f)] == [1024, 2048]
    assert (run / "final" / "meta.json").is_file()
    assert (run / "final" / "model.safetensors").is_file()
    assert json.loads((run / "evaluation.json").read_text())["episodes"] == 3
    assert not (run / "tb").exists()

    result = invoke("eval", "runs/ppo-CartPole-v1", "--episodes", "5", "--num-envs", "2")
    assert result.exit_code == 0, result.output
    written = run / "eval_CartPole-v1_5ep.json"
    data = json.loads(written.read_text())
    assert data["episodes"] == 5
    assert data["env_id"] == "CartPole-v1"
    assert data["checkpoint"] == str(Path("runs/ppo-CartPole-v1/checkpoints/best"))
    assert data["return_min"] <= data["return_mean"] <= data["return_max"]

    out = in_tmp / "eval.json"
    result = invoke("eval", str(run / "final"), "--episodes", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["checkpoint"] == str(run / "final")

    result = invoke("report", "runs/ppo-CartPole-v1")
    assert result.exit_code == 0, result.output
    assert (run / "report" / "learning_curve.png").read_bytes().startswith(PNG_MAGIC)

    # The same command again makes a second folder; the first run is untouched.
    before = (run / "manifest.json").read_text()
    result = invoke(*TINY_TRAIN)
    assert result.exit_code == 0, result.output
    assert (in_tmp / "runs" / "ppo-CartPole-v1_2" / "manifest.json").is_file()
    assert (run / "manifest.json").read_text() == before


def test_fault_11_vector_env_copies_with_other_spaces(tmp_path, capsys, monkeypatch) -> None:
    overrides = [f"env.kwargs.count_file={tmp_path / 'made'}", "env.kwargs.odd_one=4",
                 "env.num_envs=4", "env.vectorization=sync", f"output_dir={tmp_path}"]  # fmt: skip
    args = ["train", "ppo", "mentor.envs.faulty:UnevenEnv"]
    for override in overrides:
        args += ["--set", override]
    code, out, err = run_main(args, capsys, monkeypatch)
    assert_one_line_error(code, out, err, r"env \d of the vector env has observation space Box")
