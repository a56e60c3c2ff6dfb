"""Federated averaging (issue 20): four CartPole clients whose poles differ (half-lengths 0.25,
0.5, 0.75, 1.0), each training only on its own, against a central agent trained on their pooled
experience and against each client trained alone.

Every seed trains, with the same total of env steps (``--steps``):

    federated   ``mentor train fedavg CartPole-v1`` (the preset: 4 clients, 512 steps a round)
    central     PPO's CartPole preset on the pooled variants: each episode a pole drawn from the
                four (``curriculum.randomize: {length: {choice: [...]}}``)
    local k     PPO's CartPole preset on client k's pole alone, a quarter of the steps (what the
                client trains in the federated run)

then plays ``--episodes`` episodes (deterministic) of each agent on each variant (``mentor.
evaluate`` with ``param.length``): the per-client matrix, the mean over the variants, and for a
local agent its mean on the other clients' variants.

Target: the federated agent's mean over the variants within 10% of the central agent's, and
above each local agent's mean on the other clients' variants (medians over seeds).

    python benchmarks/federated.py --seeds 5 --steps 200000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import report, run_worker, table

LENGTHS = (0.25, 0.5, 0.75, 1.0)
QUIET = ["logging.progress=false", "logging.tensorboard=false", "stopping.target_return=null"]


def scores(agent, episodes: int) -> list[float]:
    from mentor import api

    return [api.evaluate(agent, episodes=episodes, num_envs=10,
                         perturb=[f"param.length={length}"]).return_mean
            for length in LENGTHS]  # fmt: skip


def worker(seed: int, steps: int, episodes: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    common = [f"seed={seed}", f"output_dir={out}", *QUIET]
    rows = {}
    runs = {
        "federated": build(method="fedavg", env_id="CartPole-v1", overrides=[
            *common, "name=federated", f"stopping.total_steps={steps}"]),
        "central": build(method="ppo", env_id="CartPole-v1", overrides=[
            *common, "name=central", f"stopping.total_steps={steps}",
            f"curriculum.randomize={{length: {{choice: {list(LENGTHS)}}}}}"]),
    }  # fmt: skip
    for k, length in enumerate(LENGTHS):
        runs[f"local {k}"] = build(method="ppo", env_id="CartPole-v1", overrides=[
            *common, f"name=local-{k}", f"stopping.total_steps={steps // len(LENGTHS)}",
            f"curriculum.randomize={{length: {{choice: [{length}]}}}}"])  # fmt: skip
    seconds = {}
    for name, experiment in runs.items():
        result = api.train(experiment)
        seconds[name] = result.train_seconds
        rows[name] = scores(api.load(result.run_dir / "final"), episodes)
    return {"returns": rows, "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        report(worker(args.seed, args.steps, args.episodes))
        return
    runs = []
    for seed in range(args.seeds):
        r = run_worker(__file__, ["--worker", "--seed", str(seed), "--steps", str(args.steps),
                                  "--episodes", str(args.episodes)])  # fmt: skip
        print(f"  seed {seed}: {r}", file=sys.stderr, flush=True)
        runs.append(r)
    names = list(runs[0]["returns"])

    def median(values) -> float:
        return statistics.median(values)

    rows = []
    for name in names:
        cells = [median(r["returns"][name][j] for r in runs) for j in range(len(LENGTHS))]
        mean = median(statistics.fmean(r["returns"][name]) for r in runs)
        others = "—"
        if name.startswith("local"):
            k = int(name.split()[1])
            others = f"{median(statistics.fmean(v for j, v in enumerate(r['returns'][name]) if j != k) for r in runs):.1f}"  # noqa: E501
        seconds = median(r["train_seconds"][name] for r in runs)
        rows.append([name, *(f"{c:.1f}" for c in cells), f"{mean:.1f}", others, f"{seconds:.0f}"])
    print(f"\nCartPole, poles {', '.join(map(str, LENGTHS))}: mean return of {args.episodes} "
          f"episodes on each variant (median of {args.seeds} seeds), {args.steps:,} env steps "
          "in all")  # fmt: skip
    header = ["agent", *(f"pole {length}" for length in LENGTHS), "mean", "mean, others'",
              "train s"]  # fmt: skip
    print(table(rows, header))
    fed = [statistics.fmean(r["returns"]["federated"]) for r in runs]
    central = [statistics.fmean(r["returns"]["central"]) for r in runs]
    ratios = [f / c for f, c in zip(fed, central, strict=True)]
    print(
        f"\nfederated / central, mean over the variants, by seed: "
        f"{' '.join(f'{r:.2f}' for r in ratios)} (median {median(ratios):.2f}; target >= 0.9)"
    )


if __name__ == "__main__":
    main()
