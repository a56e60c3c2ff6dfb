"""Tests for ``mentor check-env``: good envs pass, each fault case is caught and explained.

Each broken env below breaks exactly one rule, so a test can assert that the check for that
fault failed and that its message carries the facts a user needs to fix it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from rich.console import Console

from mentor.envs.checker import CheckReport, CheckResult, check_env, preflight, render_report
from mentor.errors import EnvError, MissingPackageError, UnknownEnvError, UnsupportedSpaceError


class GoodEnv(gym.Env):
    """A correct env: Box(-1, 1, (3,)) observations, two actions, 20-step episodes."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return self._obs(), 1.0, self.t >= 20, False, {}

    def _obs(self) -> Any:
        return self.np_random.uniform(-1.0, 1.0, size=3).astype(np.float32)


class BareResetEnv(GoodEnv):
    """FAULT-1: reset returns the observation alone (the old Gym API)."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        return super().reset(seed=seed)[0]


class FourTupleEnv(GoodEnv):
    """FAULT-2: step returns (obs, reward, done, info)."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


class WrongShapeEnv(GoodEnv):
    """FAULT-3: the space says (3,), the env returns (2,)."""

    def _obs(self) -> Any:
        return np.zeros(2, np.float32)


class WrongDictShapeEnv(GoodEnv):
    """FAULT-3 inside a Dict: obs['position'] has shape (2,), the space says (3,)."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict(
            {"position": spaces.Box(-1.0, 1.0, (3,), np.float32), "goal": spaces.Discrete(4)}
        )

    def _obs(self) -> Any:
        return {"position": np.zeros(2, np.float32), "goal": 1}


class WrongDtypeEnv(GoodEnv):
    """FAULT-4: float64 observations for a float32 space."""

    def _obs(self) -> Any:
        return super()._obs().astype(np.float64)


class LateOutOfBoundsEnv(GoodEnv):
    """FAULT-5: in bounds at reset and the first steps, out of bounds from step 7 on."""

    def _obs(self) -> Any:
        obs = super()._obs()
        if self.t >= 8:  # t is 8 after the eighth step call, which is step index 7
            obs[1] = 2.5
        return obs


class NanRewardEnv(GoodEnv):
    """FAULT-6: a NaN reward at step 3."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("nan") if self.t == 4 else reward, terminated, truncated, info


class IntTerminatedEnv(GoodEnv):
    """FAULT-7: terminated is an int 0/1 instead of a bool."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, int(terminated), truncated, info


class MissingKeyEnv(GoodEnv):
    """FAULT-8: the Dict space has 'velocity', the observations do not."""

    def __init__(self) -> None:
        super().__init__()
        box = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.observation_space = spaces.Dict({"position": box, "velocity": box})

    def _obs(self) -> Any:
        return {"position": super()._obs()}


class GlobalRngEnv(GoodEnv):
    """FAULT-13: from step 5 on, observations come from numpy's unseeded global RNG."""

    def _obs(self) -> Any:
        if self.t >= 6:  # the sixth step call, step index 5
            return np.random.uniform(-1.0, 1.0, size=3).astype(np.float32)
        return np.full(3, 0.1 * self.t, np.float32)


class RaisingStepEnv(GoodEnv):
    """A step that raises: the checker must report it, not crash."""

    def step(self, action: Any) -> Any:
        if self.t >= 2:
            raise RuntimeError("physics exploded")
        return super().step(action)


class RaisingInitEnv(GoodEnv):
    """An env whose constructor raises."""

    def __init__(self) -> None:
        raise ValueError("missing asset file")


class TupleObsEnv(GoodEnv):
    """A valid env with a Tuple observation space, which mentor does not support yet."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Tuple((spaces.Discrete(3), spaces.Discrete(2)))

    def _obs(self) -> Any:
        return (int(self.np_random.integers(3)), int(self.np_random.integers(2)))


class TextActionEnv(GoodEnv):
    """A valid env with a Text action space, which mentor does not support yet."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.Text(4)


class TupleObsBareResetEnv(TupleObsEnv):
    """Unsupported and broken: a Tuple space, and reset returns the observation alone."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        return super().reset(seed=seed)[0]


def entry(cls: type) -> str:
    """The ``module:ClassName`` entry point of a class defined in this file."""
    return f"{__name__}:{cls.__name__}"


def result(report: CheckReport, name: str) -> CheckResult:
    """The one result of the named check (fails the test when it is absent)."""
    found = [r for r in report.results if r.name == name]
    assert len(found) == 1, f"expected one '{name}' result, found {report.results}"
    return found[0]


def failed(report: CheckReport, name: str, severity: str = "error") -> str:
    """Assert the named check failed with that severity; return its message."""
    check = result(report, name)
    assert not check.passed, check
    assert check.severity == severity, check
    return check.message


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_classic_envs_pass(env_id: str) -> None:
    report = check_env(env_id)
    assert report.ok, report.failures
    assert report.failures == []
    for name in ("reset API", "step API", "obs shape", "obs bounds", "determinism"):
        assert result(report, name).passed


def test_good_entry_point_env_passes_everything() -> None:
    report = check_env(entry(GoodEnv), num_steps=50)
    assert report.ok
    assert all(r.passed for r in report.results), report.results


def test_fault_1_bare_reset() -> None:
    report = check_env(entry(BareResetEnv), num_steps=30)
    assert not report.ok
    message = failed(report, "reset API")
    assert "reset(*, seed=None, options=None) -> (obs, info)" in message
    assert "ndarray" in message


def test_fault_2_four_tuple_step() -> None:
    report = check_env(entry(FourTupleEnv), num_steps=30)
    message = failed(report, "step API")
    assert "4 items" in message
    assert "expected 5" in message


def test_fault_3_wrong_shape() -> None:
    message = failed(check_env(entry(WrongShapeEnv), num_steps=10), "obs shape")
    assert "(3,)" in message and "(2,)" in message


def test_fault_3_wrong_shape_names_the_dict_key() -> None:
    message = failed(check_env(entry(WrongDictShapeEnv), num_steps=10), "obs shape")
    assert "obs['position']" in message
    assert "(3,)" in message and "(2,)" in message


def test_fault_4_wrong_dtype_is_a_warning() -> None:
    report = check_env(entry(WrongDtypeEnv), num_steps=10)
    message = failed(report, "obs dtype", severity="warning")
    assert "float32" in message and "float64" in message


def test_fault_5_out_of_bounds_at_a_later_step() -> None:
    report = check_env(entry(LateOutOfBoundsEnv), num_steps=30)
    message = failed(report, "obs bounds", severity="warning")
    assert "step 7" in message
    assert "obs[1]" in message
    assert "2.5" in message
    assert report.ok  # a warning alone does not block training


def test_fault_6_nan_reward() -> None:
    report = check_env(entry(NanRewardEnv), num_steps=30)
    message = failed(report, "finite values")
    assert "reward" in message and "step 3" in message and "nan" in message


def test_fault_7_int_terminated() -> None:
    message = failed(check_env(entry(IntTerminatedEnv), num_steps=30), "step types")
    assert "terminated" in message and "int" in message and "bool" in message


def test_fault_8_missing_dict_key() -> None:
    report = check_env(entry(MissingKeyEnv), num_steps=10)
    message = failed(report, "dict keys")
    assert "missing key 'velocity'" in message


def test_fault_13_global_rng_is_not_deterministic() -> None:
    report = check_env(entry(GlobalRngEnv), num_steps=30)
    message = failed(report, "determinism")
    assert "step 5" in message
    assert "obs" in message


def test_an_env_that_raises_in_step_is_reported_not_raised() -> None:
    report = check_env(entry(RaisingStepEnv), num_steps=10)
    assert not report.ok
    message = failed(report, "rollout")
    assert "step 2" in message and "RuntimeError" in message and "physics exploded" in message


def test_an_env_that_cannot_be_constructed_is_reported() -> None:
    report = check_env(entry(RaisingInitEnv))
    message = failed(report, "make")
    assert "ValueError" in message and "missing asset file" in message


def test_unknown_id_raises_with_a_suggestion() -> None:
    with pytest.raises(UnknownEnvError, match="CartPole-v1"):
        check_env("CartPol-v1")


def test_render_report_names_every_check_and_gives_a_verdict() -> None:
    report = check_env(entry(FourTupleEnv), num_steps=10)
    console = Console(record=True, width=200)
    render_report(report, console)
    text = console.export_text()
    for check in report.results:
        assert check.name in text
    assert "✗" in text
    assert "failed" in text.splitlines()[-1]


def test_render_report_shows_brackets_in_messages_literally() -> None:
    report = CheckReport("x", [CheckResult("obs shape", False, "obs['position'] is [bold]odd")])
    console = Console(record=True, width=200)
    render_report(report, console)
    assert "obs['position'] is [bold]odd" in console.export_text()


# --- what is not the env's fault: a space mentor does not support yet, a missing package ------


def test_a_tuple_observation_space_is_unsupported_not_broken() -> None:
    report = check_env(entry(TupleObsEnv), num_steps=30)
    check = result(report, "observation space")
    assert not check.passed and check.unsupported
    assert "is a Tuple space" in check.message and "not support yet" in check.message
    assert [r.name for r in report.failures] == ["observation space"]  # the rest passes


def test_preflight_says_a_space_is_not_supported_yet_not_that_it_breaks_the_api() -> None:
    with pytest.raises(UnsupportedSpaceError) as info:
        preflight(entry(TupleObsEnv))
    message = str(info.value)
    assert "Gymnasium API" not in message
    assert "the observation space is a Tuple space (Tuple(Discrete(3), Discrete(2)))" in message
    assert "supported: Box, Discrete, MultiDiscrete, MultiBinary, Dict" in message


def test_preflight_on_an_unsupported_action_space() -> None:
    with pytest.raises(
        UnsupportedSpaceError,
        match=r"the action space is a Text space .*"
        "supported: Discrete, Box, MultiDiscrete, MultiBinary",
    ) as info:
        preflight(entry(TextActionEnv))
    assert "Gymnasium API" not in str(info.value)


def test_preflight_on_an_unsupported_space_of_a_broken_env_says_both() -> None:
    with pytest.raises(UnsupportedSpaceError) as info:
        preflight(entry(TupleObsBareResetEnv))
    message = str(info.value)
    assert message.index("is a Tuple space") < message.index("also breaks the Gymnasium API")
    assert "reset API" in message


def test_preflight_on_an_env_that_cannot_be_constructed() -> None:
    with pytest.raises(
        EnvError,
        match=r"cannot be made: making the env raised ValueError: "
        "missing asset file",
    ) as info:
        preflight(entry(RaisingInitEnv))
    assert "Gymnasium API" not in str(info.value)


def test_render_report_of_an_unsupported_space_says_so() -> None:
    console = Console(record=True, width=200)
    render_report(check_env(entry(TupleObsEnv), num_steps=10), console)
    assert "uses a space mentor does not support yet" in console.export_text().splitlines()[-1]


def test_an_env_whose_module_needs_a_missing_package_raises(tmp_path, monkeypatch) -> None:
    (tmp_path / "mentor_test_jax_env.py").write_text(
        "import mentor_test_no_such_package as jax\n\nclass Env:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for run in (check_env, preflight):
        with pytest.raises(MissingPackageError) as info:
            run("mentor_test_jax_env:Env")
        message = str(info.value)
        assert "needs the package mentor_test_no_such_package, which is not installed" in message
        assert "importing module 'mentor_test_jax_env' raised ModuleNotFoundError" in message
        assert "Gymnasium API" not in message


@pytest.mark.parametrize("mask_in", ["obs", "info"])
@pytest.mark.parametrize("nvec", [(4,), (3, 2)])
def test_the_checkers_rollout_takes_only_allowed_actions(mask_in: str, nvec: tuple) -> None:
    """An env with action masks is stepped among its allowed actions (MaskedEnv counts a masked
    one in its info), so an env that raises on a masked action passes check-env and the
    preflight; the draws still come from the action space's seeded generator."""
    from mentor.envs.checker import _rollout
    from mentor.envs.testing import MaskedEnv

    rollout = _rollout(MaskedEnv(mask_in=mask_in, nvec=nvec), 200, seed=3, max_episode_steps=None)
    assert rollout.error is None
    steps = [record.value for record in rollout.records if record.kind == "step"]
    assert len(steps) == 200
    assert sum(info["masked_actions"] for *_, info in steps) == 0
    again = _rollout(MaskedEnv(mask_in=mask_in, nvec=nvec), 200, seed=3, max_episode_steps=None)
    assert [r.value[1] for r in again.records if r.kind == "step"] == [s[1] for s in steps]
