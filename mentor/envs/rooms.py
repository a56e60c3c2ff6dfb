"""The four-rooms grid of Sutton, Precup & Singh (1999), as the option-critic paper (Bacon,
Harb & Precup 2017, section 5.1) plays it: ``mentor/FourRooms-v0``.

    layout       13 x 13 cells with the outer walls; four rooms joined by four hallways
                 (``HALLWAYS``), 104 free cells. Cells are (row, column), row 0 at the top.
    observation  a one-hot of the agent's free cell (104 numbers; ``cell_of`` maps an index
                 back to its cell), so mentor's MLPs read it: a linear layer on it is a table.
    actions      Discrete(4): up, down, left, right. A move into a wall stays put. With
                 probability ``slip`` (1/3 in the paper) the move is replaced by one drawn
                 uniformly from the four.
    start        uniform over the free cells other than the goal (the paper's), or ``start``.
    reward       1 on reaching the goal (the episode terminates there), 0 on every other step
                 (the paper's: the discount makes shorter paths worth more). ``step_reward``
                 adds a constant to every step that does not reach the goal (e.g. -0.01), for
                 an undiscounted return that tells a short path from a long one.
    goal moves   ``goals`` lists goal cells; the goal is ``goals[i]`` during this env's episodes
                 ``i * move_goal_after`` to ``(i + 1) * move_goal_after - 1``, the last one for
                 good after that (``move_goal_after`` None: ``goals[0]`` always). The default
                 is the paper's experiment: the east hallway for the first 1,000 episodes, then
                 a cell of the lower right room. An episode counts when it is reset, so the
                 move happens at a reset, never within an episode. ``info["goal_index"]`` says
                 which goal an episode plays. Each env counts its own episodes: a run's
                 validation env moves its goal after its own ``move_goal_after`` episodes
                 (``validation.env.kwargs`` pins it to one goal if wanted).
    time limit   registered with ``max_episode_steps`` 500 (the paper gives none; a random walk
                 needs a few hundred steps).

The whole state (the cell, the goal, the episode counter, the generator) is in mentor's
snapshot protocol, so runs on it resume exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mentor.envs.snapshot import restore_attributes, snapshot_attributes
from mentor.errors import ConfigError

LAYOUT = (
    "wwwwwwwwwwwww",
    "w     w     w",
    "w     w     w",
    "w           w",
    "w     w     w",
    "w     w     w",
    "ww wwww     w",
    "w     www www",
    "w     w     w",
    "w     w     w",
    "w           w",
    "w     w     w",
    "wwwwwwwwwwwww",
)
HALLWAYS = {"north": (3, 6), "west": (6, 2), "east": (7, 9), "south": (10, 6)}
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right
DEFAULT_GOALS = ((7, 9), (10, 9))  # the east hallway, then a cell of the lower right room

FREE_CELLS: tuple[tuple[int, int], ...] = tuple(
    (r, c) for r, row in enumerate(LAYOUT) for c, ch in enumerate(row) if ch == " "
)
CELL_INDEX = {cell: index for index, cell in enumerate(FREE_CELLS)}


def cell_of(index: int) -> tuple[int, int]:
    """The (row, column) of free cell ``index`` (an observation's one-hot position)."""
    return FREE_CELLS[index]


def room_of(cell: tuple[int, int]) -> str:
    """Which room a cell is in (a hallway belongs to none): "hallway" or e.g. "north-west"."""
    if cell in HALLWAYS.values():
        return "hallway"
    r, c = cell
    north = r < 6 if c < 6 else r < 7
    return ("north" if north else "south") + "-" + ("west" if c < 6 else "east")


def _check_cell(cell: Any, what: str) -> tuple[int, int]:
    try:
        r, c = (int(v) for v in cell)
    except (TypeError, ValueError):
        raise ConfigError(
            f"mentor/FourRooms-v0: {what} {cell!r} is not a [row, column] pair"
        ) from None
    if (r, c) not in CELL_INDEX:
        raise ConfigError(
            f"mentor/FourRooms-v0: {what} [{r}, {c}] is a wall or outside the 13 x 13 grid; "
            f"give a free cell, e.g. a hallway: {sorted(HALLWAYS.values())}"
        )
    return r, c


class FourRooms(gym.Env):
    """The four-rooms grid whose goal moves after some episodes (module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    state_attributes = ("cell", "goal", "episodes", "_np_random", "_np_random_seed")

    def __init__(
        self,
        goals: Sequence[Sequence[int]] = DEFAULT_GOALS,
        move_goal_after: int | None = 1000,
        slip: float = 1 / 3,
        step_reward: float = 0.0,
        start: Sequence[int] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not goals:
            raise ConfigError("mentor/FourRooms-v0: goals is empty; give at least one [row, col]")
        self.goals = [_check_cell(g, "goal") for g in goals]
        if move_goal_after is not None and int(move_goal_after) < 1:
            raise ConfigError(
                f"mentor/FourRooms-v0: move_goal_after must be >= 1 episode (or null: the "
                f"goal never moves), got {move_goal_after}"
            )
        if not 0.0 <= float(slip) <= 1.0:
            raise ConfigError(f"mentor/FourRooms-v0: slip is a probability in [0, 1], got {slip}")
        self.move_goal_after = None if move_goal_after is None else int(move_goal_after)
        self.slip = float(slip)
        self.step_reward = float(step_reward)
        self.start = None if start is None else _check_cell(start, "start")
        if self.start is not None and self.start in self.goals:
            raise ConfigError(f"mentor/FourRooms-v0: start {list(self.start)} is a goal")
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (len(FREE_CELLS),), np.float32)
        self.action_space = spaces.Discrete(4)
        self.cell = self.goals[0]
        self.goal = self.goals[0]
        self.episodes = 0  # episodes begun (resets)

    def goal_for(self, episode: int) -> tuple[int, int]:
        """The goal of this env's ``episode``-th episode (counting from 0)."""
        if self.move_goal_after is None:
            return self.goals[0]
        return self.goals[min(episode // self.move_goal_after, len(self.goals) - 1)]

    def _obs(self) -> np.ndarray:
        obs = np.zeros(len(FREE_CELLS), np.float32)
        obs[CELL_INDEX[self.cell]] = 1.0
        return obs

    def _info(self) -> dict[str, Any]:
        return {"cell": CELL_INDEX[self.cell], "goal_index": self.goals.index(self.goal)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.goal = self.goal_for(self.episodes)
        self.episodes += 1
        if self.start is not None and self.start != self.goal:
            self.cell = self.start
        else:
            choices = [cell for cell in FREE_CELLS if cell != self.goal]
            self.cell = choices[int(self.np_random.integers(len(choices)))]
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        action = int(action)
        if self.slip > 0 and self.np_random.random() < self.slip:
            action = int(self.np_random.integers(4))
        dr, dc = MOVES[action]
        target = (self.cell[0] + dr, self.cell[1] + dc)
        if target in CELL_INDEX:  # else a wall: stay put
            self.cell = target
        reached = self.cell == self.goal
        reward = 1.0 if reached else self.step_reward
        return self._obs(), reward, reached, False, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        rows = [list(row.replace(" ", ".")) for row in LAYOUT]
        rows[self.goal[0]][self.goal[1]] = "G"
        rows[self.cell[0]][self.cell[1]] = "A"
        return "\n".join("".join(row) for row in rows)

    def mentor_snapshot(self) -> dict[str, Any]:
        return snapshot_attributes(self, self.state_attributes)

    def mentor_restore(self, snapshot: dict[str, Any]) -> None:
        restore_attributes(self, self.state_attributes, snapshot)
        self.cell, self.goal = tuple(self.cell), tuple(self.goal)
