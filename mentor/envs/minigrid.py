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
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.snapshot import register_adapter


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
