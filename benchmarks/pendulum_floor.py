"""How slowly can Pendulum-v1 swing up? (issue 18: the speed threshold of PendulumGentle)

A search over Pendulum-v1's own dynamics (g 10, m 1, l 1, dt 0.05, torque in [-2, 2], speed
clipped to 8): from the bottom at rest, the states reachable step by step with torques -2, 0 and
2 while the angular speed never exceeds a threshold, on a grid of angles and speeds. It prints,
for each threshold, the first step at which the pendulum is near the top and slow enough to be
caught (within 0.1 rad of upright, under 1 rad/s), or that it never gets there in 200 steps (an
episode). The grid rounds each state to its nearest cell (0.009 rad, 0.02 rad/s), so a threshold
within about a cell's width of the answer is not decided by it.

    python benchmarks/pendulum_floor.py
    python benchmarks/pendulum_floor.py --thresholds 5 5.5 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import table

PENDULUM = gym.make("Pendulum-v1").unwrapped  # its constants, so the search follows the env
MAX_SPEED, MAX_TORQUE, DT = PENDULUM.max_speed, PENDULUM.max_torque, PENDULUM.dt
GRAVITY = 3 * PENDULUM.g / (2 * PENDULUM.l)  # angular acceleration per sin(angle)
LEVER = 3 / (PENDULUM.m * PENDULUM.l**2)  # angular acceleration per unit of torque
ANGLES, SPEEDS = 720, 801


def cell(angle: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    wrapped = (angle + np.pi) % (2 * np.pi)
    i = np.round(wrapped / (2 * np.pi) * ANGLES).astype(int) % ANGLES
    j = np.round((speed + MAX_SPEED) / (2 * MAX_SPEED) * (SPEEDS - 1)).astype(int)
    return i, np.clip(j, 0, SPEEDS - 1)


def state(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return i / ANGLES * 2 * np.pi - np.pi, j / (SPEEDS - 1) * 2 * MAX_SPEED - MAX_SPEED


def steps_to_top(threshold: float, steps: int = 200) -> int | None:
    """The first step at which a swing-up under ``threshold`` rad/s can be caught at the top."""
    seen = np.zeros((ANGLES, SPEEDS), bool)
    front = cell(np.array([np.pi]), np.array([0.0]))  # hanging at rest (angle 0 is upright)
    seen[front] = True
    for step in range(1, steps + 1):
        angle, speed = state(*front)
        angles, speeds = [], []
        for torque in (-MAX_TORQUE, 0.0, MAX_TORQUE):
            new_speed = speed + (GRAVITY * np.sin(angle) + LEVER * torque) * DT
            new_speed = np.clip(new_speed, -MAX_SPEED, MAX_SPEED)
            allowed = np.abs(new_speed) <= threshold
            angles.append((angle + new_speed * DT)[allowed])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[5.0, 5.1, 5.25, 5.5, 6.0, 8.0]
    )
    args = parser.parse_args()
    rows = []
    for threshold in args.thresholds:
        step = steps_to_top(threshold)
        rows.append([threshold, "never" if step is None else step])
    print(
        "Pendulum-v1 from the bottom at rest, torques -2/0/2, the speed never above the threshold"
    )
    print(table(rows, ["speed at most (rad/s)", "caught at the top at step"]))


if __name__ == "__main__":
    main()
