"""Shields and cost functions around an env (mentor/envs/safety.py), the constrained tasks
(mentor/envs/constrained.py) and the Lagrange multiplier (mentor/core/constraint.py)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mentor.core.constraint import Multiplier, step_multiplier
from mentor.core.vec_env import Episode
from mentor.envs.constrained import CartPoleSlow, PendulumGentle, PointGoal
from mentor.envs.safety import Safe
from mentor.errors import ConfigError, EnvError


def push_left_only(obs, action, env):
    """CartPole: every push right (1) becomes a push left (0)."""
    return 0


def anything_goes(obs, action, env):
    return action


def out_of_space(obs, action, env):
    return 7


def left_unless_far_left(obs, env):
    return np.array([True, obs[0] > -0.1])


def off_centre(obs, action, next_obs, reward, info, region=0.1):
    return float(abs(next_obs[0]) > region)


def test_a_shield_counts_exactly_the_steps_it_changed() -> None:
    env = Safe("CartPole-v1", shield=f"{__name__}:push_left_only")
    env.reset(seed=0)
    actions = [1, 0, 1, 1, 0, 0, 1]
    counted = [env.step(a)[4]["shield_interventions"] for a in actions]
    assert counted == [float(a == 1) for a in actions]
    assert env.interventions == 4
    same = Safe("CartPole-v1", shield=f"{__name__}:anything_goes")
    same.reset(seed=0)
    assert sum(same.step(a)[4]["shield_interventions"] for a in actions) == 0


def test_a_shield_that_returns_an_action_outside_the_space_is_named_with_the_step() -> None:
    env = Safe("CartPole-v1", shield=f"{__name__}:out_of_space")
    env.reset(seed=0)
    with pytest.raises(EnvError, match=r"shield .*out_of_space returned action 7 at step 1, "
                                       r"outside the action space Discrete\(2\)"):  # fmt: skip
        env.step(0)


def test_a_mask_goes_to_the_agent_and_a_cost_function_into_info() -> None:
    env = Safe("CartPole-v1", mask=f"{__name__}:left_unless_far_left",
               cost=f"{__name__}:off_centre", cost_kwargs={"region": 0.01})  # fmt: skip
    obs, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [True, obs[0] > -0.1] and info["cost"] == 0.0
    assert "shield_interventions" not in info and env.interventions == 0  # a reset is no step
    counted = 0
    for _ in range(30):
        masked = not info["action_mask"].all()  # the mask this step's action is chosen under
        obs, _, terminated, truncated, info = env.step(0)
        assert info["cost"] == float(abs(obs[0]) > 0.01)
        assert info["shield_interventions"] == float(masked)
        counted += masked
        if terminated or truncated:
            break
    assert env.interventions == counted
    check_env(Safe("CartPole-v1", cost=f"{__name__}:off_centre"), skip_render_check=True)
    with pytest.raises(ConfigError, match="give a shield, a mask or a cost function"):
        Safe("CartPole-v1")
    with pytest.raises(ConfigError, match="shield 'nowhere' is not of the form"):
        Safe("CartPole-v1", shield="nowhere")


def test_the_shipped_constrained_tasks_report_a_cost_each_step() -> None:
    for env in (CartPoleSlow(), PendulumGentle(), PointGoal()):
        check_env(env, skip_render_check=True)
        env.reset(seed=0)
        costs = [env.step(env.action_space.sample())[4]["cost"] for _ in range(20)]
        assert min(costs) >= 0.0 and (isinstance(env, CartPoleSlow) or set(costs) <= {0.0, 1.0})
    goal = PointGoal()
    obs, _ = goal.reset(seed=1)
    total = 0.0
    for _ in range(150):  # straight at the goal: through the hazard
        obs, _, terminated, truncated, info = goal.step(np.clip(obs[4:6] * 5, -1, 1))
        total += info["cost"]
        if terminated or truncated:
            break
    assert terminated and total >= 3


def test_the_multipliers_follow_the_excess_of_cost_over_the_limit() -> None:
    """Gradient ascent by hand: 0 + 0.1 x (7 - 5) = 0.2, then 0.2 + 0.1 x (1 - 5) < 0: 0. PID:
    P, I and D by hand on the first two steps (no smoothing history yet: P = the cost)."""
    ascent = Multiplier("lagrangian", lr=0.1)
    assert ascent.update(7.0, 5.0) == pytest.approx(0.2)
    assert ascent.update(1.0, 5.0) == 0.0
    pid = Multiplier("pid", kp=0.5, ki=0.1, kd=1.0, ema=0.5, d_delay=2)
    assert pid.update(7.0, 5.0) == pytest.approx(0.5 * 2 + 0.2)  # no rise yet
    smoothed = 0.5 * 7 + 0.5 * 9
    assert pid.update(9.0, 5.0) == pytest.approx(0.5 * (smoothed - 5) + 0.6 + (smoothed - 7))
    assert pid.update(0.0, 5.0) == pytest.approx(max(0.0, 0.5 * (4.0 - 5) + 0.1 + 0.0))


def test_a_position_cap_shields_the_market_and_counts_each_capped_order() -> None:
    env = Safe("mentor.envs.trading:TradingEnv",
               env_kwargs={"synthetic_bars": 120, "window": 10, "actions": "continuous"},
               shield="mentor.envs.trading:cap_position", shield_kwargs={"cap": 0.3})  # fmt: skip
    env.reset(seed=0)
    orders = [0.1, 0.9, -0.5, 0.3, -0.2, 1.0]
    counted = [env.step(np.array([a], np.float32))[4]["shield_interventions"] for a in orders]
    assert counted == [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert env.unwrapped.positions.tolist() == pytest.approx([0.3])
    with pytest.raises(ConfigError, match="continuous actions"):
        Safe("mentor.envs.trading:TradingEnv", env_kwargs={"synthetic_bars": 120},
             shield="mentor.envs.trading:cap_position").step(2)  # fmt: skip


def test_the_multiplier_waits_out_its_warm_up_and_reads_the_episodes_costs() -> None:
    episodes = [Episode(0, 1.0, 10, {"cost": 9.0}), Episode(1, 1.0, 10, {"cost": 5.0})]
    held = Multiplier("lagrangian", lr=0.1)
    metrics = step_multiplier(held, "cost", 4.0, episodes, moves=False)
    assert held.value == 0.0 and metrics["constraint/episode_cost"] == 7.0
    assert metrics["constraint/violations"] == 1.0
    moving = Multiplier("lagrangian", lr=0.1)
    assert step_multiplier(moving, "cost", 4.0, episodes)["constraint/multiplier"] == pytest.approx(
        0.3
    )


def test_a_margin_drives_the_multiplier_under_the_limit_and_the_limit_still_counts() -> None:
    """constraint.margin: the multiplier's target is the limit less its share, so a cost of 3.5
    under a limit of 4 with a margin of 0.25 (target 3) raises it; violations count the limit."""
    episodes = [Episode(0, 1.0, 10, {"cost": 3.5}), Episode(1, 1.0, 10, {"cost": 3.5})]
    at_limit = Multiplier("lagrangian", lr=0.1)
    assert step_multiplier(at_limit, "cost", 4.0, episodes)["constraint/multiplier"] == 0.0
    margin = Multiplier("lagrangian", lr=0.1)
    metrics = step_multiplier(margin, "cost", 4.0, episodes, target=3.0)
    assert margin.value == pytest.approx(0.05) and metrics["constraint/target"] == 3.0
    assert metrics["constraint/violations"] == 0.0 and metrics["constraint/limit"] == 4.0
