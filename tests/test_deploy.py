"""Export for deployment (issue 19): the policy alone as ONNX or TorchScript, run outside mentor,
gives mentor's own actions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_rough_edges import one_line_error, run_cli

import mentor
from mentor import deploy
from mentor.agent import Agent
from mentor.errors import ConfigError, MissingPackageError
from mentor.experiment import build

README = Path(__file__).parent.parent / "README.md"


def built_agent(method: str, env_id: str) -> Agent:
    """An untrained agent with observation normalization whose statistics are not the identity
    (so that the deployed function must carry them)."""
    experiment = build(method=method, env_id=env_id, overrides=["env.normalize_obs=true"])
    env = gym.make(env_id) if ":" not in env_id else None
    if env is None:
        from mentor.envs.resolve import make_env

        env = make_env(experiment.env.id, experiment.env.kwargs)
    agent = Agent.build(experiment, env.observation_space, env.action_space)
    stats = agent.policy.normalizer.stats
    if stats is not None:
        generator = torch.Generator().manual_seed(0)
        stats.mean.copy_(torch.randn(stats.mean.shape, generator=generator))
        stats.var.copy_(torch.rand(stats.var.shape, generator=generator) + 0.5)
    return agent


def onnx_actions(path: Path, obs: np.ndarray) -> np.ndarray:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path)).run(None, {"obs": obs})[0]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_exported_policy_acts_as_mentor_does_on_new_observations(
    trained_run: Path, tmp_path: Path, fmt: str
) -> None:
    """Discrete actions (PPO on CartPole, normalization on): the same index on every one of
    1,000 observations the export's own check never saw."""
    out = mentor.export(trained_run, tmp_path / "deploy", format=fmt)
    info = json.loads((out / "export.json").read_text())
    assert info["checked"] == {"observations": 1000, "differing_actions": 0, "ok": True}
    assert info["input"] == {"name": "obs", "shape": ["batch", 4], "dtype": "float32",
                             "encoded": False}  # fmt: skip
    agent = Agent.load(trained_run)
    obs = np.random.default_rng(7).normal(0, 1.5, (1000, 4)).astype(np.float32)
    if fmt == "onnx":
        theirs = onnx_actions(out / "policy.onnx", obs)
    else:
        theirs = torch.jit.load(str(out / "policy.pt"))(torch.as_tensor(obs)).numpy()
    ours = agent.act(obs)
    assert len(set(ours.tolist())) == 2  # both actions occur: the comparison can fail
    assert theirs.tolist() == ours.tolist()
    assert Agent.load(out).act(obs).tolist() == ours.tolist()  # still a mentor agent too


@pytest.mark.parametrize(
    "method, env_id",
    [
        ("sac", "Pendulum-v1"),
        ("td3", "Pendulum-v1"),
        ("ppo", "Pendulum-v1"),
        ("dqn", "CartPole-v1"),
        ("ppo", "mentor.envs.testing:MultiDiscreteEnv"),
        ("ppo", "mentor.envs.testing:ImageEnv"),
        ("ppo", "mentor.envs.testing:DictObsEnv"),
    ],
)
def test_onnx_export_matches_mentor_for_every_method_and_space(
    method: str, env_id: str, tmp_path: Path
) -> None:
    """Continuous actions within 1e-5 of mentor's in the env's units, integer ones identical;
    images stay uint8, Dict observations take mentor's encoding (export.json says so)."""
    agent = built_agent(method, env_id)
    info = deploy.export_policy(agent, tmp_path, "onnx")
    assert info["checked"]["ok"]
    obs = deploy.sample_observations(agent, 200, seed=11)
    theirs, ours = onnx_actions(tmp_path / "policy.onnx", obs), deploy.mentor_actions(agent, obs)
    assert theirs.shape == ours.shape
    if "Pendulum" in env_id:
        assert np.abs(theirs - ours).max() <= 1e-5
        assert np.all(np.abs(theirs) <= 2.0)  # clipped to the bounds, as the env gets them
        assert np.ptp(ours) > 1e-3  # the actions vary: a constant would pass the comparison
    else:
        assert np.array_equal(theirs, ours)
    assert info["input"]["encoded"] == ("DictObs" in env_id)
    assert info["input"]["dtype"] == ("uint8" if "Image" in env_id else "float32")


def test_the_check_refuses_an_export_that_differs_and_keeps_nothing(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 1,000-observation check can fail: a file whose actions differ is not kept."""
    real = deploy.run_file
    monkeypatch.setattr(deploy, "run_file", lambda *a: 1 - real(*a))
    with pytest.raises(ConfigError, match="differ from mentor's on 1000 observations"):
        mentor.export(trained_run, tmp_path / "deploy", format="onnx")
    assert not (tmp_path / "deploy").exists()


def test_an_op_onnx_cannot_express_is_named(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad input (issue 19): a policy with an operator ONNX has no function for (Hurwitz's
    zeta here) is refused with the operator's name; the folder is not left half-written."""
    forward = deploy.DeployedPolicy.forward

    def with_zeta(self: deploy.DeployedPolicy, obs: torch.Tensor) -> torch.Tensor:
        return forward(self, obs) + torch.special.zeta(obs[:, 0] * 0 + 2, 1.0).long()

    monkeypatch.setattr(deploy.DeployedPolicy, "forward", with_zeta)
    with pytest.raises(ConfigError, match=r"ONNX cannot express operator prims::zeta"):
        mentor.export(trained_run, tmp_path / "deploy", format="onnx")
    assert not (tmp_path / "deploy").exists()


def test_export_without_the_onnx_packages_names_the_extra(
    trained_run: Path, tmp_path: Path, without
) -> None:
    without("onnxscript")
    with pytest.raises(MissingPackageError, match=r"mentor\[export\]"):
        mentor.export(trained_run, tmp_path / "deploy", format="onnx")
    assert not (tmp_path / "deploy").exists()


def test_cli_export_onnx_and_its_bad_input(trained_run: Path, tmp_path: Path) -> None:
    done = run_cli("export", str(trained_run), str(tmp_path / "a"), "--format", "onnx")
    assert done.returncode == 0, done.stderr
    assert "checked against mentor's actions on 1000 observations" in done.stdout
    assert (tmp_path / "a" / "policy.onnx").is_file()
    done = run_cli("export", str(trained_run), str(tmp_path / "b"), "--format", "tflite")
    assert one_line_error(done) == (
        "error: export format 'tflite': choose one of safetensors, onnx, torchscript"
    )
    assert not (tmp_path / "b").exists()


def test_a_multi_agent_or_masked_agent_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    agent = built_agent("ppo", "mentor.envs.testing:MaskedEnv")
    with pytest.raises(ConfigError, match="gives action masks"):
        deploy.export_policy(agent, tmp_path, "onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_readme_inference_example_runs_without_mentor_or_torch(
    trained_run: Path, tmp_path: Path
) -> None:
    """The README's example, as written, on an ONNX export: it imports neither mentor nor
    torch, and plays CartPole with the exported policy."""
    text = README.read_text()
    block = re.search(r"<!-- onnx-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "the README's ONNX inference example (marked <!-- onnx-example -->)"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 20
    mentor.export(trained_run, tmp_path / "deploy" / "cartpole", format="onnx")
    check = "\nimport sys\nassert not {'mentor', 'torch'} & set(sys.modules), sorted(sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code + check], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"return \d+", done.stdout), done.stdout
