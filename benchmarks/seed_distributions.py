"""The learning tests against the spread of seeds: each case runs what one learning test runs (the
test file's own run function, so the two cannot drift apart) for seeds 0..N-1 and prints, seed by
seed, the figures the test asserts, then their min, median and max and the worst seeds.

Why: another CPU (its rounding) or any change in the numerics sends the same seed down another
trajectory, as if it were another seed. A learning test with a fixed seed passes on every machine
only if its threshold holds, with a margin, for essentially every seed. Each threshold in those
tests carries a comment with the distribution measured here; after a change to a method, a preset
or the numerics, rerun the cases it touches and check that the thresholds still hold.

    python benchmarks/seed_distributions.py --list
    python benchmarks/seed_distributions.py ppo_cartpole                 # its default seeds
    python benchmarks/seed_distributions.py ppo_cartpole --seeds 20-39   # held-out seeds
    python benchmarks/seed_distributions.py dqn_cartpole --set stopping.total_steps=80000
    python benchmarks/seed_distributions.py --all --json /tmp/seeds.json
    MENTOR_FAST_KERNELS=0 python benchmarks/seed_distributions.py ppo_cartpole  # other numerics

Everything runs in this one process, one run at a time, as the tests do under pytest; ``--set``
adds overrides to the case's runs (cases that are no ``mentor.train`` call refuse it). The
figures are returns, scores and step counts, never seconds, so the machine's load does not move
them (``train s`` is printed for information only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the tests' modules and experts
from common import kernels, table

Figures = dict[str, Any]


@dataclass
class Case:
    """One learning test: ``run(seed, folder, overrides)`` gives the figures it asserts on."""

    name: str
    test: str  # the test's node id (tests/...)
    seeds: int  # how many seeds by default
    key: str  # the figure its threshold is on; the worst seeds are sorted by it
    low_is_bad: bool  # whether low values of ``key`` are the ones that fail
    asserts: str  # what the test asserts, in words
    run: Callable[[int, Path, list[str]], Figures]
    takes_overrides: bool = True


CASES: dict[str, Case] = {}


def case(
    name: str,
    test: str,
    seeds: int,
    key: str,
    asserts: str,
    low_is_bad: bool = True,
    takes_overrides: bool = True,
):
    def register(run: Callable[[int, Path, list[str]], Figures]):
        CASES[name] = Case(name, test, seeds, key, low_is_bad, asserts, run, takes_overrides)
        return run

    return register


def stopped(result: Any) -> Figures:
    """The stop reason's first word, the steps and training seconds of a mentor.Result."""
    return {
        "stop": result.stop_reason.split(":")[0],
        "steps": result.total_steps,
        "train s": result.train_seconds,
    }


def validation_returns(result: Any) -> list[float]:
    return [v["return_mean"] for v in result.validations]


# --- PPO, DQN, SAC, TD3 ------------------------------------------------------------------------


@case(
    "ppo_cartpole",
    "tests/test_ppo.py::test_ppo_solves_cartpole_within_seconds",
    20,
    "eval",
    "stop 'target' (20-episode validation >= 475); 100-episode final evaluation >= 0.9 * 475",
)
def ppo_cartpole(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_ppo

    result = test_ppo.preset_cartpole_run(folder, seed, *overrides)
    return {
        **stopped(result),
        "val at stop": validation_returns(result)[-1],
        "eval": result.evaluation.return_mean,
    }


@case(
    "dqn_bandit",
    "tests/test_dqn.py::test_dqn_finds_the_optimal_policy_of_a_bandit_like_task",
    20,
    "eval",
    "20-episode final evaluation == 16 (every step right)",
)
def dqn_bandit(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_dqn

    result = test_dqn.bandit_run(folder, seed, *overrides)
    return {
        **stopped(result),
        "validations": " ".join(f"{r:.1f}" for r in validation_returns(result)),
        "eval": result.evaluation.return_mean,
    }


@case(
    "dqn_cartpole",
    "tests/test_dqn.py::test_dqn_learns_cartpole_with_its_preset",
    20,
    "eval",
    "100-episode final evaluation >= 150, and >= 0.9 * 475 after stopping at the target",
)
def dqn_cartpole(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_dqn

    result = test_dqn.preset_cartpole_run(folder, seed, *overrides)
    return {
        **stopped(result),
        "best val": max(validation_returns(result)),
        "eval": result.evaluation.return_mean,
    }


def masked_figures(result: Any) -> Figures:
    """The figures of a masked-task run: its evaluation, and the masked actions it took."""
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    return {
        **stopped(result),
        "validations": " ".join(f"{r:.1f}" for r in validation_returns(result)),
        "eval": result.evaluation.return_mean,
        "masked taken": evaluation["info"]["masked_actions"],
    }


@case(
    "ppo_masked",
    "tests/test_masks.py::test_ppo_learns_a_masked_task",
    20,
    "eval",
    "20-episode final evaluation >= 15.5 on MaskedEnv (16: every step matched; uniform over the "
    "allowed actions: 7.5)",
)
def ppo_masked(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_masks

    return masked_figures(test_masks.masked_ppo_run(folder, seed, *overrides))


@case(
    "dqn_masked",
    "tests/test_masks.py::test_dqn_learns_a_masked_task",
    20,
    "eval",
    "20-episode final evaluation >= 15.5 on MaskedEnv (16: every step matched)",
)
def dqn_masked(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_masks

    return masked_figures(test_masks.masked_dqn_run(folder, seed, *overrides))


@case(
    "sac_pendulum",
    "tests/test_sac.py::test_sac_solves_pendulum_within_seconds",
    20,
    "steps",
    "stop 'target' (20-episode validation >= -200) within the budget",
    low_is_bad=False,
)
def sac_pendulum(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_sac

    import mentor

    result = mentor.train(test_sac.preset_pendulum(folder, seed, *overrides))
    return {
        **stopped(result),
        "best val": max(validation_returns(result)),
        "eval": result.evaluation.return_mean,
    }


@case(
    "td3_pendulum",
    "tests/test_td3.py::test_td3_solves_pendulum_with_the_preset_within_seconds",
    20,
    "steps",
    "stop 'target' (20-episode validation >= -200) within the budget",
    low_is_bad=False,
)
def td3_pendulum(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_td3

    import mentor

    result = mentor.train(test_td3.preset_pendulum(folder, seed, *overrides))
    return {
        **stopped(result),
        "best val": max(validation_returns(result)),
        "eval": result.evaluation.return_mean,
    }


# --- GAIL --------------------------------------------------------------------------------------

_cache: dict[str, Any] = {}


def gail_expert_data() -> tuple[Any, Path]:
    """test_gail's ``expert_data`` fixture: 10 episodes of the scripted expert, made once."""
    if "gail" not in _cache:
        from test_gail import cartpole_expert

        from mentor.data.load import save_dataset
        from mentor.data.record import record

        dataset = record(cartpole_expert, "CartPole-v1", None, episodes=10, seed=0)
        folder = Path(tempfile.mkdtemp(prefix="seeds-gail-"))
        _cache["gail"] = dataset, save_dataset(dataset, folder / "cartpole-expert")
    return _cache["gail"]


@case(
    "gail_discriminator",
    "tests/test_gail.py::test_discriminator_separates_expert_from_random_pairs",
    20,
    "min accuracy",
    "both held-out accuracies > 0.9; gail rewards expert > random > 0; airl "
    "rewards expert > 0 > random",
    takes_overrides=False,
)
def gail_discriminator(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_gail

    _, expert_accuracy, random_accuracy, rewards = test_gail.separate(gail_expert_data()[0], seed)
    (gail_expert, gail_random), (airl_expert, airl_random) = rewards["gail"], rewards["airl"]
    return {
        "expert acc": expert_accuracy,
        "random acc": random_accuracy,
        "min accuracy": min(expert_accuracy, random_accuracy),
        "gail reward e": gail_expert,
        "gail reward r": gail_random,
        "airl reward e": airl_expert,
        "airl reward r": airl_random,
        "rewards ordered": gail_expert > gail_random > 0 and airl_expert > 0 > airl_random,
    }


def gail_cartpole(reward: str) -> Callable[[int, Path, list[str]], Figures]:
    def run(seed: int, folder: Path, overrides: list[str]) -> Figures:
        import test_gail

        folder_of_data = gail_expert_data()[1]
        result = test_gail.imitate_the_expert(folder, folder_of_data, reward, seed, *overrides)
        return {
            **stopped(result),
            "best val": max(validation_returns(result)),
            "score": test_gail.cartpole_score(result),
        }

    return run


for _reward in ("gail", "airl"):
    case(
        f"gail_cartpole_{_reward}",
        f"tests/test_gail.py::test_gail_imitates_the_cartpole_expert_from_10_episodes[{_reward}]",
        20,
        "score",
        "final evaluation's score (random 0, expert 1) >= 0.9 (airl: median of seeds 1-3)",
    )(gail_cartpole(_reward))


@case(
    "gail_airl_falling",
    "tests/test_gail.py::test_airl_reward_learns_nothing_from_a_falling_demonstrator",
    20,
    "score",
    "final evaluation's score (random 0, expert 1) < 0.5, from a demonstrator that pushes left",
    low_is_bad=False,
)
def gail_airl_falling(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_gail

    result = test_gail.airl_on_a_falling_demonstrator(folder, seed, *overrides)
    return {
        **stopped(result),
        "best val": max(validation_returns(result)),
        "score": test_gail.cartpole_score(result),
    }


@case(
    "gail_pendulum",
    "tests/test_gail.py::test_gail_imitates_a_td3_pendulum_expert_from_10_episodes",
    10,
    "score",
    "TD3 expert's return > -300; GAIL's score (random -1200 = 0, expert 1) >= 0.5",
)
def gail_pendulum(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_gail

    expert_return, score, result = test_gail.imitate_td3_pendulum(folder, seed, *overrides)
    return {
        **stopped(result),
        "expert": expert_return,
        "best val": max(validation_returns(result)),
        "score": score,
    }


# --- DAgger ------------------------------------------------------------------------------------


@case(
    "dagger_rounds",
    "tests/test_dagger.py::test_dagger_reaches_the_expert_on_cartpole",
    40,
    "score",
    "score >= 0.9 after 3 rounds (and, test_the_dataset_grows_by_the_states_visited"
    "_each_round, the expert's share of round 2's actions < 0.3)",
)
def dagger_rounds(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_dagger

    import mentor

    result = mentor.train(test_dagger.dagger_experiment(folder, f"seed={seed}", *overrides))
    rows = test_dagger.metric_rows(result.run_dir)
    score = (result.evaluation.return_mean - test_dagger.RANDOM_CARTPOLE) / (
        500.0 - test_dagger.RANDOM_CARTPOLE
    )
    return {
        **stopped(result),
        "validations": " ".join(f"{r:.0f}" for r in validation_returns(result)),
        "expert share 2": rows[2]["dagger/expert_action_fraction"],
        "score": score,
    }


@case(
    "dagger_target",
    "tests/test_dagger.py::test_the_target_stops_dagger_between_rounds",
    40,
    "learners",
    "stop 'target' (10-episode validation >= 475) before the last of 5 rounds (< 6 learners)",
    low_is_bad=False,
)
def dagger_target(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_dagger

    result = test_dagger.target_run(folder, seed, *overrides)
    return {
        **stopped(result),
        "learners": len(result.validations),
        "validations": " ".join(f"{r:.0f}" for r in validation_returns(result)),
    }


# --- the command line --------------------------------------------------------------------------


@case(
    "cli_tiny_ppo",
    "tests/test_cli.py::test_train_eval_report_end_to_end",
    20,
    "steps",
    "TINY_TRAIN (2048 steps, validations at 1024 and 2048) runs its whole budget",
    takes_overrides=False,
)
def cli_tiny_ppo(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_cli

    args = list(test_cli.TINY_TRAIN)
    args[args.index("--seed") + 1] = str(seed)
    out = test_cli.invoke(*args, "--output-dir", str(folder))
    assert out.exit_code == 0, out.output
    manifest = json.loads(next(folder.glob("*/manifest.json")).read_text())
    evaluation = json.loads(next(folder.glob("*/evaluation.json")).read_text())
    return {
        "stop": manifest["stop_reason"].split(":")[0],
        "steps": manifest["total_steps"],
        "best val": manifest.get("best_validation_return"),
        "eval": evaluation["return_mean"],
    }


# --- BC ----------------------------------------------------------------------------------------


def bc_demos() -> tuple[Any, Path]:
    """test_bc's ``demos`` fixture, made once."""
    if "bc" not in _cache:
        import test_bc

        _cache["bc"] = test_bc.expert_demos(Path(tempfile.mkdtemp(prefix="seeds-bc-")))
    return _cache["bc"]


@case(
    "bc_cartpole",
    "tests/test_bc.py::test_bc_clones_the_cartpole_expert_fast_into_a_normal_run",
    20,
    "score",
    "score >= 0.95 (20 episodes), stop 'early stop' (within 200 epochs), last val_accuracy "
    "> 0.9, agreement with the expert on 500 of its observations > 0.9",
    takes_overrides=False,
)
def bc_cartpole(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import csv

    import numpy as np
    import test_bc

    import mentor

    dataset, path = bc_demos()
    result = test_bc.clone_cartpole(folder, path, seed)
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    obs = dataset.observations[:500]
    agreement = float(np.mean(mentor.load(result.run_dir).act(obs) == test_bc.expert(obs)))
    score = test_bc.normalized(result.evaluation.return_mean, "CartPole-v1", 500.0)
    return {
        **stopped(result),
        "epochs": len(rows),
        "val accuracy": float(rows[-1]["train/val_accuracy"]),
        "agreement": agreement,
        "score": score,
    }


@case(
    "bc_then_ppo",
    "tests/test_bc.py::test_ppo_starts_from_the_bc_agent_at_its_level_and_trains",
    20,
    "first",
    "PPO from BC: first 10-episode validation >= 450 and > scratch's first + 200",
    takes_overrides=False,
)
def bc_then_ppo(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_bc

    bc_run = test_bc.clone_cartpole(folder / "bc", bc_demos()[1], seed)
    ppo, scratch = test_bc.ppo_from(bc_run, folder, seed)
    first, first_scratch = ppo.validations[0]["return_mean"], scratch.validations[0]["return_mean"]
    return {
        "BC eval": bc_run.evaluation.return_mean,
        "scratch first": first_scratch,
        "gap": first - first_scratch,
        "first": first,
    }


@case(
    "bc_every_space",
    "tests/test_bc.py::test_bc_learns_every_action_and_observation_kind",
    20,
    "min",
    "each env's 4-episode evaluation >= 0.85 * 16 = 13.6",
    takes_overrides=False,
)
def bc_every_space(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_bc

    envs = {
        "MultiDiscrete": "multi_discrete_expert",
        "MultiBinary": "multi_binary_expert",
        "DictObs": "dict_expert",
        "Image": "image_expert",
        "Continuous": "continuous_expert",
    }
    figures = {
        env: test_bc.clone_in_every_space(folder / env, f"mentor.envs.testing:{env}Env", name, seed)
        for env, name in envs.items()
    }
    return {**figures, "min": min(figures.values())}


@case(
    "bc_cli",
    "tests/test_bc.py::test_cli_trains_bc_end_to_end",
    10,
    "eval",
    "5-episode final evaluation > 400",
    takes_overrides=False,
)
def bc_cli(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_bc

    evaluation = test_bc.clone_on_the_command_line(folder, bc_demos()[1], seed)
    return {"eval": evaluation["return_mean"]}


def pendulum_case(policy_of: str):
    @case(
        f"bc_pendulum_{policy_of}",
        f"tests/test_bc.py::test_pendulum_bc_clones_the_scripted_expert[{policy_of}]",
        20,
        "score",
        "score >= 0.9 (20-episode final evaluation; 0 random, 1 the 10 episodes' mean return)",
        takes_overrides=False,
    )
    def bc_pendulum(seed: int, folder: Path, overrides: list[str]) -> Figures:
        import test_bc

        if "pendulum" not in _cache:
            _cache["pendulum"] = test_bc.pendulum_demos(Path(tempfile.mkdtemp(prefix="seeds-")))
        expert_return, data = _cache["pendulum"]
        result = test_bc.clone_pendulum(folder, data, policy_of, seed)
        mean = result.evaluation.return_mean
        return {"eval": mean, "score": test_bc.normalized(mean, "Pendulum-v1", expert_return)}

    return bc_pendulum


bc_pendulum_ppo, bc_pendulum_sac = pendulum_case("ppo"), pendulum_case("sac")


# --- the table ---------------------------------------------------------------------------------


def seeds_from(text: str | None, default: int) -> list[int]:
    """'20' is seeds 0-19, '20-39' those, '3,7' those two; None the case's default."""
    if text is None:
        return list(range(default))
    if "," in text:
        return [int(s) for s in text.split(",")]
    if "-" in text:
        first, last = (int(s) for s in text.split("-"))
        return list(range(first, last + 1))
    return list(range(int(text)))


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary(one: Case, results: dict[int, Figures]) -> str:
    """Per seed, then min / median / max of each number (yes-count of each flag), worst seeds."""
    columns = list(next(iter(results.values())))
    rows = [[str(seed), *(shown(r.get(c)) for c in columns)] for seed, r in results.items()]
    for name, pick in (("min", min), ("median", statistics.median), ("max", max)):
        row = [f"**{name}**"]
        for column in columns:
            values = [r.get(column) for r in results.values()]
            if all(isinstance(v, bool) for v in values):
                row.append(f"{sum(values)}/{len(values)}" if name == "median" else "")
            elif all(isinstance(v, int | float) for v in values):
                row.append(shown(pick(values)))
            else:
                row.append("")
        rows.append(row)
    worst = sorted(results, key=lambda s: results[s][one.key], reverse=not one.low_is_bad)
    return "\n".join(
        [
            f"{one.name}: {one.test}",
            f"asserts: {one.asserts}",
            table(rows, ["seed", *columns]),
            f"worst seeds by {one.key!r}: "
            + ", ".join(f"{s} ({shown(results[s][one.key])})" for s in worst[:5]),
            "",
        ]
    )


# --- multi-agent --------------------------------------------------------------------------------


@case(
    "ippo_beacons",
    "tests/test_multiagent.py::test_ippo_learns_to_follow_the_beacons",
    10,
    "eval",
    "20-episode final evaluation >= 5.5 of 8 (random: 4)",
)
def ippo_beacons(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_multiagent

    result = test_multiagent.beacons_ippo_run(folder, seed, *overrides)
    return {**stopped(result), "eval": result.evaluation.return_mean}


@case(
    "ippo_scout",
    "tests/test_multiagent_groups.py::test_ippo_learns_the_beacons_with_a_scout_of_other_spaces",
    10,
    "eval",
    "20-episode final evaluation: team >= 5.5 of 8 (random 3.56), the scout >= 3.4 (random 2.67)",
)
def ippo_scout(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_multiagent_groups

    result = test_multiagent_groups.beacons_scout_run(folder, seed, *overrides)
    return {
        **stopped(result),
        "eval": result.evaluation.return_mean,
        "scout": result.evaluation.agents["agent_2"].return_mean,
    }


@case(
    "relay_turns",
    "tests/test_turns.py::test_ippo_learns_moves_that_are_paid_while_their_player_waits",
    10,
    "player_0",
    "20-episode final evaluation of player_0 >= 3.5 of 4 (random: 2)",
)
def relay_turns(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_turns

    result = test_turns.relay_ippo_run(folder, seed, *overrides)
    agents = result.evaluation.agents
    return {
        **stopped(result),
        "player_0": agents["player_0"].return_mean,
        "player_1": agents["player_1"].return_mean,
    }


@case(
    "ppo_workers",
    "tests/test_distributed.py::test_ppo_on_two_workers_learns_to_the_threshold_of_one_process",
    10,
    "workers",
    "20-episode final evaluation on the 4-way match task, 2 Ray workers and one process alike "
    "(random: 4 of 16)",
)
def ppo_workers(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_distributed

    on_ray = test_distributed.match_run(folder, seed, 2, *overrides)
    local = test_distributed.match_run(folder, seed, None, *overrides)
    return {**stopped(on_ray), "workers": on_ray.evaluation.return_mean,
            "one process": local.evaluation.return_mean}  # fmt: skip


@case(
    "ppo_async",
    "tests/test_distributed.py::test_ppo_async_on_two_workers_learns_to_the_threshold_of_one_process",
    10,
    "eval",
    "20-episode final evaluation on the 4-way match task, PPO on 2 Ray workers in async mode "
    "(random: 4 of 16)",
)
def ppo_async(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_distributed

    result = test_distributed.match_run(folder, seed, 2, "distributed.mode=async", *overrides)
    return {**stopped(result), "eval": result.evaluation.return_mean}


@case(
    "doorkey5",
    "tests/test_curriculum.py::test_ppo_learns_doorkey_5x5_on_a_reduced_budget",
    10,
    "success",
    "20-episode final evaluation's success rate on MiniGrid-DoorKey-5x5 after 98,304 env steps",
)
def doorkey5(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_curriculum

    result = test_curriculum.doorkey_run(folder, seed, *overrides)
    return {**stopped(result), "success": result.evaluation.success_rate,
            "return": result.evaluation.return_mean}  # fmt: skip


@case(
    "transfer_longpole",
    "tests/test_transfer.py::test_ppo_transferred_to_a_longer_pole_beats_scratch_on_a_reduced_budget",
    10,
    "jumpstart",
    "the transferred policy's validation return before any update >= 350, and its best over "
    "4,096 env steps above scratch's best",
    takes_overrides=False,
)
def transfer_longpole(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_transfer

    runs = test_transfer.transfer_runs(folder, seed)
    return {"jumpstart": runs["transfer"][0], "transfer best": max(runs["transfer"]),
            "scratch best": max(runs["scratch"])}  # fmt: skip


@case(
    "dqn_workers",
    "tests/test_distributed.py::test_dqn_on_two_workers_learns_to_the_threshold_of_one_process",
    10,
    "workers",
    "20-episode final evaluation on the 4-way match task, DQN on 2 Ray workers and in one "
    "process alike (random: 4 of 16)",
)
def dqn_workers(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_distributed

    on_ray = test_distributed.dqn_match_run(folder, seed, 2, *overrides)
    local = test_distributed.dqn_match_run(folder, seed, None, *overrides)
    return {**stopped(on_ray), "workers": on_ray.evaluation.return_mean,
            "one process": local.evaluation.return_mean}  # fmt: skip


@case(
    "mappo_spread",
    "tests/test_multiagent.py::test_mappo_learns_simple_spread_beyond_random",
    10,
    "eval",
    "50-episode final evaluation per agent >= -23.5 (random: about -25)",
)
def mappo_spread(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_multiagent

    result = test_multiagent.spread_mappo_run(folder, seed, *overrides)
    return {
        **stopped(result),
        "validations": " ".join(f"{r:.1f}" for r in validation_returns(result)),
        "eval": result.evaluation.return_mean,
    }


@case(
    "selfplay_tictactoe",
    "tests/test_selfplay.py::test_a_self_play_agent_beats_random_at_tictactoe",
    10,
    "wins",
    "400-game win rate against random, seats alternating, >= 0.60 (random vs random: 0.435)",
)
def selfplay_tictactoe(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_selfplay

    result = test_selfplay.tictactoe_run(folder, seed, *overrides)
    info = result.evaluation.info
    return {**stopped(result), "wins": info["win"], "draws": info["draw"], "losses": info["loss"]}


@case(
    "rarl_adversary",
    "tests/test_rarl.py::test_the_adversary_learns_to_lower_the_protagonists_return",
    10,
    "drop",
    "the scripted protagonist's return falls by > 45 after 12 adversary rollouts (budget 0.5)",
    takes_overrides=False,
)
def rarl_adversary(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_rarl

    before, after = test_rarl.adversary_effect(seed)
    return {"before": before, "after": after, "drop": before - after}


@case(
    "rl2_bandits",
    "tests/test_meta.py::test_rl2_learns_to_play_bandits_better_than_chance",
    10,
    "best",
    "best 200-trial validation of RL² on 10-pull bandits >= 5.4 (random arms: 5.0)",
)
def rl2_bandits(seed: int, folder: Path, overrides: list[str]) -> Figures:
    import test_meta

    result = test_meta.rl2_bandit_run(folder, seed, *overrides)
    return {**stopped(result), "best": result.best_return,
            "validations": " ".join(f"{r:.2f}" for r in validation_returns(result))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help="cases to run (see --list)")
    parser.add_argument("--all", action="store_true", help="every case")
    parser.add_argument("--list", action="store_true", help="name the cases and their tests")
    parser.add_argument(
        "--seeds", help="N (seeds 0..N-1), FIRST-LAST or a,b,c; default: the case's"
    )
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if args.list or not (args.cases or args.all):
        for one in CASES.values():
            print(f"{one.name:20} {one.seeds:3} seeds  {one.test}")
        return
    chosen = list(CASES) if args.all else args.cases
    if unknown := [name for name in chosen if name not in CASES]:
        sys.exit(f"no case {', '.join(unknown)}; --list names them")
    print(f"{kernels()}; overrides: {args.overrides or 'none'}\n")
    everything: dict[str, dict[int, Figures]] = {}
    for name in chosen:
        one = CASES[name]
        if args.overrides and not one.takes_overrides:
            sys.exit(f"{name} does not take --set overrides (it is no single mentor.train call)")
        results: dict[int, Figures] = {}
        for seed in seeds_from(args.seeds, one.seeds):
            tic = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix=f"seeds-{name}-") as folder:
                results[seed] = one.run(seed, Path(folder), args.overrides)
            figures = ", ".join(f"{k} {shown(v)}" for k, v in results[seed].items())
            print(
                f"  {name} seed {seed}: {figures} ({time.perf_counter() - tic:.1f} s)", flush=True
            )
        everything[name] = results
        print("\n" + summary(one, results), flush=True)
        if args.json:
            args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
