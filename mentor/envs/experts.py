"""Scripted experts for the classic-control envs: demonstrations no learner produced.

Each is a policy in ``mentor record``'s form (a batch of raw observations in, a batch of env
actions out), so ``mentor record mentor.envs.experts:cartpole --env CartPole-v1 ...`` records
a dataset without training anything first, and imitation can be measured against an expert that
mentor did not train.

    cartpole   push toward where the pole is falling: the sign of angle + angular velocity
               (plus a little of the cart's drift); balances for the whole 500 steps
    pendulum   energy shaping to swing up, then a PD controller at the top (Astrom & Furuta
               2000, "Swinging up a pendulum by energy control", Automatica 36(2))
"""

from __future__ import annotations

import numpy as np

# Pendulum-v1's constants (gymnasium/envs/classic_control/pendulum.py): g, m, l, max torque.
_G, _M, _L, _MAX_TORQUE = 10.0, 1.0, 1.0, 2.0


def cartpole(obs: np.ndarray) -> np.ndarray:
    """CartPole-v1 (obs: x, x_dot, theta, theta_dot): 1 pushes right, 0 left."""
    obs = np.asarray(obs, dtype=np.float64).reshape(-1, 4)
    x, x_dot, theta, theta_dot = obs.T
    push = theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot
    return (push > 0).astype(np.int64)


def pendulum(obs: np.ndarray) -> np.ndarray:
    """Pendulum-v1 (obs: cos theta, sin theta, theta_dot; theta = 0 upright): torque in [-2, 2].

    Far from the top, pump energy toward that of the pendulum resting upright (its torque has
    the sign of the velocity while the energy is short); near the top, a PD controller holds it.
    """
    obs = np.asarray(obs, dtype=np.float64).reshape(-1, 3)
    cos, sin, theta_dot = obs.T
    theta = np.arctan2(sin, cos)
    # Energy of a rod of mass m and length l about its pivot (inertia m l^2 / 3), measured
    # from the upright rest state, where it is 0; hanging at rest it is -m g l.
    energy = _M * _L**2 / 6 * theta_dot**2 + _M * _G * _L / 2 * (cos - 1.0)
    swing = np.clip(-2.0 * energy * np.sign(theta_dot + 1e-9), -_MAX_TORQUE, _MAX_TORQUE)
    hold = np.clip(-(10.0 * theta + 2.0 * theta_dot), -_MAX_TORQUE, _MAX_TORQUE)
    torque = np.where(cos > 0.85, hold, swing)
    return torque.astype(np.float32).reshape(-1, 1)
