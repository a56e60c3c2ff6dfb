"""Self-play on Connect Four (issue 17): PPO's preset trained against its own pool for 30
minutes, then 1,000 games against the random player and 1,000 against a one-step-lookahead
heuristic (win if you can, block if you must, else random: ``mentor.envs.games``), the agent's
seat alternating so that it moves first in half of each.

Targets: >= 97% wins against random, >= 70% against the heuristic. Each seed trains in a fresh
process with one torch thread; ``--parallel`` runs that many seeds at once (one per core: PPO
runs in one thread, so two at a time on this 2-core machine keep each run's speed, which is
measured and printed as env steps per second).

    python benchmarks/selfplay.py --seeds 0 1 --parallel 2          # the preset (BoardCNN)
    python benchmarks/selfplay.py --seeds 0 1 --parallel 2 --set agent.network.kind=mlp
    python benchmarks/selfplay.py --seeds 0 --set selfplay.baselines=[random]   # past selves only
    python benchmarks/selfplay.py --game tictactoe --minutes 3 --seeds 0 1 2 3 4 --parallel 2 \
        --set 'selfplay.league={}'                     # a league beside the learner, tic-tac-toe
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import table

GAMES = {  # the env, and its one-step-lookahead heuristic
    "connect_four": ("pettingzoo.classic.connect_four_v3",
                     "mentor.envs.games:connect_four_lookahead"),
    "tictactoe": ("pettingzoo.classic.tictactoe_v3", "mentor.envs.games:tictactoe_lookahead"),
}  # fmt: skip


def worker(
    game: str, seed: int, minutes: float, folder: str, games: int, overrides: list[str]
) -> dict:
    from mentor import api
    from mentor.agent import Agent
    from mentor.experiment import build
    from mentor.selfplay import make_opponent
    from mentor.selfplay.match import play_match

    env, heuristic = GAMES[game]
    experiment = build(method="ppo", env_id=env, overrides=[
        f"seed={seed}", f"output_dir={folder}", f"name={game}-{seed}",
        f"stopping.max_seconds={minutes * 60}", "evaluation.episodes=0",
        "logging.progress=false", "logging.tensorboard=false", *overrides,
    ])  # fmt: skip
    result = api.train(experiment)
    agent = Agent.load(result.run_dir)  # the best checkpoint (validated against the heuristic)
    out = {"seed": seed, "steps": result.total_steps, "seconds": result.train_seconds,
           "run": str(result.run_dir)}  # fmt: skip
    for name, spec in (("random", "random"), ("heuristic", heuristic)):
        match = play_match(agent, make_opponent(spec, agent), games, seed=10_000 + seed)
        out[name] = match.to_dict()
    league = json.loads((result.run_dir / "league.json").read_text())
    out["pool"] = len(league["members"])
    out["league_steps"] = league.get("league", {}).get("steps", 0)  # the exploiters' own
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", choices=list(GAMES), default="connect_four")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", nargs=2, metavar=("SEED", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        seed, folder = args.worker
        out = worker(args.game, int(seed), args.minutes, folder, args.games, args.overrides)
        print(json.dumps(out))
        return
    folder = tempfile.mkdtemp(prefix="mentor-selfplay-")
    print(f"{args.game} self-play, {args.minutes:g} min per seed, overrides: "
          f"{args.overrides or 'none'}; runs under {folder}\n")  # fmt: skip
    results, pending = [], list(args.seeds)
    while pending:
        batch, pending = pending[: args.parallel], pending[args.parallel :]
        extra = [f"--set={o}" for o in args.overrides]
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(s), folder,
                                   f"--game={args.game}",
                                   f"--minutes={args.minutes}", f"--games={args.games}", *extra],
                                  stdout=subprocess.PIPE, text=True)
                 for s in batch]  # fmt: skip
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode:
                sys.exit(f"a worker failed (exit {proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    rows = []
    league = any(r["league_steps"] for r in results)  # a league's exploiters trained too
    for r in results:
        cells = [r["seed"], f"{r['steps']:,}", f"{r['steps'] / r['seconds']:,.0f}", r["pool"]]
        if league:
            cells.insert(2, f"{r['league_steps']:,}")
        for name in ("random", "heuristic"):
            m = r[name]
            low, high = m["win_ci95"]
            cells.append(f"{m['win_rate']:.1%} [{low:.1%}, {high:.1%}]")
            cells.append(f"{m['draw_rate']:.1%} / {m['loss_rate']:.1%}")
        rows.append(cells)
    if len(results) > 1:
        rows.append(["median", f"{statistics.median(r['steps'] for r in results):,.0f}", "", "",
                     f"{statistics.median(r['random']['win_rate'] for r in results):.1%}", "",
                     f"{statistics.median(r['heuristic']['win_rate'] for r in results):.1%}",
                     ""])  # fmt: skip
        if league:
            rows[-1].insert(2, "")
    header = ["seed", "env steps", "steps/s", "pool", "wins vs random [95% CI]", "draws / losses",
              "wins vs heuristic [95% CI]", "draws / losses"]  # fmt: skip
    if league:
        header.insert(2, "exploiters' steps")
    print(table(rows, header))
    print(f"\n{args.games:,} games per opponent, the agent's seat alternating"
          + ("; targets: >= 97% against random, >= 70% against the heuristic"
             if args.game == "connect_four" else ""))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
