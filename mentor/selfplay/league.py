"""A league beside self-play's learner: exploiters (AlphaStar, Vinyals et al. 2019).

With ``selfplay.league`` the run's learner is the league's **main agent**: it trains as in
plain self-play, drawing its opponents from the pool by ``selfplay.opponents``. Beside it train
**exploiters**, each a PPO learner of its own (networks, optimizer, reward scaler, env copies),
with its own rule for whom it plays:

    main exploiter (me<i>)    the main agent as it is now (its live weights): it looks for the
                              main agent's current weaknesses
    league exploiter (le<i>)  the whole pool, drawn by PFSP over its own record: it looks for
                              what nobody in the league handles

An exploiter joins the pool as a frozen snapshot (``me0-v0``, ``me0-v1``, ...) when its win rate
over its last ``selfplay.window`` games reaches ``league.win_rate``, or after
``league.max_updates`` of its updates without (AlphaStar's timeout). Then a main exploiter
starts over from the initial weights; a league exploiter does with probability
``league.reset_probability`` (else it goes on). The main agent meets the snapshots in the pool
like any member: it learns to beat what beat it.

After each update of the main agent, every exploiter collects one rollout (``num_steps`` steps
of its ``league.copies`` copies) and makes one PPO update, with the method's settings and
learning rate. These env steps are the league's (``league/steps``), not counted in the run's
steps: the budget and the stop rules are the main agent's, which is what the run saves and
evaluates. Every game rates both players in the pool's ratings (``league.json``: each player's
role). The exploiters' networks, optimizers, envs, records and random streams are in the
checkpoint: a resumed league goes on as the unbroken one.

One main agent, where AlphaStar had three; its main exploiters do not fall back to the main
agent's past snapshots when they cannot win (AlphaStar's rule below a 10% win rate).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from mentor.core.learner import Learner
from mentor.core.ma_env import MultiAgentVecEnv
from mentor.core.optim import set_lr
from mentor.core.schedules import value_at
from mentor.selfplay.opponents import Opponent, PolicyOpponent
from mentor.selfplay.pool import LEARNER, Pool, pfsp_weights
from mentor.selfplay.vec_env import SelfPlayVecEnv

MAIN_EXPLOITER, LEAGUE_EXPLOITER = "main exploiter", "league exploiter"
MAIN_AGENT = "main agent"

# A side learner's turn: (its learner, its envs, its minibatch generator) -> its metrics.
Learn = Callable[[Learner, SelfPlayVecEnv, torch.Generator], dict[str, float]]


class Rival:
    """An exploiter's opponents, the ``Opponents`` of its envs, and its record: a main
    exploiter meets the main agent (``main``, its live policy); a league exploiter draws a pool
    member per game, PFSP over its own scores against each. Every game is rated in the pool's
    ratings, and holds its opponent in the pool while in play."""

    def __init__(
        self, owner: str, role: str, pool: Pool, main: Opponent, window: int, seed: int
    ) -> None:
        self.owner = owner
        self.role = role
        self.pool = pool
        self.main = main
        self.window = window
        self.rng = np.random.default_rng([seed, 2019])  # its draws
        self.scores: dict[str, deque[float]] = {}  # its own, by opponent
        self.recent: deque[float] = deque(maxlen=window)  # since it last joined the pool

    def seed(self, seed: int) -> None:
        """Nothing of its own: its opponents' streams are the pool's and the league's."""

    def probabilities(self) -> np.ndarray:
        """A league exploiter's chance to meet each pool member next: PFSP over its own mean
        scores against each (1/2 before any game), with the pool's ``pfsp_power``."""
        rates = [float(np.mean(self.scores[m.name])) if self.scores.get(m.name) else 0.5
                 for m in self.pool.members]  # fmt: skip
        return pfsp_weights(np.array(rates), self.pool.config.pfsp_power)

    def draw(self) -> str:
        if self.role == MAIN_EXPLOITER:
            return LEARNER
        members = self.pool.members
        name = members[int(self.rng.choice(len(members), p=self.probabilities()))].name
        self.pool.hold(name)
        return name

    def opponent(self, name: str) -> Opponent:
        return self.main if name == LEARNER else self.pool.opponent(name)

    def release(self, name: str) -> None:
        if name != LEARNER:
            self.pool.release(name)

    def record(self, name: str, score: float) -> None:
        self.scores.setdefault(name, deque(maxlen=self.window)).append(score)
        self.recent.append(score)
        self.pool.ratings.play(self.owner, name, score)
        self.release(name)

    def win_rate(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def state(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "scores": {name: list(scores) for name, scores in self.scores.items()},
            "recent": list(self.recent),
        }

    def load(self, values: dict[str, Any]) -> None:
        self.rng.bit_generator.state = values["rng"]
        self.scores = {name: deque(s, maxlen=self.window) for name, s in values["scores"].items()}
        self.recent = deque(values["recent"], maxlen=self.window)


@dataclass
class Exploiter:
    learner: Learner  # its name is the player's: me0, le0, ...
    role: str
    venv: SelfPlayVecEnv
    rival: Rival
    generator: torch.Generator  # its minibatch order
    updates: int = 0  # since it last joined the pool (the timeout's count)
    snapshots: int = 0  # times it joined
    restarts: int = 0  # times it started over from the initial weights

    @property
    def name(self) -> str:
        return self.learner.name


class League:
    """The exploiters of a self-play run (module docstring). ``make_env(copies)`` makes a
    copy of the game's envs for each; ``policy`` is the main agent's, whose weights now are
    every exploiter's initial weights and whose live self the main exploiters play."""

    def __init__(
        self,
        experiment: Any,
        pool: Pool,
        policy: torch.nn.Module,
        make_env: Callable[[int], MultiAgentVecEnv],
    ) -> None:
        selfplay, method = experiment.selfplay, experiment.method
        self.config = config = selfplay.league
        self.pool = pool
        self.method = method
        self.initial = {key: value.detach().clone() for key, value in policy.state_dict().items()}
        self.rng = np.random.default_rng([experiment.seed, 2019])  # the league exploiters' resets
        self.main = PolicyOpponent(policy, LEARNER, live=True)  # the main exploiters' opponent
        self.main.seed(int(self.rng.integers(2**62)))
        self.steps = 0  # env steps of the exploiters' rollouts
        roles = [(MAIN_EXPLOITER, f"me{i}") for i in range(config.main_exploiters)]
        roles += [(LEAGUE_EXPLOITER, f"le{i}") for i in range(config.league_exploiters)]
        self.exploiters: list[Exploiter] = []
        for index, (role, name) in enumerate(roles, start=1):
            pool.ratings.add(name)
            network = copy.deepcopy(policy)
            optimizer = torch.optim.Adam(
                [p for p in network.parameters() if p.requires_grad],
                lr=value_at(method.learning_rate, 0.0), eps=method.adam_eps,
            )  # fmt: skip
            rival = Rival(name, role, pool, self.main, selfplay.window, experiment.seed + index)
            venv = SelfPlayVecEnv(
                make_env(config.copies or experiment.env.num_envs), rival, selfplay.teams
            )
            venv.reset(seed=experiment.seed + 7919 * index)  # its masks and turns known
            learner = Learner.make(
                name, network, optimizer, venv, method.num_steps, method.gamma,
                experiment.env.normalize_reward,
            )  # fmt: skip
            generator = torch.Generator().manual_seed(experiment.seed + 7919 * index)
            self.exploiters.append(Exploiter(learner, role, venv, rival, generator))
        self.events: list[dict[str, Any]] = []  # joins and restarts

    # --- training -----------------------------------------------------------------------------

    def update(self, learn: Learn, progress: float, step: int) -> dict[str, float]:
        """Every exploiter's turn (one rollout and its update), after an update of the main
        agent at ``step`` (``progress``: its share of the run, for the learning rate); those
        whose rule says so join the pool. The exploiters' metrics, ``league/<name>/...``."""
        config = self.config
        rate = value_at(self.method.learning_rate, progress)
        metrics: dict[str, float] = {}
        for exploiter in self.exploiters:
            set_lr([exploiter.learner.optimizer], rate)
            out = learn(exploiter.learner, exploiter.venv, exploiter.generator)
            metrics.update({key.replace("train/", "league/", 1): v for key, v in out.items()})
            games = exploiter.venv.episode_metrics()  # rollout/win_rate, ...: its games'
            for outcome in ("win_rate", "draw_rate", "loss_rate"):
                if (value := games.get(f"rollout/{outcome}")) is not None:
                    metrics[f"league/{exploiter.name}/{outcome}"] = value
            self.steps += exploiter.venv.num_copies * exploiter.learner.storage.num_steps
            exploiter.updates += 1
            won = exploiter.rival.win_rate()
            enough = len(exploiter.rival.recent) >= self.pool.config.window
            if (enough and won is not None and won >= config.win_rate) or (
                exploiter.updates >= config.max_updates
            ):
                self._join(exploiter, step)
        metrics["league/steps"] = float(self.steps)
        return metrics

    def _join(self, exploiter: Exploiter, step: int) -> None:
        """The exploiter's snapshot enters the pool; it starts over if its role says so."""
        name = f"{exploiter.name}-v{exploiter.snapshots}"
        self.pool.enter(name, exploiter.learner.policy, exploiter.name, step)
        exploiter.snapshots += 1
        exploiter.updates = 0
        exploiter.rival.recent.clear()
        event: dict[str, Any] = {"step": step, "joined": name}
        if exploiter.role == MAIN_EXPLOITER or self.rng.random() < self.config.reset_probability:
            exploiter.learner.policy.load_state_dict(self.initial)
            exploiter.learner.optimizer.state.clear()  # Adam's moments start over too
            exploiter.restarts += 1
            event["restarted"] = exploiter.name
        self.events.append(event)

    # --- records --------------------------------------------------------------------------------

    def roles(self) -> dict[str, str]:
        """Every player's role: the main agent's and each exploiter's, and their snapshots'."""
        owners = {LEARNER: MAIN_AGENT, **{e.name: e.role for e in self.exploiters}}
        out = dict(owners)
        for member in [*self.pool.members, *self.pool.retired.values()]:
            if member.owner is not None:
                out[member.name] = owners.get(member.owner, MAIN_AGENT)
        return out

    def summary(self) -> dict[str, Any]:
        """``league.json``'s ``league``: each exploiter's record, the events, every role."""
        return {
            "exploiters": [
                {
                    "name": e.name,
                    "role": e.role,
                    "win_rate": e.rival.win_rate(),
                    "snapshots": e.snapshots,
                    "restarts": e.restarts,
                }
                for e in self.exploiters
            ],
            "steps": self.steps,
            "events": self.events,
            "roles": self.roles(),
            "config": self.config.model_dump(mode="json"),
        }

    # --- checkpoint -----------------------------------------------------------------------------

    def register(self, state: Any, seed: int) -> None:
        """Every piece of the league in the run's training state (a ``runs/state.py:
        TrainState``; its envs restored with ``seed`` where not exactly)."""
        state.add("league", self.save, self.load)
        for exploiter in self.exploiters:
            name, learner = exploiter.name, exploiter.learner
            state.module(f"league_{name}", learner.policy)
            state.optimizer(f"optimizer_league_{name}", learner.optimizer)
            state.stateful(f"reward_scaler_league_{name}", learner.scaler)
            state.torch_rng(f"rng_league_{name}", exploiter.generator)
            venv = exploiter.venv
            restore = partial(_restore, venv, seed=seed)
            state.add(f"env_league_{name}", venv.snapshot, restore)

    def save(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"initial/{key}": value for key, value in self.initial.items()}
        values = {
            "rng": self.rng.bit_generator.state,
            "main": self.main.state(),
            "steps": self.steps,
            "events": self.events,
            "exploiters": {
                e.name: {
                    "updates": e.updates,
                    "snapshots": e.snapshots,
                    "restarts": e.restarts,
                    "rival": e.rival.state(),
                }
                for e in self.exploiters
            },
        }
        return tensors, values

    def load(self, tensors: dict[str, torch.Tensor] | None, values: dict[str, Any]) -> None:
        prefix = "initial/"
        self.initial = {k[len(prefix) :]: v for k, v in (tensors or {}).items()
                        if k.startswith(prefix)}  # fmt: skip
        self.rng.bit_generator.state = values["rng"]
        self.main.load(values["main"])
        self.steps = values["steps"]
        self.events = values["events"]
        for exploiter in self.exploiters:
            saved = values["exploiters"][exploiter.name]
            exploiter.updates = saved["updates"]
            exploiter.snapshots = saved["snapshots"]
            exploiter.restarts = saved["restarts"]
            exploiter.rival.load(saved["rival"])

    def close(self) -> None:
        for exploiter in self.exploiters:
            exploiter.venv.close()


def _restore(venv: SelfPlayVecEnv, tensors: Any, values: dict[str, Any], seed: int) -> None:
    venv.restore(tensors, values, seed)
