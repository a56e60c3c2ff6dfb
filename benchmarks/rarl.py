"""RARL on Pendulum-v1 (issue 17): the protagonist against an agent trained without an adversary,
each evaluated on the plain env and under perturbations (``mentor eval --perturb``).

Per seed, in fresh processes: PPO's Pendulum preset for ``--steps`` env steps, and RARL's preset
for twice as many (half of them the adversary's: the protagonist learns from as many steps as
PPO's agent; the push grows to its full 0.4 over the first quarter, ``--budget B`` a constant
push B instead, ``--warmup F`` growing to B over the share F). Then each agent plays 100
episodes (deterministic) on the plain env and under each perturbation: Gaussian action noise
of 0.1 to 0.5 times the torque's half-range (2 N m), and a heavier pendulum (``param.m``), and
against a fresh adversary (RARL's budget: a push of up to 40% of the torque range) trained for
102,400 steps against the frozen agent (``rarl.attack``), the worst case within that budget as
well as PPO can find it (``--attackers N``: the worst of N attackers, seeded apart). A random
policy's return anchors the losses:

    loss = (clean return - perturbed return) / (clean return - random return)

the share of its margin over random play that the agent loses (Pendulum's returns are negative,
so a ratio of returns would mean nothing). Targets: at an action-noise level where PPO's agent
loses >= 30%, RARL's loses at most half as much (median over seeds), with a clean return no
more than 10% (of the same margin) below PPO's.

    python benchmarks/rarl.py --seeds 0 1 2 3 4 --parallel 2
    python benchmarks/rarl.py --seeds 0 1 2 3 4 --parallel 2 --budget 0.2  # RARL's, the attack's
    python benchmarks/rarl.py --seeds 0 1 2 3 4 --parallel 2 --attackers 3  # the worst of three
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

ENV = "Pendulum-v1"
PERTURBATIONS = {
    "clean": [],
    "noise 0.1": ["action_noise=0.1"],
    "noise 0.2": ["action_noise=0.2"],
    "noise 0.3": ["action_noise=0.3"],
    "noise 0.5": ["action_noise=0.5"],
    "mass 1.3": ["param.m=1.3"],
}
ATTACK_ROLLOUTS = 25  # of 4 x 1024 steps: 102,400 steps of the attacker's training


def worker(
    method: str,
    seed: int,
    steps: int,
    folder: str,
    overrides: list[str],
    budget: float | None,
    attackers: int,
    warmup: float | None,
) -> dict:
    from mentor import api
    from mentor.experiment import build
    from mentor.methods.rarl import attack

    push = [] if budget is None else [f"method.budget={budget}"]  # RARL's, and the attack's
    if warmup:  # RARL's push grows from 0 over that share of its run; the attack's is the full
        full = budget if budget is not None else 0.4
        push = [f"method.budget={{start: 0.0, end: {full}, fraction: {warmup}}}"]
    experiment = build(method=method, env_id=ENV, overrides=[
        f"seed={seed}", f"output_dir={folder}", f"name={method}-{seed}",
        f"stopping.total_steps={steps * (2 if method == 'rarl' else 1)}",
        "stopping.target_return=null", *(push if method == "rarl" else []),
        "validation.every_steps=20000", "validation.episodes=10", "evaluation.episodes=0",
        "logging.progress=false", "logging.tensorboard=false", *overrides,
    ])  # fmt: skip
    result = api.train(experiment)
    agent = api.load(result.run_dir)
    out = {"method": method, "seed": seed, "steps": result.total_steps,
           "seconds": result.train_seconds}  # fmt: skip
    for name, perturb in PERTURBATIONS.items():
        summary = api.evaluate(agent, ENV, 100, perturb=perturb, seed=20_000 + seed)
        out[name] = summary.return_mean
    # The worst case within RARL's budget, estimated: a fresh adversary (the preset's push, 40%
    # of the torque range, or --budget's) trained against the frozen agent for ATTACK_ROLLOUTS
    # rollouts; with --attackers N, N of them (seeds of their own) and the worst: one attacker
    # may miss the push that breaks the agent, so the least return of N is the better estimate.
    attacker = build(method="rarl", env_id=ENV, overrides=[*overrides, *push])
    out["attacks"] = [attack(agent.policy, attacker, ATTACK_ROLLOUTS, 40_000 + seed + 1000 * k,
                             50)[1] for k in range(attackers)]  # fmt: skip
    out["attacked"] = min(out["attacks"])
    return out


def random_return(episodes: int = 100) -> float:
    import gymnasium as gym
    import numpy as np

    env = gym.make(ENV)
    env.action_space.seed(0)
    returns = []
    for episode in range(episodes):
        env.reset(seed=30_000 + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--budget", type=float, help="RARL's push and the attack's (default 0.4)")
    parser.add_argument("--attackers", type=int, default=1, help="fresh attackers; the worst")
    parser.add_argument("--warmup", type=float, help="RARL's push grows over this share of it")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "SEED", "FOLDER"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.worker:
        method, seed, folder = args.worker
        out = worker(method, int(seed), args.steps, folder, args.overrides, args.budget,
                     args.attackers, args.warmup)  # fmt: skip
        print(json.dumps(out))
        return
    folder = tempfile.mkdtemp(prefix="mentor-rarl-")
    jobs = [(method, seed) for seed in args.seeds for method in ("ppo", "rarl")]
    results = []
    while jobs:
        batch, jobs = jobs[: args.parallel], jobs[args.parallel :]
        extra = [f"--set={o}" for o in args.overrides]
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", m, str(s), folder,
                                   f"--steps={args.steps}", *extra,
                                   *([f"--budget={args.budget}"] if args.budget else []),
                                   f"--attackers={args.attackers}",
                                   *([f"--warmup={args.warmup}"] if args.warmup else [])],
                                  stdout=subprocess.PIPE, text=True) for m, s in batch]  # fmt: skip
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode:
                sys.exit(f"a worker failed (exit {proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    anchor = random_return()
    print(f"Pendulum-v1, {args.steps:,} protagonist env steps per run (RARL: as many more for "
          f"its adversary), budget {args.budget or 'of the preset'}, the worst of "
          f"{args.attackers} attacker(s), warm-up {args.warmup or 'none'}; random policy "
          f"{anchor:.1f}; runs under {folder}\n")  # fmt: skip
    names = [*PERTURBATIONS, "attacked"]
    rows = []
    for method in ("ppo", "rarl"):
        mine = [r for r in results if r["method"] == method]
        for r in mine:
            margin = r["clean"] - anchor
            r["loss"] = {n: (r["clean"] - r[n]) / margin for n in names[1:]}
            rows.append([method, r["seed"], *(f"{r[n]:.1f}" for n in names),
                         *(f"{r['loss'][n]:.0%}" for n in names[1:])])  # fmt: skip
        rows.append([method, "median", *(f"{statistics.median(r[n] for r in mine):.1f}"
                                         for n in names),
                     *(f"{statistics.median(r['loss'][n] for r in mine):.0%}"
                       for n in names[1:])])  # fmt: skip
    header = ["method", "seed", *(f"return {n}" for n in names),
              *(f"loss {n}" for n in names[1:])]  # fmt: skip
    print(table(rows, header))
    if args.json:
        args.json.write_text(json.dumps({"random": anchor, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
