"""Transfer (issue 16): PPO trained on CartPole-v1, then on a CartPole with other physics, from the
trained policy and from scratch, the same seeds; ``mentor transfer-report``'s measures.

Each seed: PPO's CartPole preset trained on CartPole-v1 until its validation reaches 475 (the
source), then on each target env, from the source's best checkpoint (``agent.init``) and from
scratch, for the whole budget (60k env steps), validated every 2,048 env steps and at step 0
(the initial policy's return: the jumpstart). Every run in a fresh process; the figures are
returns and env steps (not seconds), so the machine's load does not move them.

    python benchmarks/transfer.py                      # 5 seeds, the longer and heavier pole
    python benchmarks/transfer.py --targets mentor/CartPole-LongPole-v1 mentor/CartPole-Moon-v1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table

# The target runs train their whole budget (no stopping target), so that the area under the
# curve and the asymptotic return compare like with like.
COMMON = ["validation.every_steps=2048", "validation.at_start=true", "evaluation.episodes=0",
          "logging.progress=false", "logging.tensorboard=false"]  # fmt: skip
TARGET = ["stopping.target_return=null"]


def worker(env_id: str, seed: int, init: str | None, folder: str, budget: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    extra = [f"agent.init={init}"] if init else []
    if env_id != "CartPole-v1":  # a target env: the whole budget
        extra += TARGET
    name = f"{env_id.replace('/', '-')}-{'transfer' if init else 'scratch'}-{seed}"
    experiment = build(method="ppo", env_id=env_id, overrides=[
        f"seed={seed}", f"output_dir={folder}", f"name={name}",
        f"stopping.total_steps={budget}", *COMMON, *extra,
    ])  # fmt: skip
    result = api.train(experiment)
    return {"run": str(result.run_dir), "steps": result.total_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=60_000)
    parser.add_argument("--targets", nargs="+", default=["mentor/CartPole-LongPole-v1"])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init")
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.env, args.seed, args.init, args.folder, args.budget)))
        return

    from mentor.report.transfer import rows, transfer_report

    folder = tempfile.mkdtemp(prefix="mentor-transfer-")

    def run(env_id: str, seed: int, init: str | None = None) -> dict:
        flags = ["--worker", "--env", env_id, "--seed", str(seed), "--folder", folder,
                 "--budget", str(args.budget)] + (["--init", init] if init else [])  # fmt: skip
        return run_worker(__file__, flags)

    sources = {seed: run("CartPole-v1", seed) for seed in range(args.seeds)}
    print("sources:", {s: r["steps"] for s, r in sources.items()}, flush=True)
    for target in args.targets:
        transferred = [run(target, s, sources[s]["run"])["run"] for s in range(args.seeds)]
        scratch = [run(target, s)["run"] for s in range(args.seeds)]
        report, out = transfer_report(transferred, scratch, threshold=475.0)
        print(f"\nPPO, CartPole-v1 -> {target}: {args.seeds} seeds, budget {args.budget:,}, "
              f"validation every 2,048 env steps and at step 0 (report: {out})")  # fmt: skip
        print(table(rows(report), ["", "transferred", "scratch", "difference [95% CI]"]))
        per = next(m for m in report["measures"] if m["measure"].startswith("steps"))
        print("steps to 475 per seed: transferred", per["per_run"]["transfer"],
              "scratch", per["per_run"]["scratch"])  # fmt: skip


if __name__ == "__main__":
    main()
