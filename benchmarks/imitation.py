"""Imitation: behaviour cloning, DAgger and GAIL against their targets, median over seeds.

The score of a run is its normalized return, (return - random) / (expert - random): 0 is a
uniformly random policy, 1 the expert. The return is the run's final evaluation (evaluation.json:
100 deterministic episodes of its best checkpoint, on seeds no demonstration or validation used);
the expert's and the random policy's are measured here on 100 episodes each. Each seed records its
own demonstrations (reset seeds 1000 * seed + i) and trains in a fresh process.

    BC, CartPole-v1      10 episodes of a PPO expert (mentor's preset, trained once here, seed
                         0, until its validation return reaches 475); targets: score >= 0.95,
                         training < 5 s
    BC, Pendulum-v1      10 episodes of a TD3 expert (mentor's preset, trained once here, seed 0);
                         target score >= 0.90. BC's Pendulum-v1 preset (presets/bc.yaml)
    BC, Pendulum-v1      experts mentor did not train: the scripted one (mentor.envs.experts:
                         pendulum) and, when stable-baselines3 is installed, an SB3 SAC (RL Zoo's
                         settings: learning rate 1e-3, 20,000 steps, seed 0; trained once here,
                         ~6 min on 2 cores); policy_of ppo ("BC") and sac ("BC sac", SAC's preset
                         network); targets: median >= 0.90 and every seed >= 0.90 (issue 11)
    DAgger, CartPole-v1  the PPO expert, method defaults (10 rounds of 5 episodes);
                         target score >= 0.99
    GAIL, CartPole-v1    10 episodes of the PPO expert, GAIL's preset, reward gail and airl;
                         target score >= 0.90
    GAIL, Pendulum-v1    10 episodes of the TD3 expert, GAIL's preset; target score >= 0.85

Times: "train s" is the session's training time (validation and evaluation excluded), "wall s"
the whole ``mentor.train`` call (dataset loading, validation, the final 100-episode evaluation).

    python benchmarks/imitation.py                 # every entry of METHODS, 5 seeds
    python benchmarks/imitation.py --seeds 2 --only BC
    python benchmarks/imitation.py --seeds 10 --only BC --only "BC sac" --env Pendulum-v1

A method is one more entry of ``METHODS`` (GAIL, for instance:
``Entry("GAIL", "gail", "CartPole-v1", "ppo", demos=10, target=0.9)``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import has_sb3, run_worker, table

# Experts mentor trains here, once, with its presets (seed 0): method -> env.
TRAINED_EXPERTS = {"ppo": "CartPole-v1", "td3": "Pendulum-v1"}
# Experts another library trains here, once, when installed: name -> env. SB3's SAC with RL
# Zoo's Pendulum-v1 settings (hyperparams/sac.yml: learning rate 1e-3, 2e4 steps).
SB3_EXPERTS = {"sb3-sac": "Pendulum-v1"}
SB3_STEPS = 20_000
# SAC's preset network (presets/sac.yaml), so that SAC can start from BC's result.
SAC_ACTOR = [
    "method.policy_of=sac",
    "agent.network.activation=relu",
    "agent.network.ortho_init=false",
]
QUIET = ["logging.progress=false", "logging.tensorboard=false"]


@dataclass
class Entry:
    """One row of the benchmark: a method learning one env from one expert."""

    label: str
    method: str
    env_id: str
    expert: str  # 'module:function', or a key of TRAINED_EXPERTS or SB3_EXPERTS
    demos: int | None = None  # episodes recorded for data.path; None: the method records its own
    target: float = 0.95  # normalized score, median over seeds
    min_target: float | None = None  # normalized score, every seed
    max_train_seconds: float | None = None  # median training time
    expert_field: str | None = None  # the method's field naming the expert (DAgger's)
    overrides: list[str] = field(default_factory=list)


METHODS = [
    Entry("BC", "bc", "CartPole-v1", "ppo", demos=10, target=0.95, max_train_seconds=5.0),
    Entry("BC", "bc", "Pendulum-v1", "td3", demos=10, target=0.90),
    Entry("BC", "bc", "Pendulum-v1", "mentor.envs.experts:pendulum", demos=10, target=0.90,
          min_target=0.90),
    Entry("BC", "bc", "Pendulum-v1", "sb3-sac", demos=10, target=0.90, min_target=0.90),
    Entry("BC sac", "bc", "Pendulum-v1", "mentor.envs.experts:pendulum", demos=10, target=0.90,
          min_target=0.90, overrides=SAC_ACTOR),
    Entry("BC sac", "bc", "Pendulum-v1", "sb3-sac", demos=10, target=0.90, min_target=0.90,
          overrides=SAC_ACTOR),
    Entry("DAgger", "dagger", "CartPole-v1", "ppo", target=0.99, expert_field="method.expert"),
    Entry("GAIL", "gail", "CartPole-v1", "ppo", demos=10, target=0.90),
    Entry("GAIL airl", "gail", "CartPole-v1", "ppo", demos=10, target=0.90,
          overrides=["method.reward=airl"]),
    Entry("GAIL", "gail", "Pendulum-v1", "td3", demos=10, target=0.85),
]  # fmt: skip


# --- workers (each in a fresh process) ----------------------------------------------------------


def expert_worker(method: str, folder: str) -> dict:
    """Train an expert once with mentor's preset; returns its run folder."""
    import mentor
    from mentor.experiment import build

    result = mentor.train(build(method=method, env_id=TRAINED_EXPERTS[method], overrides=[
        f"output_dir={folder}", "seed=0", "evaluation.episodes=0", *QUIET]))  # fmt: skip
    return {"run_dir": str(result.run_dir), "seconds": result.train_seconds}


def sb3_expert_worker(name: str, folder: str) -> dict:
    """Train an SB3 expert once (SAC, RL Zoo's settings, seed 0); returns its model file."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    tic = time.perf_counter()
    model = SAC(
        "MlpPolicy",
        gym.make(SB3_EXPERTS[name]),
        learning_rate=1e-3,
        seed=0,
        device="cpu",
        verbose=0,
    )
    model.learn(SB3_STEPS)
    path = Path(folder) / f"{name}.zip"
    model.save(path)
    return {"run_dir": str(path), "seconds": time.perf_counter() - tic}


def expert_policy(expert: str) -> Callable[[np.ndarray], np.ndarray]:
    """The expert as a policy: an SB3 model file (deterministic actions), else what
    ``mentor.agent.policy_from`` reads (a run folder or 'module:function')."""
    from mentor.agent import policy_from

    if not expert.endswith(".zip"):
        return policy_from(expert)
    from stable_baselines3 import SAC

    model = SAC.load(expert, device="cpu")

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(np.asarray(obs, dtype=np.float32), deterministic=True)[0]

    return act


def reference_worker(env_id: str, expert: str) -> dict:
    """Mean return of the expert and of uniformly random actions, 100 episodes each."""
    import gymnasium as gym

    from mentor.data.record import record

    space = gym.make(env_id).action_space
    space.seed(0)

    def random_policy(obs: np.ndarray) -> np.ndarray:
        return np.stack([space.sample() for _ in range(len(obs))])

    returns = {}
    for name, policy in (("expert", expert_policy(expert)), ("random", random_policy)):
        data = record(policy, env_id, {}, 100, seed=10_000_000, num_envs=10)
        returns[name] = float(data.episode_returns().mean())
    return returns


def run_worker_entry(index: int, seed: int, expert: str, folder: str) -> dict:
    """One run of METHODS[index] with ``seed``; its return, times and stop reason."""
    import mentor
    from mentor.data.load import save_dataset
    from mentor.data.record import record
    from mentor.experiment import build

    entry = METHODS[index]
    overrides = [f"seed={seed}", f"output_dir={folder}", *QUIET, *entry.overrides]
    if entry.demos:
        data = record(expert_policy(expert), entry.env_id, {}, entry.demos, seed=1000 * seed,
                      num_envs=entry.demos)  # fmt: skip
        path = save_dataset(data, Path(folder) / "demos", env_id=entry.env_id)
        overrides.append(f"data.path={path}")
    if entry.expert_field:
        overrides.append(f"{entry.expert_field}={expert}")
    experiment = build(method=entry.method, env_id=entry.env_id, overrides=overrides)
    tic = time.perf_counter()
    result = mentor.train(experiment)
    return {
        "return": result.evaluation.return_mean,
        "train_seconds": result.train_seconds,
        "wall_seconds": time.perf_counter() - tic,
        "stop": result.stop_reason,
    }


# --- the table ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--only", action="append", help="Run the entries with this label only (repeatable)."
    )
    parser.add_argument("--env", default=None, help="Run the entries of this env only.")
    parser.add_argument("--json", default=None, help="Also write the results to this file.")
    parser.add_argument("--worker", choices=["expert", "sb3_expert", "reference", "run"])
    parser.add_argument("--args", default="{}")
    args = parser.parse_args()
    if args.worker:
        kwargs = json.loads(args.args)
        worker = {
            "expert": expert_worker,
            "sb3_expert": sb3_expert_worker,
            "reference": reference_worker,
            "run": run_worker_entry,
        }[args.worker]
        print(json.dumps(worker(**kwargs)))
        return

    entries = [
        (i, e)
        for i, e in enumerate(METHODS)
        if args.only in (None, []) or e.label in args.only
        if args.env in (None, e.env_id)
    ]
    if not has_sb3():
        skipped = sorted({e.expert for _, e in entries} & set(SB3_EXPERTS))
        if skipped:
            print(
                f"  stable-baselines3 is not installed: no {', '.join(skipped)} rows",
                file=sys.stderr,
            )
        entries = [(i, e) for i, e in entries if e.expert not in SB3_EXPERTS]
    scratch = tempfile.mkdtemp(prefix="mentor-imitation-")
    experts = {e.expert: e.expert for _, e in entries}
    for method in sorted({e.expert for _, e in entries} & set(TRAINED_EXPERTS)):
        trained = call("expert", method=method, folder=scratch)
        print(f"  {method} expert trained in {trained['seconds']:.1f} s", file=sys.stderr)
        experts[method] = trained["run_dir"]
    for name in sorted({e.expert for _, e in entries} & set(SB3_EXPERTS)):
        trained = call("sb3_expert", name=name, folder=scratch)
        print(f"  {name} expert trained in {trained['seconds']:.1f} s", file=sys.stderr)
        experts[name] = trained["run_dir"]
    references = {}
    for _, entry in entries:
        key = (entry.env_id, entry.expert)
        if key not in references:
            references[key] = call("reference", env_id=entry.env_id, expert=experts[entry.expert])
            print(f"  {key}: {references[key]}", file=sys.stderr)

    rows, results = [], []
    for index, entry in entries:
        reference = references[(entry.env_id, entry.expert)]
        runs = []
        for seed in range(args.seeds):
            folder = tempfile.mkdtemp(dir=scratch)
            r = call("run", index=index, seed=seed, expert=experts[entry.expert], folder=folder)
            r["score"] = (r["return"] - reference["random"]) / (
                reference["expert"] - reference["random"]
            )
            runs.append(r)
            print(f"  {entry.label} {entry.env_id} seed {seed}: {r}", file=sys.stderr)
        score = statistics.median(r["score"] for r in runs)
        train = statistics.median(r["train_seconds"] for r in runs)
        low = min(r["score"] for r in runs)
        met = (
            score >= entry.target
            and (entry.min_target is None or low >= entry.min_target)
            and (entry.max_train_seconds is None or train < entry.max_train_seconds)
        )
        target = (
            f">= {entry.target:.2f}"
            + (f", min >= {entry.min_target:.2f}" if entry.min_target is not None else "")
            + (f", < {entry.max_train_seconds:g} s" if entry.max_train_seconds else "")
        )
        rows.append([
            entry.label, entry.env_id, expert_name(entry.expert),
            f"{entry.demos} ep" if entry.demos else "expert",
            f"{reference['random']:.0f} / {reference['expert']:.0f}",
            f"{score:.3f}", f"{low:.3f}",
            f"{statistics.median(r['return'] for r in runs):.1f}", f"{train:.2f}",
            f"{statistics.median(r['wall_seconds'] for r in runs):.2f}", target,
            "yes" if met else "**no**",
        ])  # fmt: skip
        results.append({"entry": entry.__dict__, "reference": reference, "runs": runs})
    header = ["method", "env", "expert", "data", "random / expert", "median score", "min score",
              "median return", "train s", "wall s", "target", "met"]  # fmt: skip
    print(f"\nImitation, median over {args.seeds} seeds (score: 0 random, 1 expert)")
    print(table(rows, header))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def expert_name(expert: str) -> str:
    """How the table names an expert: who trained it, or the scripted function."""
    if expert in TRAINED_EXPERTS:
        return f"mentor {expert}"
    if expert in SB3_EXPERTS:
        return "SB3 " + expert.removeprefix("sb3-").upper()
    return "scripted " + expert.rpartition(":")[2]


def call(worker: str, **kwargs: object) -> dict:
    return run_worker(__file__, ["--worker", worker, "--args", json.dumps(kwargs)])


if __name__ == "__main__":
    main()
