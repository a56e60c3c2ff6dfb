"""Continual learning (issue 16): naive fine-tuning against what keeps earlier tasks, on a task
sequence, over seeds: the performance matrix's average performance and forgetting.

Each run is ``examples/continual-cartpole.yaml`` (or ``--file``) with its keeper set by the
variant, in a fresh process; the figures are from the matrix (success rates, or returns over
the most the env pays), so the machine's load does not move them. Medians over seeds.

    python benchmarks/continual.py                                   # 5 seeds, every variant
    python benchmarks/continual.py --variants naive ewc:100000 distill:1
    python benchmarks/continual.py --file my-sequence.yaml --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "continual-cartpole.yaml"
VARIANTS = ["naive", "ewc:1000", "ewc:30000", "online_ewc:30000", "l2:1", "distill:0.03",
            "distill:0.1", "distill:1"]


def overrides_for(variant: str) -> list[str]:
    kind, _, strength = variant.partition(":")
    if kind == "naive":
        return ["continual.regularizer.kind=none", "continual.rehearsal.kind=none"]
    if kind == "distill":
        return ["continual.regularizer.kind=none", "continual.rehearsal.kind=distill",
                f"continual.rehearsal.strength={strength or 1}"]  # fmt: skip
    return [f"continual.regularizer.kind={kind}", "continual.rehearsal.kind=none",
            f"continual.regularizer.strength={strength or 1000}"]  # fmt: skip


def worker(file: str, variant: str, seed: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-continual-")
    experiment = build(file=file, overrides=[
        f"seed={seed}", f"output_dir={out}", "logging.progress=false",
        "logging.tensorboard=false", *overrides_for(variant),
    ])  # fmt: skip
    result = api.train(experiment)
    data = json.loads((result.run_dir / "continual.json").read_text())
    return {"matrix": data["matrix"], "average": data["average_performance"],
            "forgetting": data["forgetting_mean"], "tasks": data["tasks"],
            "train_seconds": result.train_seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--file", default=str(EXAMPLE))
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--variant")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.file, args.variant, args.seed)))
        return
    rows = []
    for variant in args.variants:
        runs = []
        for seed in range(args.seeds):
            flags = ["--worker", "--file", args.file, "--variant", variant, "--seed", str(seed)]
            runs.append(run_worker(__file__, flags))
            print(f"  {variant} seed {seed}: {runs[-1]}", flush=True)
        diagonal = [statistics.median(r["matrix"][i][i] for r in runs)
                    for i in range(len(runs[0]["tasks"]))]  # fmt: skip
        last = [statistics.median(r["matrix"][-1][j] for r in runs)
                for j in range(len(runs[0]["tasks"]))]  # fmt: skip
        rows.append([
            variant,
            f"{statistics.median(r['average'] for r in runs):.2f}",
            f"{statistics.median(r['forgetting'] for r in runs):.2f}",
            " ".join(f"{v:.2f}" for v in diagonal),
            " ".join(f"{v:.2f}" for v in last),
        ])  # fmt: skip
    print(f"\n{Path(args.file).name}: median of {args.seeds} seeds (performance in [0, 1])")
    print(table(rows, ["", "average (end)", "forgetting", "each task after its own training",
                       "each task at the end"]))  # fmt: skip


if __name__ == "__main__":
    main()
