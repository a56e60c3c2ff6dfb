"""The opponent pool of a self-play run: who is in it, who plays whom, and the ratings.

Members are snapshots of the learner (``v0`` the initial policy, then ``v1``, ``v2`` ...) and
the fixed baselines of ``selfplay.baselines``. The experiment's ``selfplay`` section rules:

- **entry**: the learner enters as a new snapshot every ``add_every`` updates, or when its win
  rate over its last ``window`` games against the pool reaches ``add_win_rate`` (then the count
  starts again: at least ``window`` new games before the next entry). Past ``pool_size``
  snapshots, the oldest leaves (baselines stay).
- **draws**: each game's opponent is drawn when the previous game of that env copy ends:
  ``latest`` (the newest snapshot), ``uniform``, or ``pfsp`` (prioritized fictitious
  self-play, Vinyals et al. 2019): member m with probability proportional to
  ``(1 - x_m)^p``, ``x_m`` the learner's mean score against m over their last ``window``
  games (win 1, draw 1/2, loss 0; 1/2 before any game), uniform when every weight is 0.
  With ``baseline_share``, that share of the games goes to the baselines (drawn among them
  by the rule; ``latest`` among baselines: uniformly) and the rest to the snapshots: twenty
  snapshots near 1/2 would otherwise leave a baseline the learner beats almost no games.
- **ratings** (``selfplay/ratings.py``): every game rates the learner and its opponent.

Its state (members, their weights, records, ratings, the draw generator) is one component of
the checkpoint, so a resumed run draws the same opponents as the unbroken one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from mentor.errors import CheckpointError
from mentor.experiment.schema import SelfPlayConfig
from mentor.selfplay.opponents import Opponent, PolicyOpponent, snapshot
from mentor.selfplay.ratings import Ratings

LEARNER = "learner"


@dataclass
class Member:
    name: str
    opponent: Opponent
    owner: str | None  # whose past self (the learner, an exploiter): a snapshot; None: baseline
    added: int  # the step it entered at
    scores: deque[float] = field(default_factory=deque)  # the learner's, latest games

    @property
    def snapshot(self) -> bool:
        """A frozen past policy (its weights in the checkpoint), not a fixed baseline."""
        return self.owner is not None

    def win_rate(self) -> float:
        return float(np.mean(self.scores)) if self.scores else 0.5


def pfsp_weights(win_rates: np.ndarray, power: float) -> np.ndarray:
    """PFSP's draw probabilities, ``(1 - x)^p`` normalized; uniform when all are 0."""
    weights = (1.0 - np.asarray(win_rates, dtype=np.float64)) ** power
    total = weights.sum()
    if total <= 0:
        return np.full(len(weights), 1.0 / len(weights))
    return weights / total


class Pool:
    """The members and their games (module docstring). ``baselines`` are the fixed members,
    made already; ``policy`` is the learner's network, whose snapshots join."""

    def __init__(
        self, config: SelfPlayConfig, policy: torch.nn.Module, baselines: list[Opponent], seed: int
    ) -> None:
        self.config = config
        self.policy = policy
        self.rng = np.random.default_rng([seed, 2017])  # draws: its own stream
        self.ratings = Ratings()
        self.ratings.add(LEARNER)
        self.members: list[Member] = []  # those that can be drawn
        self.retired: dict[str, Member] = {}  # left the pool, with games still in play
        self.in_play: dict[str, int] = {}  # games drawn and not yet ended, by member
        for opponent in baselines:
            self._join(Member(opponent.name, opponent, None, 0))
            self.seed_member(self.members[-1])
        self.snapshots_made = 0
        self.updates_since = 0  # since the last entry
        self.recent: deque[float] = deque(maxlen=config.window)  # the learner's, every member
        self.history: list[dict[str, Any]] = []  # ratings over training (the report's plot)
        self.events: list[dict[str, Any]] = []  # entries and departures
        self.add_snapshot(0)

    # --- members ------------------------------------------------------------------------------

    def _join(self, member: Member) -> None:
        member.scores = deque(member.scores, maxlen=self.config.window)
        self.members.append(member)
        if member.name not in self.ratings.players:
            self.ratings.add(member.name, like=member.owner)

    def add_snapshot(self, step: int) -> Member:
        """The learner as it is now joins, as ``v<n>``."""
        name = f"v{self.snapshots_made}"
        self.snapshots_made += 1
        member = self.enter(name, self.policy, LEARNER, step)
        self.updates_since = 0
        self.recent.clear()
        return member

    def enter(self, name: str, policy: torch.nn.Module, owner: str, step: int) -> Member:
        """``policy`` as it is now joins as ``name``, a snapshot of ``owner`` (rated from its
        owner's ratings); past ``pool_size`` snapshots, the oldest leaves."""
        self.seed_member(member := Member(name, snapshot(policy, name), owner, step))
        self._join(member)
        self.events.append({"step": step, "joined": name})
        own = [m for m in self.members if m.snapshot]
        if len(own) > self.config.pool_size:
            self.members.remove(oldest := own[0])
            self.events.append({"step": step, "left": oldest.name})
            if self.in_play.get(oldest.name):  # its games in progress end with it
                self.retired[oldest.name] = oldest
        return member

    def seed_member(self, member: Member) -> None:
        member.opponent.seed(int(self.rng.integers(2**62)))

    def seed(self, seed: int) -> None:
        """Restart every member's random stream from ``seed`` (the envs' reset with a seed)."""
        for index, member in enumerate(self.members):
            member.opponent.seed(seed + 7919 * index)

    @property
    def names(self) -> list[str]:
        return [member.name for member in self.members]

    # --- draws and games --------------------------------------------------------------------

    def probabilities(self) -> np.ndarray:
        """Each member's chance to be the next game's opponent: by ``opponents`` over all
        members, or with ``baseline_share`` that share over the baselines (``latest``:
        uniformly) and the rest over the snapshots."""
        share = self.config.baseline_share
        fixed = np.array([not member.snapshot for member in self.members])
        if share is None or fixed.all() or not fixed.any():
            return self._by_rule(self.members)
        baselines = [member for member in self.members if not member.snapshot]
        snapshots = [member for member in self.members if member.snapshot]
        out = np.zeros(len(self.members))
        out[fixed] = share * self._by_rule(baselines)
        out[~fixed] = (1 - share) * self._by_rule(snapshots)
        return out

    def _by_rule(self, members: list[Member]) -> np.ndarray:
        n = len(members)
        if self.config.opponents == "latest":
            own = [i for i, member in enumerate(members) if member.snapshot]
            return np.eye(n)[max(own)] if own else np.full(n, 1.0 / n)
        if self.config.opponents == "uniform":
            return np.full(n, 1.0 / n)
        rates = np.array([member.win_rate() for member in members])
        return pfsp_weights(rates, self.config.pfsp_power)

    def draw(self) -> str:
        """The next game's opponent (its name); the game is in play until recorded."""
        name = self.members[int(self.rng.choice(len(self.members), p=self.probabilities()))].name
        self.hold(name)
        return name

    def hold(self, name: str) -> None:
        """A game against ``name`` begins (the learner's, or an exploiter's): while it is in
        play, ``name`` stays, even if it leaves the pool."""
        self.in_play[name] = self.in_play.get(name, 0) + 1

    def member(self, name: str) -> Member:
        found = next((m for m in self.members if m.name == name), None)
        return found if found is not None else self.retired[name]

    def opponent(self, name: str) -> Opponent:
        return self.member(name).opponent

    def release(self, name: str) -> None:
        """A game drawn against ``name`` ends unplayed (the envs were reset)."""
        self.in_play[name] -= 1
        if not self.in_play[name]:
            del self.in_play[name]
            self.retired.pop(name, None)

    def record(self, name: str, score: float) -> None:
        """A game between the learner and ``name`` ended with the learner's ``score``."""
        member = self.member(name)
        member.scores.append(score)
        self.recent.append(score)
        self.ratings.play(LEARNER, member.name, score)
        self.release(name)

    def win_rate(self) -> float | None:
        """The learner's mean score over its last ``window`` games (None before any)."""
        return float(np.mean(self.recent)) if self.recent else None

    def on_update(self, step: int) -> str | None:
        """After an update: the learner joins when a rule says so; the name it joins as."""
        self.updates_since += 1
        learner = self.ratings.players[LEARNER]
        self.history.append({"step": step, "mu": learner.mu, "sigma": learner.sigma,
                             "elo": learner.elo})  # fmt: skip
        cfg = self.config
        due = cfg.add_every is not None and self.updates_since >= cfg.add_every
        rate = self.win_rate()
        good = (
            cfg.add_win_rate is not None
            and len(self.recent) >= cfg.window
            and rate is not None
            and rate >= cfg.add_win_rate
        )
        if due or good:
            return self.add_snapshot(step).name
        return None

    def metrics(self) -> dict[str, float]:
        learner = self.ratings.players[LEARNER]
        out = {
            "selfplay/pool_size": float(len(self.members)),
            "selfplay/learner_mu": learner.mu,
            "selfplay/learner_ordinal": learner.ordinal,
            "selfplay/learner_elo": learner.elo,
        }
        if (rate := self.win_rate()) is not None:
            out["selfplay/win_rate"] = rate
        return out

    def summary(self) -> dict[str, Any]:
        """What ``league.json`` holds: the members, the ratings table, events and history."""
        return {
            "members": [
                {
                    "name": m.name,
                    "snapshot": m.snapshot,
                    "owner": m.owner,
                    "added": m.added,
                    "win_rate": m.win_rate(),
                    "games": len(m.scores),
                }
                for m in self.members
            ],
            "ratings": self.ratings.table(),
            "events": self.events,
            "history": self.history,
            "config": self.config.model_dump(mode="json"),
        }

    # --- checkpoint ---------------------------------------------------------------------------

    def save(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        members = []
        for member in [*self.members, *self.retired.values()]:
            entry: dict[str, Any] = {"name": member.name, "snapshot": member.snapshot,
                                     "owner": member.owner, "added": member.added,
                                     "scores": list(member.scores),
                                     "retired": member.name in self.retired}  # fmt: skip
            opponent = member.opponent
            if member.snapshot:
                assert isinstance(opponent, PolicyOpponent)
                for key, value in opponent.policy.state_dict().items():
                    tensors[f"{member.name}/{key}"] = value.detach().clone()
            state = getattr(opponent, "state", None)
            if state is not None:
                entry["opponent"] = state()
            members.append(entry)
        values = {
            "members": members,
            "ratings": self.ratings.to_json(),
            "rng": self.rng.bit_generator.state,
            "snapshots_made": self.snapshots_made,
            "updates_since": self.updates_since,
            "recent": list(self.recent),
            "in_play": self.in_play,
            "history": self.history,
            "events": self.events,
        }
        return tensors, values

    def load(self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any]) -> None:
        baselines = {m.name: m for m in self.members if not m.snapshot}
        members = []
        for entry in values["members"]:
            name = entry["name"]
            if entry["snapshot"]:
                prefix = f"{name}/"
                weights = {k[len(prefix) :]: v for k, v in (tensors or {}).items()
                           if k.startswith(prefix)}  # fmt: skip
                opponent: Opponent = snapshot(self.policy, name)
                assert isinstance(opponent, PolicyOpponent)
                opponent.policy.load_state_dict(weights)
            elif name in baselines:
                opponent = baselines[name].opponent
            else:
                raise CheckpointError(
                    f"the checkpoint's pool has baseline '{name}', which selfplay.baselines no "
                    f"longer names ({', '.join(baselines) or 'none'}): resume with it listed"
                )
            if "opponent" in entry:
                opponent.load(entry["opponent"])  # type: ignore[attr-defined]
            scores = deque(entry["scores"], maxlen=self.config.window)
            owner = entry.get("owner", LEARNER if entry["snapshot"] else None)
            members.append(Member(name, opponent, owner, entry["added"], scores))
        self.members = [m for m, e in zip(members, values["members"], strict=True)
                        if not e["retired"]]  # fmt: skip
        self.retired = {m.name: m for m, e in zip(members, values["members"], strict=True)
                        if e["retired"]}  # fmt: skip
        self.in_play = dict(values["in_play"])
        self.ratings.load(values["ratings"])
        self.rng.bit_generator.state = values["rng"]
        self.snapshots_made = values["snapshots_made"]
        self.updates_since = values["updates_since"]
        self.recent = deque(values["recent"], maxlen=self.config.window)
        self.history = values["history"]
        self.events = values["events"]


class Fixed:
    """One opponent for every game (validation, ``mentor eval --opponent``), nobody rated."""

    def __init__(self, opponent: Opponent) -> None:
        self.members = [Member(opponent.name, opponent, None, 0)]

    def seed(self, seed: int) -> None:
        self.members[0].opponent.seed(seed)

    def draw(self) -> str:
        return self.members[0].name

    def opponent(self, name: str) -> Opponent:
        return self.members[0].opponent

    def release(self, name: str) -> None:
        pass

    def record(self, name: str, score: float) -> None:
        pass


class Opponents(Protocol):
    """Who holds the other sides of a ``SelfPlayVecEnv``'s games: the pool, one ``Fixed``
    opponent, or a league exploiter's ``Rival`` (``league.py``)."""

    def seed(self, seed: int) -> None: ...

    def draw(self) -> str:
        """The next game's opponent (a name); in play until released or recorded."""

    def opponent(self, name: str) -> Opponent: ...

    def release(self, name: str) -> None: ...

    def record(self, name: str, score: float) -> None: ...
