"""A self-play league: exploiters beside the learner (mentor/selfplay/league.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.errors import ConfigError
from mentor.experiment import build
from mentor.runs.session import training_setup
from mentor.selfplay.league import LEAGUE_EXPLOITER, MAIN_EXPLOITER
from mentor.selfplay.pool import LEARNER

TICTACTOE = "pettingzoo.classic.tictactoe_v3"


def league_experiment(*overrides: str):
    return build(method="ppo", env_id=TICTACTOE, overrides=[
        "env.num_envs=4", "method.num_steps=16", "selfplay.window=4", "selfplay.league={}",
        "logging.progress=false", "logging.tensorboard=false", *overrides,
    ])  # fmt: skip


def do_not_learn(learner, venv, generator) -> dict[str, float]:
    return {}


def test_exploiters_join_by_win_rate_or_timeout_and_start_over_by_role() -> None:
    """A main exploiter past league.win_rate over its window joins the pool frozen and starts
    over from the initial weights and a fresh optimizer; a league exploiter joins at its
    timeout and, with reset_probability 0, goes on from where it was."""
    experiment = league_experiment(
        "selfplay.league.max_updates=3", "selfplay.league.reset_probability=0",
        "selfplay.add_every=100",
    )  # fmt: skip
    with training_setup(experiment) as (venv, _agent):
        league, pool = venv.league, venv.opponents
        main, other = league.exploiters
        assert (main.name, main.role, other.name, other.role) == (
            "me0", MAIN_EXPLOITER, "le0", LEAGUE_EXPLOITER)  # fmt: skip
        initial = {k: v.clone() for k, v in main.learner.policy.state_dict().items()}
        for exploiter in (main, other):  # as if trained: weights and Adam moments
            with torch.no_grad():
                for parameter in exploiter.learner.policy.parameters():
                    parameter.add_(0.5)
            exploiter.learner.optimizer.state[parameter]["step"] = torch.tensor(3.0)
        trained = {k: v.clone() for k, v in main.learner.policy.state_dict().items()}
        main.rival.recent = deque([1.0, 1.0, 0.5, 0.5], maxlen=4)  # 0.75 >= 0.7 over 4 games
        other.rival.recent = deque([1.0, 1.0, 0.0, 0.0], maxlen=4)  # 0.5: only the timeout

        league.update(do_not_learn, 0.0, 100)
        assert pool.names[-1] == "me0-v0" and "le0-v0" not in pool.names
        frozen = pool.opponent("me0-v0").policy.state_dict()
        assert all(torch.equal(frozen[k].cpu(), trained[k]) for k in trained)
        now = main.learner.policy.state_dict()
        assert all(torch.equal(now[k], initial[k]) for k in initial)
        assert not main.learner.optimizer.state and main.restarts == 1
        assert not main.rival.recent  # a new count towards the next entry

        league.update(do_not_learn, 0.0, 200)
        assert "le0-v0" not in pool.names  # 2 updates of 3
        league.update(do_not_learn, 0.0, 300)
        assert pool.names[-1] == "le0-v0" and other.restarts == 0
        assert other.learner.optimizer.state  # it goes on, moments and all
        roles = league.roles()
        assert roles["me0-v0"] == MAIN_EXPLOITER and roles["le0-v0"] == LEAGUE_EXPLOITER
        assert pool.member("le0-v0").owner == "le0" and pool.member("v0").owner == LEARNER
        assert [e for e in league.events if "restarted" in e] == [
            {"step": 100, "joined": "me0-v0", "restarted": "me0"}
        ]


def test_a_league_exploiter_draws_by_pfsp_over_its_own_record_and_holds_its_opponent() -> None:
    """Hand-computed PFSP (power 2) over the league exploiter's own scores, not the learner's;
    a member that leaves the pool during an exploiter's game stays until that game ends; a main
    exploiter always meets the learner."""
    experiment = league_experiment("selfplay.pool_size=1", "selfplay.add_every=100")
    with training_setup(experiment) as (venv, agent):
        pool = venv.opponents
        main, other = (e.rival for e in venv.league.exploiters)
        assert pool.names == ["random", "v0"]
        for name in list(pool.in_play):  # no games in play: only the draws below
            while pool.in_play.get(name):
                pool.release(name)
        pool.member("random").scores.extend([0.0, 0.0])  # the learner's: not the exploiter's
        other.scores["random"] = deque([1.0, 0.0, 0.0, 0.0])  # x = 0.25: (0.75)^2 = 0.5625
        # v0 unplayed: x = 1/2, weight 0.25 -> 0.5625 / 0.8125 and 0.25 / 0.8125
        np.testing.assert_allclose(other.probabilities(), [0.5625 / 0.8125, 0.25 / 0.8125])
        other.scores["random"] = deque([1.0, 1.0])  # beaten every time: weight 0
        assert other.draw() == "v0" and pool.in_play == {"v0": 1}
        pool.add_snapshot(10)  # pool_size 1: v0 leaves the pool while its game is in play
        assert pool.names == ["random", "v1"] and "v0" in pool.retired
        assert pool.opponent("v0") is not None
        other.record("v0", 1.0)  # the game ends: v0 is gone
        assert "v0" not in pool.retired and not pool.in_play
        assert pool.ratings.players["le0"].games == 1
        assert {main.draw() for _ in range(5)} == {LEARNER} and not pool.in_play
        assert main.opponent(LEARNER).policy is agent.policy  # live, not a copy
        assert agent.policy.training  # and left in its training mode


def test_a_league_run_resumes_bitwise_equal_with_its_exploiters(tmp_path) -> None:
    """FAULT-32 for a league: killed after its second checkpoint, with exploiters joining and
    starting over in between, resumed: the main agent's and every exploiter's weights, the
    logs and league.json are the unbroken run's. The main agent met the exploiters' snapshots,
    and every exploiter's games were rated."""
    from test_resume import assert_bitwise_equal, copy_stopped_at, manifest

    overrides = [
        f"output_dir={tmp_path / 'a'}", "seed=3", "stopping.total_steps=1536",
        "checkpoints.every_steps=384", "checkpoints.keep_last=10", "validation.every_steps=768",
        "validation.episodes=6", "evaluation.episodes=6", "method.num_minibatches=2",
        "selfplay.add_every=3", "selfplay.league.max_updates=4",
        "selfplay.league.reset_probability=0.5", "selfplay.league.copies=2", "name=ref",
    ]  # fmt: skip
    reference = mentor.train(league_experiment(*overrides)).run_dir
    run = copy_stopped_at(reference, tmp_path, keep=2)
    mentor.resume(run)
    assert manifest(run)["resumes"][0]["env"] == "restored exactly"
    assert_bitwise_equal(run, reference)
    for piece in ("league_me0", "league_le0", "optimizer_league_le0", "env_league_me0"):
        ours, theirs = (load_file(str(r / "final" / f"{piece}.safetensors"))
                        for r in (run, reference))  # fmt: skip
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), piece
    mine, theirs = (json.loads((r / "league.json").read_text()) for r in (run, reference))
    assert mine == theirs
    events = theirs["league"]["events"]
    assert {"me0-v0", "le0-v0"} <= {e["joined"] for e in events}
    assert any(e.get("restarted") == "me0" for e in events)
    met = [m for m in theirs["members"] if m["owner"] in ("me0", "le0") and m["games"] > 0]
    assert met, theirs["members"]  # the main agent played an exploiter's snapshot
    rated = {row["name"]: row["games"] for row in theirs["ratings"]}
    assert rated["me0"] > 0 and rated["le0"] > 0
    shown = subprocess.run([sys.executable, "-m", "mentor.cli", "league", str(reference)],
                           capture_output=True, text=True)  # fmt: skip
    assert shown.returncode == 0 and "main" in shown.stdout and "exploiter" in shown.stdout


def test_a_league_without_exploiters_is_refused() -> None:
    with pytest.raises(ConfigError, match="no league"):
        league_experiment(
            "selfplay.league.main_exploiters=0", "selfplay.league.league_exploiters=0"
        )
