"""MiniGrid at the edge: its observation in the form mentor's encoders take.

A MiniGrid observation is a Dict: ``image``, the agent's 7 x 7 view as (object, colour, state)
indices per cell (a uint8 Box, but not pixels), ``direction`` (Discrete(4)) and ``mission`` (a
text). ``MiniGridObservation`` gives ``image`` as a MultiDiscrete of those indices, which the
encoder one-hots (11 objects + 6 colours + 3 states = 20 numbers a cell, 980 for the view), keeps
``direction``, and leaves the mission out: it is one sentence per env family (DoorKey's "use the
key to open the door and then get to the goal"), so it tells a policy nothing there; for the
families whose missions vary (BabyAI's instructions), a policy trained here does not read them.

``mentor.envs.resolve.make_env`` puts it around every MiniGrid env it makes (training,
validation, ``mentor eval``); an agent trained on one acts on observations of this form: wrap an
env of your own with ``MiniGridObservation`` too.

Snapshots (exact resume): a MiniGrid env's state is its grid of objects, the agent's position,
direction and what it carries, the step count, the mission and the random generator. The grid is
kept as MiniGrid's own (object, colour, state) encoding and rebuilt with ``Grid.decode``, which
holds what DoorKey, Empty, FourRooms, the lava and crossing envs put in it (walls, doors and
their lock state, keys, balls, goals, lava); a box's contents are not in that encoding, so an
env with objects inside boxes does not resume exactly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.snapshot import register_adapter, register_protocol


class MiniGridObservation(gym.ObservationWrapper):
    """(module docstring) Stateless: its snapshot is empty."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

        image = env.observation_space["image"]
        per_cell = [len(OBJECT_TO_IDX), len(COLOR_TO_IDX), len(STATE_TO_IDX)]
        nvec = np.broadcast_to(np.array(per_cell), image.shape).copy()
        self.observation_space = spaces.Dict(
            {"image": spaces.MultiDiscrete(nvec), "direction": env.observation_space["direction"]}
        )

    def observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        return {"image": obs["image"].astype(np.int64), "direction": obs["direction"]}


register_adapter(MiniGridObservation, ())


def _snapshot(env: Any) -> dict[str, Any]:
    carrying = env.carrying
    return {
        "grid": env.grid.encode(),
        "agent_pos": None if env.agent_pos is None else tuple(int(v) for v in env.agent_pos),
        "agent_dir": int(env.agent_dir),
        "carrying": None if carrying is None else np.array(carrying.encode(), dtype=np.int64),
        "step_count": int(env.step_count),
        "mission": env.mission,
        "_np_random": env._np_random,
        "_np_random_seed": env._np_random_seed,
    }


def _restore(env: Any, state: dict[str, Any]) -> None:
    from minigrid.core.grid import Grid
    from minigrid.core.world_object import WorldObj

    env.grid, _ = Grid.decode(np.asarray(state["grid"], dtype=np.uint8))
    env.agent_pos = None if state["agent_pos"] is None else tuple(state["agent_pos"])
    env.agent_dir = state["agent_dir"]
    carried = state["carrying"]
    env.carrying = None
    if carried is not None:
        env.carrying = WorldObj.decode(*(int(v) for v in carried))
        env.carrying.cur_pos = np.array([-1, -1])
    env.step_count, env.mission = state["step_count"], state["mission"]
    env._np_random, env._np_random_seed = state["_np_random"], state["_np_random_seed"]


def _register() -> None:
    from minigrid.minigrid_env import MiniGridEnv

    register_protocol(MiniGridEnv, _snapshot, _restore)


_register()
