"""How slowly can Pendulum-v1 swing up? (issue 18: the speed threshold of PendulumGentle)

A search over Pendulum-v1's own dynamics (g 10, m 1, l 1, dt 0.05, torque in [-2, 2], speed
clipped to 8): from the bottom at rest, the states reachable step by step with torques -2, 0 and
2 while the angular speed never exceeds a threshold, on a grid of angles and speeds. It prints,
for each threshold, the first step at which the pendulum is near the top and slow enough to be
caught (within 0.1 rad of upright, under 1 rad/s), or that it never gets there in 200 steps (an
episode). The grid rounds each state to its nearest cell (0.009 rad, 0.02 rad/s), so a threshold
within about a cell's width of the answer is not decided by it.

With ``--returns`` it also asks what the constraint costs in return: dynamic programming over
the same grid (nine torques from -2 to 2, the 200 steps of an episode, Pendulum-v1's reward, a
step above the threshold forbidden) gives a policy for each threshold, which then plays
PendulumGentle itself (continuous states, the env's own starts, 100 episodes): its mean return
and mean cost (steps above the threshold), measured in the env and not assumed (the grid's
rounding lets a forbidden step slip through now and then), are what a controller can reach, to
set against an agent's. With ``--prices`` a
step above the threshold is not forbidden but priced (a fixed Lagrange multiplier): the policies
planned for each price trace what each expected cost buys in return, the frontier a constrained
agent's (cost, return) can be set against.

    python benchmarks/pendulum_floor.py
    python benchmarks/pendulum_floor.py --thresholds 5 5.5 6
    python benchmarks/pendulum_floor.py --returns --thresholds 5 5.25 5.5 8
    python benchmarks/pendulum_floor.py --thresholds 5 --prices 0 10 30 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import angle_normalize

sys.path.insert(0, str(Path(__file__).parent))
from common import table

PENDULUM = gym.make("Pendulum-v1").unwrapped  # its constants, so the search follows the env
MAX_SPEED, MAX_TORQUE, DT = PENDULUM.max_speed, PENDULUM.max_torque, PENDULUM.dt
GRAVITY = 3 * PENDULUM.g / (2 * PENDULUM.l)  # angular acceleration per sin(angle)
LEVER = 3 / (PENDULUM.m * PENDULUM.l**2)  # angular acceleration per unit of torque
ANGLES, SPEEDS = 720, 801
TORQUES = np.linspace(-MAX_TORQUE, MAX_TORQUE, 9)
FORBIDDEN = 1e4  # the planner's penalty for a step above the threshold


def cell(angle: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    wrapped = (angle + np.pi) % (2 * np.pi)
    i = np.round(wrapped / (2 * np.pi) * ANGLES).astype(int) % ANGLES
    j = np.round((speed + MAX_SPEED) / (2 * MAX_SPEED) * (SPEEDS - 1)).astype(int)
    return i, np.clip(j, 0, SPEEDS - 1)


def state(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return i / ANGLES * 2 * np.pi - np.pi, j / (SPEEDS - 1) * 2 * MAX_SPEED - MAX_SPEED


def swing(angle: np.ndarray, speed: np.ndarray, torque: float) -> tuple[np.ndarray, np.ndarray]:
    """One step of Pendulum-v1: the new angle and the new (clipped) speed."""
    new_speed = speed + (GRAVITY * np.sin(angle) + LEVER * torque) * DT
    new_speed = np.clip(new_speed, -MAX_SPEED, MAX_SPEED)
    return angle + new_speed * DT, new_speed


def steps_to_top(threshold: float, steps: int = 200) -> int | None:
    """The first step at which a swing-up under ``threshold`` rad/s can be caught at the top."""
    seen = np.zeros((ANGLES, SPEEDS), bool)
    front = cell(np.array([np.pi]), np.array([0.0]))  # hanging at rest (angle 0 is upright)
    seen[front] = True
    for step in range(1, steps + 1):
        angle, speed = state(*front)
        angles, speeds = [], []
        for torque in (-MAX_TORQUE, 0.0, MAX_TORQUE):
            new_angle, new_speed = swing(angle, speed, torque)
            allowed = np.abs(new_speed) <= threshold
            angles.append(new_angle[allowed])
            speeds.append(new_speed[allowed])
        i, j = cell(np.concatenate(angles), np.concatenate(speeds))
        new = ~seen[i, j]
        i, j = np.unique(np.stack([i[new], j[new]]), axis=1)
        if i.size == 0:
            return None
        seen[i, j] = True
        front = (i, j)
        angle, speed = state(i, j)
        if np.any((np.abs(angle) < 0.1) & (np.abs(speed) < 1.0)):
            return step
    return None


def planned_policy(threshold: float, price: float = FORBIDDEN, steps: int = 200) -> np.ndarray:
    """Backward induction over the grid: the best torque (an index into ``TORQUES``) for each
    number of steps left and each cell, for the reward less ``price`` for each step whose new
    speed exceeds ``threshold`` (by default a price no return can outweigh: forbidden)."""
    i, j = np.meshgrid(np.arange(ANGLES), np.arange(SPEEDS), indexing="ij")
    angle, speed = state(i.ravel(), j.ravel())
    state_cost = angle_normalize(angle) ** 2 + 0.1 * speed**2  # Pendulum-v1's reward, negated
    rewards, successors = [], []
    for torque in TORQUES:
        new_angle, new_speed = swing(angle, speed, torque)
        reward = -(state_cost + 0.001 * torque**2)
        rewards.append(reward - price * (np.abs(new_speed) > threshold))
        ni, nj = cell(new_angle, new_speed)
        successors.append(ni * SPEEDS + nj)
    rewards, successors = np.stack(rewards), np.stack(successors)
    value = np.zeros(ANGLES * SPEEDS)
    policy = np.empty((steps, ANGLES * SPEEDS), np.int8)
    for left in range(steps):
        q = rewards + value[successors]
        policy[left] = q.argmax(0)
        value = q.max(0)
    return policy


def play(policy: np.ndarray, threshold: float, episodes: int = 100) -> tuple[float, float]:
    """The planned policy on PendulumGentle (seeds 0..episodes-1): mean return and mean cost."""
    from mentor.envs.constrained import PendulumGentle

    env = PendulumGentle(max_speed=threshold)
    returns, costs = [], []
    for seed in range(episodes):
        env.reset(seed=seed)
        total = cost = 0.0
        for left in range(len(policy), 0, -1):
            angle, speed = env.unwrapped.state
            i, j = cell(np.array([angle]), np.array([speed]))
            torque = TORQUES[policy[left - 1, i[0] * SPEEDS + j[0]]]
            _, reward, terminated, truncated, info = env.step(np.array([torque], np.float32))
            total, cost = total + reward, cost + info["cost"]
            if terminated or truncated:
                break
        returns.append(total)
        costs.append(cost)
    return float(np.mean(returns)), float(np.mean(costs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[5.0, 5.1, 5.25, 5.5, 6.0, 8.0]
    )
    parser.add_argument(
        "--returns", action="store_true", help="also plan a policy per threshold and play it"
    )
    parser.add_argument(
        "--prices", type=float, nargs="*", default=[], help="plan with a step above priced so"
    )
    args = parser.parse_args()
    rows = []
    for threshold in args.thresholds:
        step = steps_to_top(threshold)
        row = [threshold, "never" if step is None else step]
        if args.returns:
            mean_return, mean_cost = play(planned_policy(threshold), threshold)
            row += [f"{mean_return:.1f}", f"{mean_cost:.2f}"]
        rows.append(row)
    print(
        "Pendulum-v1 from the bottom at rest, torques -2/0/2, the speed never above the threshold"
    )
    header = ["speed at most (rad/s)", "caught at the top at step"]
    if args.returns:
        header += ["planned policy: return (100 ep)", "its cost (steps above)"]
    print(table(rows, header))
    if args.prices:
        frontier = []
        for threshold in args.thresholds:
            for price in args.prices:
                mean_return, mean_cost = play(planned_policy(threshold, price), threshold)
                frontier.append([threshold, price, f"{mean_return:.1f}", f"{mean_cost:.2f}"])
        print("\nPolicies planned with a price on each step above the threshold, 100 episodes")
        print(table(frontier, ["threshold", "price", "return", "cost (steps above)"]))


if __name__ == "__main__":
    main()
