"""``mentor play``: a person against a trained agent, in the terminal or a pygame window.

The person holds one seat (``--as``: an agent's name, ``first`` or ``second``; by default the
seat alternates between games), the agent every other seat, acting as it would in evaluation
(its policy's mode). The board is shown as text: the env's own ``ansi`` rendering where it has
one, else mentor's drawing of a game it knows (Connect Four and tic-tac-toe, from the person's
observation: ``X`` the person's pieces, ``O`` the agent's); with ``--window``, in the env's own
pygame window (``render_mode="human"``) while moves are typed in the terminal. The person types
the number of a move the env allows (the allowed ones are listed); ``q`` ends the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mentor.envs.pettingzoo import make_parallel_env, turn_of
from mentor.errors import ConfigError

# Games mentor draws as text: env id -> the drawing of one agent's observation.
TEXT_BOARDS: dict[str, Callable[[Any], str]] = {}


def _planes(obs: Any) -> tuple[np.ndarray, np.ndarray]:
    board = np.asarray(obs["observation"])
    return board[:, :, 0].astype(bool), board[:, :, 1].astype(bool)


def connect_four_text(obs: Any) -> str:
    mine, theirs = _planes(obs)
    rows = [" ".join("X" if m else "O" if t else "." for m, t in zip(a, b, strict=True))
            for a, b in zip(mine, theirs, strict=True)]  # fmt: skip
    return "\n".join([*rows, " ".join(str(c) for c in range(mine.shape[1]))])


def tictactoe_text(obs: Any) -> str:
    mine, theirs = (p.reshape(-1) for p in _planes(obs))
    cells = ["X" if mine[i] else "O" if theirs[i] else str(i) for i in range(9)]
    return "\n".join(" ".join(cells[r * 3 : r * 3 + 3]) for r in range(3))


TEXT_BOARDS["pettingzoo.classic.connect_four_v3"] = connect_four_text
TEXT_BOARDS["pettingzoo.classic.tictactoe_v3"] = tictactoe_text


def render_modes(env_id: str, kwargs: dict[str, Any]) -> list[str]:
    env = make_parallel_env(env_id, kwargs)
    try:
        return list(env.metadata.get("render_modes", []))
    finally:
        env.close()


def check_playable(env_id: str, kwargs: dict[str, Any], window: bool) -> str:
    """How the game is shown: "ansi", "mentor" (a text board of ours) or "human" (a window);
    ``ConfigError`` naming the env's render modes when none fits."""
    modes = render_modes(env_id, kwargs)
    if window:
        if "human" not in modes:
            raise ConfigError(
                f"mentor play --window: env '{env_id}' has no pygame window (render modes: "
                f"{modes or 'none'}); play in the terminal without --window"
            )
        return "human"
    if "ansi" in modes:
        return "ansi"
    if env_id in TEXT_BOARDS:
        return "mentor"
    raise ConfigError(
        f"mentor play: env '{env_id}' has no text rendering (render modes: {modes or 'none'}) and "
        f"is not a game mentor draws ({', '.join(TEXT_BOARDS)})"
        + ("; try --window" if "human" in modes else "")
    )


def play(
    agent: Any,
    *,
    seat: str | None = None,
    games: int = 1,
    window: bool = False,
    read: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
) -> list[float]:
    """Play ``games`` games of the agent's env against a person (``read`` their moves, ``say``
    the board); returns the person's score per game (1 win, 1/2 draw, 0 loss)."""
    experiment = agent.experiment
    env_id, kwargs = experiment.env.id, dict(experiment.env.kwargs)
    if agent.agents is None:
        raise ConfigError(f"mentor play: the agent was trained on a single-agent env ({env_id})")
    shown = check_playable(env_id, kwargs, window)
    if shown in ("human", "ansi"):
        kwargs["render_mode"] = shown
    agents = list(agent.agents.agents)
    named = {"first": agents[0], "second": agents[-1]}
    if seat is not None and named.get(seat, seat) not in agents:
        raise ConfigError(
            f"mentor play --as '{seat}': the agents are {', '.join(agents)} (or first, second)"
        )
    env = make_parallel_env(env_id, kwargs)
    scores: list[float] = []
    try:
        for game in range(games):
            person = named.get(seat, seat) if seat else agents[game % len(agents)]
            say(f"game {game + 1}: you are {person} ({'X' if shown == 'mentor' else person})")
            score = _one_game(env, agent, person, shown, env_id, read, say)
            if score is None:
                break
            scores.append(score)
            say({1.0: "you win", 0.5: "a draw", 0.0: "the agent wins"}[score])
    finally:
        env.close()
    return scores


def _one_game(
    env: Any, agent: Any, person: str, shown: str, env_id: str,
    read: Callable[[str], str], say: Callable[[str], None],
) -> float | None:  # fmt: skip
    obs, _ = env.reset()
    returns = dict.fromkeys(env.possible_agents, 0.0)
    while env.agents:
        mover = turn_of(env)
        movers = [mover] if mover is not None else list(env.agents)
        actions = {}
        if person in movers:
            own = obs[person]
            if shown == "mentor":
                say(TEXT_BOARDS[env_id](own))
            elif shown == "ansi":
                say(str(env.render()))
            move = _ask(own, env.action_space(person), read, say)
            if move is None:
                return None
            actions[person] = move
        others = {a: obs[a] for a in movers if a != person}
        if others:
            actions.update(agent.act(others))
        for waiting in env.agents:
            actions.setdefault(waiting, 0)  # ignored: not its turn
        obs, rewards, _, _, _ = env.step(actions)
        for name, reward in rewards.items():
            returns[name] += float(reward)
    mine = returns[person]
    best = max(r for name, r in returns.items() if name != person)
    return 1.0 if mine > best else 0.5 if mine == best else 0.0


def _ask(obs: Any, space: Any, read: Callable[[str], str], say: Callable[[str], None]) -> Any:
    mask = obs.get("action_mask") if isinstance(obs, dict) else None
    legal = list(np.flatnonzero(mask)) if mask is not None else list(range(int(space.n)))
    while True:
        text = read(f"your move ({' '.join(map(str, legal))}; q quits): ").strip()
        if text.lower() in ("q", "quit", "exit"):
            return None
        if text.lstrip("-").isdigit() and int(text) in legal:
            return int(text)
        say(f"'{text}' is not a move you can make now; moves: {' '.join(map(str, legal))}")
