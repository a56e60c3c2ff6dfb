"""Hierarchical RL (issue 20): option-critic against flat DQN on the four-rooms grid whose goal
moves, the option-critic paper's experiment (Bacon et al. 2017, section 5.1), with the same
budget of env steps.

Each copy of ``mentor/FourRooms-v0`` plays its first ``--move-after`` episodes to the east
hallway, then the rest to a cell of the lower right room (``envs/rooms.py``); ``--envs`` copies,
``--steps`` env steps in all. Every training episode is logged (one log row a vector step), and
scored by the paper's objective: its discounted return, gamma^(steps - 1) on reaching the goal,
0 when cut at the 500-step limit (rewards are 1 at the goal, 0 elsewhere; gamma 0.99).

    before   the mean score of the last 100 episodes before the move (all copies together)
    regain   episodes after the move (all copies together, in the order they ended) until the
             mean score of the latest 50 first reaches 90% of ``before``; "-" when the budget
             ran out first
    after    the mean score of the last 100 episodes of the run

Target (issue 20): option-critic regains in fewer episodes than flat DQN (median of 5 seeds).
``option_critic_1``, the same method with a single option, says how much of the difference the
options make (``--methods`` picks among option_critic, dqn, option_critic_1).

    python benchmarks/options.py --seeds 5 --parallel 1            # about 20 minutes, 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import report, run_worker, table

GAMMA = 0.99
BEFORE, WINDOW, SHARE = 100, 50, 0.9

# Flat DQN with the same network (a linear layer on the one-hot cell: a table), one update a
# vector step as option-critic has, the same epsilon schedule; a replay buffer of 20,000
# transitions (a few hundred episodes) and a target network copied every 500 env steps.
# option_critic_1 is the ablation: the same method with one option, which never needs to end
# (a flat actor-critic with Q_Omega as its critic), to tell the options' share of the result.
METHODS: dict[str, tuple[str, list[str]]] = {
    "option_critic": ("option_critic", []),
    "option_critic_1": ("option_critic", ["method.num_options=1"]),
    "dqn": ("dqn", [
        "agent.network.hidden_sizes=[]", "agent.network.ortho_init=false",
        "method.learning_rate=0.01", "method.buffer_size=20000", "method.learning_starts=1000",
        "method.batch_size=64", "method.gradient_steps=1", "method.target_update_freq=500",
        "method.double_q=true", "method.gamma=0.99",
        "exploration.epsilon={kind: linear, start: 1.0, end: 0.01, fraction: 0.05}",
    ]),
}  # fmt: skip


def worker(method: str, seed: int, steps: int, envs: int, move_after: int) -> dict[str, Any]:
    """Train one seed; every episode's (goal index, score) in the order they ended."""
    import mentor
    from mentor.experiment import build

    name, extra = METHODS[method]
    extra = extra + ([f"method.train_freq={envs}"] if name == "dqn" else [])
    experiment = build(method=name, env_id="mentor/FourRooms-v0", overrides=[
        f"seed={seed}", f"output_dir={tempfile.mkdtemp(prefix='mentor-bench-')}",
        f"env.num_envs={envs}", f"env.kwargs.move_goal_after={move_after}",
        "env.info_keys={goal_index: last}", f"stopping.total_steps={steps}",
        f"logging.every_steps={envs}", f"validation.every_steps={steps}", "evaluation.episodes=0",
        "checkpoints.keep_best=false", "logging.progress=false", "logging.tensorboard=false",
        *extra,
    ])  # fmt: skip
    episodes: list[tuple[float, float]] = []

    def heard(update: Any) -> None:
        m = update.metrics
        count = int(m.get("rollout/episodes", 0))
        if not count:
            return
        # A row is the episodes that ended at one vector step: nearly always one.
        score = m["rollout/ep_return_mean"] * GAMMA ** (m["rollout/ep_length_mean"] - 1)
        moved = round(m["rollout/goal_index_mean"] * count)
        episodes.extend([(0.0, score)] * (count - moved) + [(1.0, score)] * moved)

    result = mentor.train(experiment, on_update=[heard])
    return {"episodes": episodes, "seconds": result.train_seconds}


def measure(episodes: list[list[float]]) -> dict[str, float]:
    scores_before = [s for g, s in episodes if g == 0.0]
    scores_after = [s for g, s in episodes if g == 1.0]
    before = statistics.fmean(scores_before[-BEFORE:]) if scores_before else math.nan
    regain = math.inf
    for k in range(WINDOW, len(scores_after) + 1):
        if statistics.fmean(scores_after[k - WINDOW : k]) >= SHARE * before:
            regain = k
            break
    after = statistics.fmean(scores_after[-BEFORE:]) if scores_after else math.nan
    return {"before": before, "regain": regain, "after": after,
            "episodes_before": len(scores_before), "episodes_after": len(scores_after)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--move-after", type=int, default=250, help="episodes per copy")
    parser.add_argument("--methods", default="option_critic,dqn,option_critic_1")
    parser.add_argument("--parallel", type=int, default=1, help="seeds run at once")
    parser.add_argument("--worker", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        report(worker(args.worker, args.seed, args.steps, args.envs, args.move_after))
        return
    methods = args.methods.split(",")

    def one(job: tuple[str, int]) -> dict[str, Any]:
        method, seed = job
        out = run_worker(__file__, ["--worker", method, "--seed", str(seed), "--steps",
                                    str(args.steps), "--envs", str(args.envs), "--move-after",
                                    str(args.move_after)])  # fmt: skip
        figures = {**measure(out["episodes"]), "seconds": out["seconds"]}
        print(f"  {method} seed {seed}: {json.dumps(figures)}", file=sys.stderr, flush=True)
        return figures

    jobs = [(m, s) for s in range(args.seeds) for m in methods]
    with ThreadPoolExecutor(args.parallel) as pool:
        results = dict(zip(jobs, pool.map(one, jobs), strict=True))

    def shown(value: float, digits: str = ".0f") -> str:
        return "-" if math.isinf(value) else format(value, digits)

    rows = []
    for method in methods:
        runs = [results[(method, s)] for s in range(args.seeds)]
        regains = [r["regain"] for r in runs]
        rows.append([
            method, " ".join(shown(v) for v in regains), shown(statistics.median(regains)),
            f"{statistics.median(r['before'] for r in runs):.3f}",
            f"{statistics.median(r['after'] for r in runs):.3f}",
            f"{statistics.median(r['episodes_before'] for r in runs):,.0f}",
            f"{statistics.median(r['episodes_after'] for r in runs):,.0f}",
            f"{statistics.median(r['seconds'] for r in runs):.0f}",
        ])  # fmt: skip
    print(
        f"\nFour rooms, goal moved after {args.move_after} episodes per copy ({args.envs} "
        f"copies), {args.steps:,} env steps; score: discounted return (gamma {GAMMA})"
    )
    header = ["method", "regain (episodes) by seed", "median regain", "before", "after",
              "episodes before", "episodes after", "train s"]  # fmt: skip
    print(table(rows, header))


if __name__ == "__main__":
    main()
