"""Proof that a refactor changed nothing: the SHA-256 of every method's final weights.

Each case trains a method with its preset, a fixed seed and a short budget, in a fresh process
(as ``mentor train`` would), and hashes the tensors of ``final/model.safetensors`` (every
tensor's bytes, in the order of their sorted names). The same code, torch and CPU give the same
hashes; a change that alters what a method computes changes its hash.

    python benchmarks/weights_hashes.py                     # print the table
    python benchmarks/weights_hashes.py --save FILE         # record the hashes as JSON
    python benchmarks/weights_hashes.py --check FILE        # compare; exit 1 if any differ

Hashes depend on the CPU's floating-point kernels (AVX2 and AVX-512 round differently, and so do
two CPUs with the same instruction set: an Intel Xeon and an AMD EPYC, both AVX-512, gave
different hashes for every case), so a record holds one set of hashes per CPU, named by the CPU's
model and torch's CPU capability, and ``--check`` compares with the set of this CPU (none: it
says so). ``--save`` adds or replaces this CPU's set. ``benchmarks/weights_hashes.json`` holds
the development machines' sets.

The demonstrations BC, DAgger and GAIL learn from are recorded from the scripted experts of
``mentor.envs.experts``, so no case depends on another case's training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_worker, table

# name -> (method, env id, overrides). Budgets: a few seconds each, past every method's warm-up.
CASES: dict[str, tuple[str, str, list[str]]] = {
    "ppo": ("ppo", "CartPole-v1", ["stopping.total_steps=4096"]),
    "dqn": ("dqn", "CartPole-v1", ["stopping.total_steps=3000", "method.learning_starts=1000"]),
    "sac": ("sac", "Pendulum-v1", ["stopping.total_steps=1200"]),
    "td3": ("td3", "Pendulum-v1", ["stopping.total_steps=1200"]),
    "bc": ("bc", "CartPole-v1", ["method.max_epochs=20", "data.path={cartpole}"]),
    "bc-pendulum": (
        "bc",
        "Pendulum-v1",
        ["method.max_epochs=20", "env.normalize_obs=true", "data.path={pendulum}"],
    ),
    "bc-pendulum-sac": (
        "bc",
        "Pendulum-v1",
        [
            "method.max_epochs=20",
            "env.normalize_obs=true",
            "method.policy_of=sac",
            "agent.network.activation=relu",
            "agent.network.ortho_init=false",
            "data.path={pendulum}",
        ],
    ),
    "dagger": (
        "dagger",
        "CartPole-v1",
        ["method.expert=mentor.envs.experts:cartpole", "method.rounds=2", "method.max_epochs=5"],
    ),
    "gail": ("gail", "CartPole-v1", ["stopping.total_steps=4096", "data.path={cartpole}"]),
}
COMMON = [
    "seed=0",
    "validation.every_steps=1000",
    "validation.episodes=4",
    "validation.num_envs=4",
    "evaluation.episodes=0",
    "logging.progress=false",
    "logging.tensorboard=false",
    "stopping.target_return=null",
]


def weights_hash(folder: Path) -> str:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(tensors[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def record_datasets(folder: Path) -> dict[str, str]:
    """Ten episodes of each scripted expert, as dataset folders."""
    from mentor.agent import policy_from
    from mentor.data.load import save_dataset
    from mentor.data.record import record

    paths = {}
    for name, env_id in (("cartpole", "CartPole-v1"), ("pendulum", "Pendulum-v1")):
        policy = policy_from(f"mentor.envs.experts:{name}")
        dataset = record(policy, env_id, {}, 10, seed=100)
        out = folder / f"{name}-expert"
        save_dataset(dataset, out, env_id=env_id, seeds=[100 + i for i in range(10)])
        paths[name] = str(out)
    return paths


def cpu_name() -> str:
    """This CPU's model (from /proc/cpuinfo where there is one) and torch's CPU capability."""
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.backends.cpu.get_cpu_capability()}"


def load_records(path: Path) -> dict[str, dict[str, str]]:
    """CPU -> case -> hash. A file of one set without CPUs (before sets were per CPU) is the
    set of the machine that wrote it, named as such."""
    data = json.loads(path.read_text())
    if "cpus" in data:
        return data["cpus"]
    return {"unnamed CPU (the 2026-12-01 record, an Intel Xeon, AVX512)": data}


def worker(case: str, data: dict[str, str], out: str) -> None:
    from mentor import api
    from mentor.experiment import build

    method, env_id, overrides = CASES[case]
    overrides = [o.format(**data) for o in overrides]
    tic = time.perf_counter()
    experiment = build(
        method=method, env_id=env_id, overrides=[*COMMON, f"output_dir={out}", *overrides]
    )
    result = api.train(experiment)
    seconds = time.perf_counter() - tic
    digest = weights_hash(result.run_dir / "final")
    print(json.dumps({"hash": digest, "steps": result.total_steps, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, help="write the hashes to this JSON file")
    parser.add_argument("--check", type=Path, help="compare with the hashes in this JSON file")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, json.loads(args.data), args.out)
        return
    cpu = cpu_name()
    records = load_records(args.check) if args.check else {}
    recorded = records.get(cpu, {})
    if args.check and not recorded:
        print(f"{args.check} has no hashes for this CPU ({cpu}); it has: {', '.join(records)}")
    with tempfile.TemporaryDirectory(prefix="mentor-hashes-") as tmp:
        data = record_datasets(Path(tmp))
        results = {}
        for case in args.cases:
            results[case] = run_worker(
                __file__, ["--worker", case, "--data", json.dumps(data), "--out", tmp]
            )
    rows, differ = [], []
    for case, r in results.items():
        expected = recorded.get(case)
        verdict = "" if expected is None else "same" if expected == r["hash"] else "DIFFERENT"
        if verdict == "DIFFERENT":
            differ.append(case)
        rows.append([case, r["hash"][:16], f"{r['steps']:,}", f"{r['seconds']:.1f}", verdict])
    print(table(rows, ["case", "sha256 of final weights", "steps", "s", "vs record"]))
    if args.save:
        saved = load_records(args.save) if args.save.exists() else {}
        saved[cpu] = {c: r["hash"] for c, r in results.items()}
        args.save.write_text(json.dumps({"cpus": saved}, indent=2) + "\n")
    if differ:
        print(f"different from {args.check}: {', '.join(differ)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
