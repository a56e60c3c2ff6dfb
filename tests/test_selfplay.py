"""Self-play (issue 17): the pool, its draws and ratings, the learner's seat, matches, resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

import mentor
from mentor.core.ma_env import MultiAgentVecEnv
from mentor.envs.games import connect_four_lookahead, tictactoe_lookahead
from mentor.errors import ConfigError
from mentor.experiment import build
from mentor.experiment.schema import SelfPlayConfig
from mentor.selfplay import against
from mentor.selfplay.match import wilson
from mentor.selfplay.opponents import FunctionOpponent, PolicyOpponent, RandomOpponent
from mentor.selfplay.pool import Pool, pfsp_weights
from mentor.selfplay.ratings import ELO_K, ELO_START, Ratings, elo_expected

TICTACTOE = "pettingzoo.classic.tictactoe_v3"
CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"


def tictactoe_run(folder, seed: int, *overrides: str):
    """PPO's tic-tac-toe preset (self-play, PFSP, random in the pool) on a reduced budget."""
    return mentor.train(build(method="ppo", env_id=TICTACTOE, overrides=[
        f"output_dir={folder}", f"seed={seed}", "env.num_envs=8", "stopping.total_steps=20000",
        "validation.every_steps=10000", "validation.episodes=50", "evaluation.episodes=400",
        "selfplay.validate_against=random", "logging.progress=false",
        "logging.tensorboard=false", *overrides,
    ]))  # fmt: skip


# --- ratings ------------------------------------------------------------------------------------


def test_openskill_updates_a_first_game_as_the_plackett_luce_formula_says() -> None:
    """Weng and Lin's Plackett-Luce update for two new players (mu 25, sigma 25/3, beta
    sigma/2, and openskill's dynamics tau = 25/300 added first: s^2 = sigma^2 + tau^2):
    c^2 = 2 s^2 + 2 beta^2, the winner's mu rises by s^2 / c * (1 - 1/2); a draw moves
    neither mean."""
    ratings = Ratings()
    for name in ("a", "b", "c", "d"):
        ratings.add(name)
    ratings.play("a", "b", 1.0)
    sigma, beta, tau = 25 / 3, 25 / 6, 25 / 300
    s2 = sigma**2 + tau**2
    c = math.sqrt(2 * s2 + 2 * beta**2)
    assert ratings.players["a"].mu == pytest.approx(25 + s2 / c * 0.5, rel=1e-12)
    assert ratings.players["b"].mu == pytest.approx(25 - s2 / c * 0.5, rel=1e-12)
    assert ratings.players["a"].sigma < sigma
    ratings.play("c", "d", 0.5)
    assert ratings.players["c"].mu == pytest.approx(25.0) == ratings.players["d"].mu
    assert ratings.players["c"].sigma < sigma


def test_elo_moves_by_k_times_the_surprise() -> None:
    """A 1400 player beating a 1200 one expected 1/(1 + 10^(-200/400)) = 0.7597 and gains
    16 * (1 - 0.7597) = 3.85; the loser loses as much."""
    assert elo_expected(1400, 1200) == pytest.approx(0.759747, abs=1e-6)
    ratings = Ratings()
    ratings.add("a").elo = 1400.0
    ratings.add("b")
    ratings.play("a", "b", 1.0)
    assert ratings.players["a"].elo == pytest.approx(1400 + ELO_K * (1 - 0.759747), abs=1e-4)
    assert ratings.players["b"].elo == pytest.approx(ELO_START - ELO_K * (1 - 0.759747), abs=1e-4)
    assert (ratings.players["a"].wins, ratings.players["b"].losses) == (1, 1)


# --- the pool -----------------------------------------------------------------------------------


def small_pool(**config) -> Pool:
    policy = torch.nn.Linear(3, 2)
    return Pool(SelfPlayConfig(**config), policy, [RandomOpponent(spaces.Discrete(2))], seed=0)


def test_pfsp_draws_by_one_minus_win_rate_to_the_power() -> None:
    """Win rates 0.9, 0.5 and 0 with p = 2: weights 0.01, 0.25, 1 -> 0.01/1.26, 0.25/1.26,
    1/1.26; every opponent beaten always: uniform."""
    np.testing.assert_allclose(
        pfsp_weights(np.array([0.9, 0.5, 0.0]), 2.0), [0.01 / 1.26, 0.25 / 1.26, 1 / 1.26]
    )
    np.testing.assert_allclose(pfsp_weights(np.array([1.0, 1.0]), 2.0), [0.5, 0.5])
    pool = small_pool(pfsp_power=1.0, window=4)  # members: random, v0
    for score in (1.0, 1.0, 0.5, 1.0):  # 0.875 against random
        pool.in_play["random"] = pool.in_play.get("random", 0) + 1
        pool.record("random", score)
    pool.in_play["v0"] = 1
    pool.record("v0", 0.0)  # lost to v0
    np.testing.assert_allclose(pool.probabilities(), [0.125 / 1.125, 1 / 1.125])
    counts = np.bincount([pool.names.index(pool.draw()) for _ in range(4000)], minlength=2)
    assert abs(counts[0] / 4000 - 0.125 / 1.125) < 0.02  # 4 standard errors: 0.0199


def test_a_baseline_share_splits_the_draws_between_baselines_and_snapshots() -> None:
    """baseline_share 0.3 with PFSP (p = 1) inside each group: baselines random (x = 0.9,
    weight 0.1) and a second random (unplayed, 0.5) share 0.3 as 0.1/0.6 and 0.5/0.6; the
    snapshots v0 (x = 0, weight 1) and v1 (unplayed, 0.5) share 0.7 as 1/1.5 and 0.5/1.5.
    Without the share the four would be drawn 0.1/2.1, 0.5/2.1, 1/2.1 and 0.5/2.1."""
    config = SelfPlayConfig(pfsp_power=1.0, window=10, baseline_share=0.3)
    baselines = [RandomOpponent(spaces.Discrete(2)), RandomOpponent(spaces.Discrete(2), "r2")]
    pool = Pool(config, torch.nn.Linear(3, 2), baselines, seed=0)
    pool.add_snapshot(1)
    assert pool.names == ["random", "r2", "v0", "v1"]
    for name, scores in (("random", [1.0] * 9 + [0.0]), ("v0", [0.0, 0.0])):
        for score in scores:
            pool.hold(name)
            pool.record(name, score)
    expected = [0.3 * 0.1 / 0.6, 0.3 * 0.5 / 0.6, 0.7 * 1 / 1.5, 0.7 * 0.5 / 1.5]
    np.testing.assert_allclose(pool.probabilities(), expected)
    pool.config = SelfPlayConfig(pfsp_power=1.0, window=10)
    np.testing.assert_allclose(pool.probabilities(), np.array([0.1, 0.5, 1.0, 0.5]) / 2.1)
    pool.config = SelfPlayConfig(opponents="latest", baseline_share=0.3)
    np.testing.assert_allclose(pool.probabilities(), [0.15, 0.15, 0.0, 0.7])


def test_the_learner_joins_every_n_updates_or_past_a_win_rate_and_the_oldest_leaves() -> None:
    pool = small_pool(add_every=2, pool_size=2, window=3, opponents="latest")
    assert pool.names == ["random", "v0"]
    assert pool.on_update(100) is None and pool.on_update(200) == "v1"
    pool.in_play["v1"] = 1  # a game against v1 goes on while v1 is replaced
    assert pool.on_update(300) is None and pool.on_update(400) == "v2"
    assert pool.on_update(500) is None and pool.on_update(600) == "v3"
    assert pool.names == ["random", "v2", "v3"] and "v1" in pool.retired
    assert pool.probabilities().tolist() == [0.0, 0.0, 1.0]  # latest
    pool.record("v1", 1.0)  # its game ends: v1 is gone
    assert "v1" not in pool.retired and pool.ratings.players["v1"].games == 1
    rated = small_pool(add_every=None, add_win_rate=0.75, window=4)
    for score in (1.0, 1.0, 1.0):
        rated.in_play["random"] = 1
        rated.record("random", score)
        assert rated.on_update(1) is None  # 3 games: fewer than the window
    rated.in_play["random"] = 1
    rated.record("random", 0.5)  # 3.5 / 4 = 0.875 >= 0.75
    assert rated.on_update(2) == "v1" and rated.win_rate() is None  # the count starts again
    assert rated.ratings.players["v1"].mu == rated.ratings.players["learner"].mu


def test_a_snapshot_is_frozen_at_the_learners_weights_of_its_update() -> None:
    pool = small_pool()
    before = pool.policy.weight.detach().clone()
    with torch.no_grad():
        pool.policy.weight.add_(1.0)
    frozen = pool.opponent("v0")
    assert isinstance(frozen, PolicyOpponent)
    torch.testing.assert_close(frozen.policy.weight, before)
    assert not frozen.policy.weight.requires_grad


# --- opponents and masks ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=7, max_size=7).filter(any), min_size=1,
                max_size=12), st.integers(0, 2**31))  # fmt: skip
def test_masked_moves_are_never_played_by_any_opponent(rows: list, seed: int) -> None:
    """Random masks (each allowing something): the random player, a sampling policy and the
    heuristic choose only allowed moves."""
    from mentor.core.networks import ActorCritic
    from mentor.experiment.schema import NetworkConfig

    masks = np.array(rows, dtype=bool)
    obs_space = spaces.Box(-1, 1, (84,), np.float32)
    torch.manual_seed(seed % 1000)
    policy = ActorCritic(obs_space, spaces.Discrete(7), NetworkConfig(hidden_sizes=[8]))
    random_player = RandomOpponent(spaces.Discrete(7))
    sampler = PolicyOpponent(policy, "p")
    heuristic = FunctionOpponent(connect_four_lookahead, "h")
    for opponent in (random_player, sampler, heuristic):
        opponent.seed(seed)
    boards = [{"observation": np.zeros((6, 7, 2), np.int8), "action_mask": m.astype(np.int8)}
              for m in masks]  # fmt: skip
    encoded = np.zeros((len(masks), 84), np.float32)
    for opponent in (random_player, sampler, heuristic):
        actions = np.asarray(opponent.act(encoded, masks, boards))
        assert masks[np.arange(len(masks)), actions].all(), (opponent.name, actions)


def test_the_heuristics_win_when_they_can_and_block_when_they_must() -> None:
    board = np.zeros((6, 7, 2), np.int8)
    board[5, 0:3, 1] = 1  # the opponent threatens the bottom row at column 3
    board[3:6, 6, 0] = 1  # three of mine at the bottom of column 6
    obs = {"observation": board, "action_mask": np.ones(7, np.int8)}
    assert connect_four_lookahead(obs, np.random.default_rng(0)) == 6  # win first
    board[3, 6, 0] = 0
    assert connect_four_lookahead(obs, np.random.default_rng(0)) == 3  # then block
    ttt = np.zeros((3, 3, 2), np.int8)
    ttt[0, 0, 1] = ttt[0, 1, 1] = 1  # the opponent threatens square 2
    mask = np.ones(9, np.int8)
    mask[[0, 1]] = 0
    assert tictactoe_lookahead({"observation": ttt, "action_mask": mask}) == 2


# --- the learner's seat ---------------------------------------------------------------------------


def test_the_learner_moves_first_in_half_its_games_and_scores_each_game() -> None:
    """Two random players through the wrapper: the learner's seat alternates per copy and per
    game, the outcomes are one-hot and agree with the learner's return (tic-tac-toe's 1, 0
    or -1)."""
    inner = MultiAgentVecEnv.make(TICTACTOE, {}, 4)
    venv = against(inner, RandomOpponent(spaces.Discrete(9)))
    rng = np.random.default_rng(0)
    obs = venv.reset(seed=0)
    assert venv.waiting is not None and obs.shape == (4, 9 * 2 + 2)
    episodes = []
    while len(episodes) < 200:
        mask = venv.action_mask
        assert (mask[~venv.needs_reset].any(axis=1)).all()  # the learner's turn: moves allowed
        venv.step(np.where(mask, rng.random(mask.shape), -1).argmax(1))
        episodes += venv.pop_episodes()
    seats = np.array([e.info["seat"] for e in episodes])
    assert abs(seats.mean() - 0.5) <= 0.05
    for e in episodes:
        assert e.info["win"] + e.info["draw"] + e.info["loss"] == 1.0
        assert e.ret == e.info["win"] - e.info["loss"]  # tic-tac-toe pays 1, 0 or -1
    first = np.mean([e.info["win"] for e in episodes if e.info["seat"] == 0])
    second = np.mean([e.info["win"] for e in episodes if e.info["seat"] == 1])
    assert first > second  # random tic-tac-toe favours the first player (0.58 vs 0.29)


def test_wilson_intervals_are_the_proportions_a_score_test_does_not_reject() -> None:
    """Each Wilson bound p0 solves |p - p0| = z sqrt(p0 (1 - p0) / n) (the score test at
    z = 1.96); 970 of 1000 gives [0.9575, 0.9789]; 0 of 10 gives [0, z^2 / (n + z^2)]."""
    z = 1.96
    for successes, n in ((970, 1000), (3, 7), (500, 1000)):
        p = successes / n
        for bound in wilson(successes, n):
            assert abs(p - bound) == pytest.approx(z * math.sqrt(bound * (1 - bound) / n))
    assert wilson(970, 1000) == pytest.approx((0.95750, 0.97891), abs=1e-5)
    assert wilson(0, 10) == pytest.approx((0.0, z**2 / (10 + z**2)))


# --- training ------------------------------------------------------------------------------------


@pytest.mark.learning
def test_a_self_play_agent_beats_random_at_tictactoe(tmp_path) -> None:
    """20,000 env steps of PPO's tic-tac-toe preset, then 400 games against the random player,
    first move alternating. Two random players: the learner's seat wins 43.5% (58% first, 29%
    second)."""
    result = tictactoe_run(tmp_path, 0)
    wins = result.evaluation.info["win"]
    # Seeds 0-9 (benchmarks/seed_distributions.py selfplay_tictactoe): min 0.695, median 0.715,
    # max 0.792. Random play's 0.435 has a 95% upper bound of 0.485 over 400 games, so 0.60 is
    # far above it, with 0.095 of margin below the worst seed.
    assert wins >= 0.60, result.evaluation
    league = json.loads((result.run_dir / "league.json").read_text())
    assert [m["name"] for m in league["members"]][:2] == ["random", "v0"]
    assert len(league["members"]) >= 3 and league["ratings"][0]["games"] > 0
    shown = subprocess.run([sys.executable, "-m", "mentor.cli", "league", str(result.run_dir)],
                           capture_output=True, text=True)  # fmt: skip
    assert shown.returncode == 0 and "learner" in shown.stdout and "random" in shown.stdout
    assert (result.run_dir / "league.png").stat().st_size > 10_000


def test_a_self_play_run_resumes_bitwise_equal_with_its_pool(tmp_path) -> None:
    """FAULT-32: killed after its second checkpoint (games and pool entries in between),
    resumed: the same weights, logs and pool (members, ratings, draws) as the unbroken run."""
    from test_resume import assert_bitwise_equal, copy_stopped_at, manifest

    overrides = ["selfplay.add_every=2", "selfplay.baselines=[random,"
                 "mentor.envs.games:tictactoe_lookahead]", "env.num_envs=4",
                 "method.num_steps=32", "stopping.total_steps=2048",
                 "checkpoints.every_steps=512", "checkpoints.keep_last=10",
                 "validation.every_steps=1024", "validation.episodes=10",
                 "evaluation.episodes=10", "method.num_minibatches=2"]  # fmt: skip
    reference = tictactoe_run(tmp_path / "a", 5, *overrides, "name=ref").run_dir
    run = copy_stopped_at(reference, tmp_path, keep=2)
    mentor.resume(run)
    assert manifest(run)["resumes"][0]["env"] == "restored exactly"
    assert_bitwise_equal(run, reference)
    mine, theirs = (json.loads((r / "league.json").read_text()) for r in (run, reference))
    assert mine == theirs and len(mine["members"]) >= 5


# --- bad input ----------------------------------------------------------------------------------


def test_fault_27_an_opponent_for_other_spaces_is_refused_naming_both(tmp_path) -> None:
    """An agent of tic-tac-toe as Connect Four's opponent: ConfigError naming the spaces; from
    the CLI one line, exit 2."""
    from mentor.agent import Agent
    from mentor.selfplay.opponents import make_opponent

    ttt = tictactoe_run(tmp_path, 0, "stopping.total_steps=1024", "evaluation.episodes=0",
                        "validation.every_steps=100000", "name=ttt").run_dir  # fmt: skip
    c4 = tictactoe_run(tmp_path, 0, "stopping.total_steps=1024", "evaluation.episodes=0",
                       "validation.every_steps=100000", f"env.id={CONNECT_FOUR}",
                       "name=c4", "selfplay.validate_against=random").run_dir  # fmt: skip
    with pytest.raises(ConfigError, match=r"observation space .* this env.s is"):
        make_opponent(str(ttt), Agent.load(c4))
    with pytest.raises(ConfigError, match="none of: random"):
        make_opponent(str(tmp_path / "missing"), Agent.load(c4))
    done = subprocess.run(
        [sys.executable, "-m", "mentor.cli", "eval", str(c4), "--opponent", str(ttt)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_selfplay_on_a_single_agent_env_or_with_another_method_is_refused() -> None:
    with pytest.raises(ConfigError, match="single-agent Gymnasium env"):
        mentor.train(build(method="ppo", env_id="CartPole-v1", overrides=["selfplay={}"]))
    with pytest.raises(Exception, match="does not train by self-play"):
        build(method="dqn", env_id=TICTACTOE, overrides=["selfplay={}"])


# --- a person against the agent -------------------------------------------------------------------


def test_mentor_play_takes_typed_moves_and_refuses_what_the_env_forbids(tmp_path) -> None:
    """A scripted person: an illegal move and a word are refused with the moves listed, then
    legal moves until each game ends; the board is drawn as text; q ends the session."""
    from mentor.agent import Agent
    from mentor.selfplay.play import play

    run = tictactoe_run(tmp_path, 0, "stopping.total_steps=1024", "evaluation.episodes=0",
                        "validation.every_steps=100000").run_dir  # fmt: skip
    agent = Agent.load(run)
    said: list[str] = []
    typed = iter(["9", "hello"] + [str(i) for i in range(9)] * 4 + ["q"])
    boards: list[str] = []

    def read(prompt: str) -> str:
        legal = [int(x) for x in prompt.split("(")[1].split(";")[0].split()]
        move = next(typed)
        while move.isdigit() and int(move) < 9 and int(move) not in legal:
            move = next(typed)
        return move

    def say(text: str) -> None:
        said.append(text)
        if text.count("\n") == 2:
            boards.append(text)

    scores = play(agent, seat="second", games=3, read=read, say=say)
    assert any("'9' is not a move you can make now" in line for line in said)
    assert any("'hello' is not a move" in line for line in said)
    assert 1 <= len(scores) <= 3 and all(s in (0.0, 0.5, 1.0) for s in scores)
    assert boards and all(len(b.split()) == 9 for b in boards)  # 3 rows of 3 cells
    assert any("you are player_2" in line for line in said)


def test_mentor_play_on_an_env_without_a_text_or_window_rendering_is_refused(tmp_path) -> None:
    """Beacons renders nothing: one line naming its render modes, exit 2."""
    from mentor.selfplay.play import check_playable

    with pytest.raises(ConfigError, match=r"no text rendering \(render modes: none\)"):
        check_playable("mentor.envs.teams:beacons", {}, window=False)
    with pytest.raises(ConfigError, match="has no pygame window"):
        check_playable("mentor.envs.teams:beacons", {}, window=True)
    assert check_playable(TICTACTOE, {}, window=True) == "human"
    run = mentor.train(build(method="ippo", env_id="mentor.envs.teams:beacons", overrides=[
        f"output_dir={tmp_path}", "stopping.total_steps=256", "env.num_envs=2",
        "method.num_steps=16", "evaluation.episodes=0", "logging.progress=false",
        "logging.tensorboard=false",
    ])).run_dir  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "mentor.cli", "play", str(run)],
                          capture_output=True, text=True, input="q\n")  # fmt: skip
    assert done.returncode == 2 and "no text rendering" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# --- more bad input ------------------------------------------------------------------------------


def test_a_league_of_fewer_than_two_rated_players_is_refused(tmp_path) -> None:
    from mentor.report.league import read_league

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ConfigError, match=r"no league\.json"):
        read_league(run)
    (run / "league.json").write_text(json.dumps({"ratings": [
        {"name": "learner", "games": 0}, {"name": "v0", "games": 0}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="at least two players with games to rate them; 0 played"):
        read_league(run)
    done = subprocess.run([sys.executable, "-m", "mentor.cli", "league", str(run)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_self_play_among_agents_of_other_spaces_needs_their_ids_for_a_policy_per_group(
    tmp_path,
) -> None:
    """Beacons with a scout (spaces of its own): without agent ids no row can find its group's
    policy, refused naming the agents; with them, a policy per group trains."""
    overrides = [f"output_dir={tmp_path}", "stopping.total_steps=256", "env.num_envs=2",
                 "method.num_steps=16", "evaluation.episodes=0", "logging.progress=false",
                 "logging.tensorboard=false", "selfplay.validate_against=random",
                 'env.kwargs={"scout": true, "agents": 2}']  # fmt: skip
    with pytest.raises(ConfigError, match=r"different spaces.*env\.agent_ids=true"):
        overrides += ["selfplay={}", "env.agent_ids=false"]
        mentor.train(build(method="ppo", env_id="mentor.envs.teams:beacons", overrides=overrides))
    overrides[-1] = "env.agent_ids=true"
    result = mentor.train(build(method="ppo", env_id="mentor.envs.teams:beacons",
                                overrides=[*overrides, "name=ok"]))  # fmt: skip
    assert result.stop_reason.startswith("budget")
    assert result.agent.policy.groups is not None


# --- teams ---------------------------------------------------------------------------------------


def test_a_team_side_holds_its_agents_rows_and_wins_by_the_team_mean() -> None:
    """Beacons of 4 agents in two teams of 2: the learner holds 2 rows per copy, its side
    alternating between games; following the beacons (8 per agent) beats random play (about 4)
    in every game. Teams of 2 and 1 cannot alternate: each copy keeps its side."""
    inner = MultiAgentVecEnv.make("mentor.envs.teams:beacons", {"agents": 4}, 3)
    teams = [["agent_0", "agent_1"], ["agent_2", "agent_3"]]
    venv = against(inner, RandomOpponent(spaces.Discrete(2)), teams)
    obs = venv.reset(seed=0)
    assert venv.num_envs == 6 and obs.shape == (6, 2 + 4)
    first = venv.rows.copy()
    np.testing.assert_array_equal(first, [0, 1, 6, 7, 8, 9])  # copy 1 holds the second team
    episodes = []
    while len(episodes) < 12:
        obs, *_ = venv.step((obs[:, 0] > 0).astype(np.int64))
        episodes += venv.pop_episodes()
    assert all(e.info["win"] == 1.0 and e.ret == 8.0 for e in episodes)
    assert {e.info["seat"] for e in episodes} == {0.0, 1.0}
    venv.close()
    three = MultiAgentVecEnv.make("mentor.envs.teams:beacons", {"agents": 3}, 3)
    uneven = against(
        three, RandomOpponent(spaces.Discrete(2)), [["agent_0", "agent_1"], ["agent_2"]]
    )
    uneven.reset(seed=0)
    assert uneven.num_envs == 2 + 1 + 2 and not uneven.alternate
    for _ in range(20):
        uneven.step(np.zeros(5, np.int64))
    np.testing.assert_array_equal(uneven.seats, [0, 1, 0])
    uneven.close()


def test_teams_must_hold_every_agent_once() -> None:
    from mentor.selfplay.vec_env import sides_of

    agents = ("a", "b", "c")
    assert sides_of(agents, None) == [[0], [1], [2]]
    assert sides_of(agents, [["c"], ["a", "b"]]) == [[2], [0, 1]]
    with pytest.raises(ConfigError, match=r"missing \['c'\]"):
        sides_of(agents, [["a"], ["b"]])
    with pytest.raises(ConfigError, match=r"unknown \['d'\]"):
        sides_of(agents, [["a", "b"], ["c", "d"]])
    with pytest.raises(ConfigError, match=r"twice \['a'\]"):
        sides_of(agents, [["a", "b"], ["c", "a"]])
    with pytest.raises(ConfigError, match="at least two teams"):
        sides_of(agents, [["a", "b", "c"]])


def test_self_play_of_predators_against_prey_trains_a_policy_per_side(tmp_path) -> None:
    """mpe2's simple_tag, three adversaries against one runner (spaces of their own): the
    learner holds the adversaries in even copies and the runner in odd ones (sides of several
    sizes stay with their copy), one set of parameters per space group; it trains and evaluates
    against random play, per side."""
    from mentor.agent import Agent
    from mentor.selfplay.match import play_match
    from mentor.selfplay.opponents import make_opponent

    teams = '[["adversary_0", "adversary_1", "adversary_2"], ["agent_0"]]'
    result = mentor.train(build(method="ppo", env_id="mpe2.simple_tag_v3", overrides=[
        f"output_dir={tmp_path}", "env.num_envs=4", "method.num_steps=25",
        "stopping.total_steps=400", 'env.kwargs={"max_cycles": 25}', "selfplay={}",
        f"selfplay.teams={teams}", "evaluation.episodes=4", "validation.episodes=4",
        "validation.every_steps=400", "logging.progress=false", "logging.tensorboard=false",
    ]))  # fmt: skip
    assert result.stop_reason.startswith("budget")
    agent = Agent.load(result.run_dir)
    assert agent.policy.groups is not None  # adversaries and runner: parameters of their own
    match = play_match(agent, make_opponent("random", agent), games=8, num_envs=4)
    assert set(match.by_seat) == {"adversary_0+adversary_1+adversary_2", "agent_0"}
    assert match.games == 8


def test_a_board_cnn_reads_the_board_from_a_row_and_leaves_the_agent_index_beside_it() -> None:
    """agent.network.kind cnn on Connect Four: the (6, 7, 2) planes start the row, the agent's
    one-hot follows; the BoardCNN's features are its convolutions of the board (checked against
    the same convolutions applied to the board itself), then the index unchanged."""
    from mentor.agent import Agent
    from mentor.core.networks import BoardCNN
    from mentor.envs.spaces import board_planes

    venv = MultiAgentVecEnv.make(CONNECT_FOUR, {}, 2)
    assert board_planes(venv.observation_space) == (0, 6, 7, 2)
    experiment = build(method="ppo", env_id=CONNECT_FOUR, overrides=["agent.network.kind=cnn"])
    agent = Agent.build(experiment, venv.observation_space, venv.action_space, venv.agents_spec)
    cnn = agent.policy.cnn
    assert isinstance(cnn, BoardCNN)
    rows = torch.from_numpy(venv.reset(seed=0))
    rows[:, 5 * 14 + 3 * 2] = 1.0  # a piece of one's own at row 5, column 3
    boards = rows[:, :84].view(-1, 6, 7, 2).permute(0, 3, 1, 2)
    features = cnn(rows)
    torch.testing.assert_close(features[:, :-2], cnn.convs(boards))
    torch.testing.assert_close(features[:, -2:], rows[:, -2:])
    venv.close()
