"""Ratings of the players of a self-play run, from the games they played.

In self-play the learner's return says little: it wins as often as its opponents let it, and
they improve with it. A rating says how strong each player is against the field. Every game is
one update of two ratings, in the order the games ended (so a resumed run rates as the unbroken
one did):

- OpenSkill's Plackett-Luce model (Weng and Lin 2011, the maintained ``openskill`` package): a
  mean ``mu`` and an uncertainty ``sigma`` per player; ``ordinal = mu - 3 sigma`` ranks them
  conservatively. A draw is two equal ranks.
- Elo (K = 16, start 1200), printed beside it for readers who know it: the expected score
  ``1 / (1 + 10^((R_b - R_a) / 400))``, each rating moved by ``K * (score - expected)``.

A snapshot that enters the pool starts from the learner's ratings of that moment: it is the
learner then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ELO_START = 1200.0
ELO_K = 16.0


@dataclass
class Rating:
    """One player's ratings and record."""

    mu: float
    sigma: float
    elo: float = ELO_START
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def ordinal(self) -> float:
        return self.mu - 3.0 * self.sigma

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rating:
        return cls(**data)


def elo_expected(rating: float, other: float) -> float:
    """The expected score of a player rated ``rating`` against one rated ``other``."""
    return 1.0 / (1.0 + 10.0 ** ((other - rating) / 400.0))


class Ratings:
    """The ratings of every player by name; ``play(a, b, score)`` rates one game (``score``: 1
    a won, 0.5 a draw, 0 b won)."""

    def __init__(self) -> None:
        from openskill.models import PlackettLuce  # the multiagent extra's

        self.model = PlackettLuce()
        self.players: dict[str, Rating] = {}

    def add(self, name: str, like: str | None = None) -> Rating:
        """A new player: a copy of ``like``'s ratings (not its record), else the defaults."""
        if like is not None and like in self.players:
            source = self.players[like]
            rating = Rating(source.mu, source.sigma, source.elo)
        else:
            rating = Rating(self.model.mu, self.model.sigma)
        self.players[name] = rating
        return rating

    def play(self, a: str, b: str, score: float) -> None:
        first, second = self.players[a], self.players[b]
        ranks = [0, 0] if score == 0.5 else ([0, 1] if score > 0.5 else [1, 0])
        [[new_a], [new_b]] = self.model.rate(
            [
                [self.model.rating(first.mu, first.sigma)],
                [self.model.rating(second.mu, second.sigma)],
            ],
            ranks=ranks,
        )
        expected = elo_expected(first.elo, second.elo)
        first.elo += ELO_K * (score - expected)
        second.elo -= ELO_K * (score - expected)
        first.mu, first.sigma = new_a.mu, new_a.sigma
        second.mu, second.sigma = new_b.mu, new_b.sigma
        for player, mine in ((first, score), (second, 1.0 - score)):
            player.games += 1
            player.wins += mine == 1.0
            player.draws += mine == 0.5
            player.losses += mine == 0.0

    def table(self) -> list[dict[str, Any]]:
        """Every player, best first (by ordinal), with its ratings and record."""
        rows = [
            {"name": name, "ordinal": rating.ordinal, **rating.to_json()}
            for name, rating in self.players.items()
        ]
        return sorted(rows, key=lambda row: -row["ordinal"])

    def to_json(self) -> dict[str, Any]:
        return {name: rating.to_json() for name, rating in self.players.items()}

    def load(self, data: dict[str, Any]) -> None:
        self.players = {name: Rating.from_json(values) for name, values in data.items()}
