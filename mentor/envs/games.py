"""Scripted players for PettingZoo's classic board games: baselines for self-play and evaluation.

Each takes one agent's observation as the env gives it, ``{"observation", "action_mask"}``
(the board as planes: the player's own pieces, then the opponent's), and ``rng``, a NumPy
generator for its random choices, and returns a move the mask allows. Name one as an opponent
(``mentor eval RUN --opponent mentor.envs.games:connect_four_lookahead``) or a pool baseline
(``selfplay.baselines``).

- ``connect_four_lookahead``: one-step lookahead: win now if a move wins, else block a column
  where the opponent would win next, else a random allowed move.
- ``tictactoe_lookahead``: the same rule on tic-tac-toe's 3x3 board.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Connect Four (pettingzoo.classic.connect_four_v3): 6 rows (0 the top) by 7 columns; a move
# drops a piece to the lowest empty row of its column.
ROWS, COLUMNS = 6, 7


def connect_four_lookahead(obs: dict[str, Any], rng: np.random.Generator | None = None) -> int:
    mine, theirs = (np.asarray(obs["observation"])[:, :, k].astype(bool) for k in (0, 1))
    allowed = np.flatnonzero(np.asarray(obs["action_mask"]))
    for pieces in (mine, theirs):  # win if you can, then block if you must
        for column in allowed:
            row = _landing_row(mine | theirs, int(column))
            if row is not None and _four_through(pieces, row, int(column)):
                return int(column)
    return int((rng or np.random.default_rng()).choice(allowed))


def _landing_row(filled: np.ndarray, column: int) -> int | None:
    empty = np.flatnonzero(~filled[:, column])
    return int(empty[-1]) if empty.size else None


def _four_through(pieces: np.ndarray, row: int, column: int) -> bool:
    """Whether a piece at (row, column) would complete four in a line with ``pieces``."""
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        count = 1
        for sign in (1, -1):
            r, c = row + sign * dr, column + sign * dc
            while 0 <= r < ROWS and 0 <= c < COLUMNS and pieces[r, c]:
                count += 1
                r, c = r + sign * dr, c + sign * dc
        if count >= 4:
            return True
    return False


# Tic-tac-toe (pettingzoo.classic.tictactoe_v3): move i marks square i of the row-major 3x3 board.
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def tictactoe_lookahead(obs: dict[str, Any], rng: np.random.Generator | None = None) -> int:
    board = np.asarray(obs["observation"])
    mine, theirs = board[:, :, 0].reshape(-1), board[:, :, 1].reshape(-1)
    allowed = np.flatnonzero(np.asarray(obs["action_mask"]))
    for pieces in (mine, theirs):
        for square in allowed:
            if any(square in line and sum(pieces[i] for i in line if i != square) == 2
                   for line in LINES):  # fmt: skip
                return int(square)
    return int((rng or np.random.default_rng()).choice(allowed))
