"""Continual learning (issue 16): naive fine-tuning against what keeps earlier tasks, on a task
sequence, over seeds: the performance matrix's average performance and forgetting.

Each run is ``examples/continual-cartpole.yaml`` (or ``--file``) with its keeper set by the
variant, validated at step 0 too (each task's curve then starts where its training does), in a
fresh process; with ``--baselines``, each task alone from scratch for its steps gives forward
transfer's baseline areas (Continual World's FT). The figures are from the matrix (success
rates, or returns over the most the env pays), so the machine's load does not move them.
Medians over seeds.

    python benchmarks/continual.py                                   # 5 seeds, every variant
    python benchmarks/continual.py --variants naive ewc:100000 distill:1
    python benchmarks/continual.py --file my-sequence.yaml --seeds 3
    python benchmarks/continual.py --baselines    # each task alone too: forward transfer
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
VARIANTS = [
    "naive",
    "ewc:1000",
    "ewc:30000",
    "online_ewc:30000",
    "l2:1",
    "distill:0.03",
    "distill:0.1",
    "distill:1",
]


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
        "logging.tensorboard=false", "validation.at_start=true", *overrides_for(variant),
    ])  # fmt: skip
    result = api.train(experiment)
    data = json.loads((result.run_dir / "continual.json").read_text())
    return {"matrix": data["matrix"], "average": data["average_performance"],
            "forgetting": data["forgetting_mean"], "tasks": data["tasks"], "auc": data["auc"],
            "train_seconds": result.train_seconds}  # fmt: skip


def baseline_worker(file: str, index: int, seed: int) -> dict:
    """Task ``index`` of the sequence alone, from scratch, for its steps: the area under its
    validation curve (performance in [0, 1]), forward transfer's baseline."""
    import yaml

    from mentor import api
    from mentor.continual.metrics import area
    from mentor.experiment import build

    spec = yaml.safe_load(Path(file).read_text())["continual"]
    task, count = spec["tasks"][index], len(spec["tasks"])
    env_id, kwargs = task.get("id") or "CartPole-v1", task.get("kwargs") or {}
    if spec.get("task_id"):
        kwargs = {"env": env_id, "kwargs": kwargs, "index": index, "count": count}
        env_id = "mentor/TaskId-v0"
    out = tempfile.mkdtemp(prefix="mentor-baseline-")
    experiment = build(file=file, overrides=[
        "continual=null", f"env.id={env_id}", f"env.kwargs={json.dumps(kwargs)}",
        f"stopping.total_steps={spec['steps_per_task']}", "stopping.target_return=null",
        f"seed={seed}", f"output_dir={out}", "logging.progress=false",
        "logging.tensorboard=false", "validation.at_start=true",
    ])  # fmt: skip
    result = api.train(experiment)
    steps = [v["step"] for v in result.validations]
    scale = 500.0 if "CartPole" in json.dumps(task) else 1.0  # the most a CartPole episode pays
    values = [v["return_mean"] / scale for v in result.validations]
    return {"auc": area(steps, values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--file", default=str(EXAMPLE))
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--baselines", action="store_true",
                        help="also each task alone: forward transfer")  # fmt: skip
    parser.add_argument("--task", type=int)
    parser.add_argument("--variant")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker and args.task is not None:
        print(json.dumps(baseline_worker(args.file, args.task, args.seed)))
        return
    if args.worker:
        print(json.dumps(worker(args.file, args.variant, args.seed)))
        return
    baselines = None
    if args.baselines:  # per seed, per task: the area under its curve alone
        import yaml

        count = len(yaml.safe_load(Path(args.file).read_text())["continual"]["tasks"])
        baselines = [[run_worker(__file__, ["--worker", "--file", args.file, "--task", str(t),
                                            "--seed", str(seed)])["auc"]
                      for t in range(count)] for seed in range(args.seeds)]  # fmt: skip
        print("baseline areas per seed:", baselines, flush=True)
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
        transfer = "-"
        if baselines is not None:
            from mentor.continual.metrics import continual_metrics

            each = [continual_metrics(r["matrix"], r["auc"], b)["forward_transfer_mean"]
                    for r, b in zip(runs, baselines, strict=True)]  # fmt: skip
            transfer = f"{statistics.median(each):.2f}"
        rows.append([
            variant,
            f"{statistics.median(r['average'] for r in runs):.2f}",
            f"{statistics.median(r['forgetting'] for r in runs):.2f}",
            transfer,
            " ".join(f"{v:.2f}" for v in diagonal),
            " ".join(f"{v:.2f}" for v in last),
        ])  # fmt: skip
    print(f"\n{Path(args.file).name}: median of {args.seeds} seeds (performance in [0, 1])")
    print(table(rows, ["", "average (end)", "forgetting", "forward transfer",
                       "each task after its own training", "each task at the end"]))  # fmt: skip


if __name__ == "__main__":
    main()
