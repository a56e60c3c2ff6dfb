"""Multi-agent training on mpe2.simple_spread_v3 (3 agents, 25 cycles, local_ratio 0.5): random,
a scripted policy, IPPO and MAPPO side by side, and the throughput of agents as rows.

Returns are per agent: the mean over the 3 agents of each one's episode return (mentor's team
return). The scripted policy assigns each agent a landmark once, at the episode's start (the
assignment of least total distance, of the 3! there are), and moves it there with a
proportional-derivative controller over the 5 discrete actions. IPPO and MAPPO train their shipped
presets (``mentor/presets/{ippo,mappo}.yaml``) in a fresh process per seed until a 20-episode
validation reaches the target, or the budget; the final evaluation is 100 episodes of the best
checkpoint, and its per-agent mean return is what the target is judged on.

BenchMARL's MAPPO (its default config and MLP, ``benchmarks/peers/benchmarl_mappo.py``) trains
beside them with the same budget and seeds, in its own venv (``make bench-benchmarl`` makes
``.venv-benchmarl``: BenchMARL loads simple_spread through torchrl's PettingZoo wrapper, which
needs PettingZoo 1.24's ``pettingzoo.mpe``), one subprocess per seed. Its return is of the final
policy (BenchMARL keeps no best checkpoint), over 100 episodes, in the same per-agent units; it
has no validations, so no steps to the target.

The throughput rows count agent-steps per second (env steps x 3) with 16 and 64 copies: raw
stepping of the PettingZoo envs with random actions (a Python loop over copies), mentor's
``MultiAgentVecEnv`` on the same actions (the rows' bookkeeping and checks added), PPO's
collection (the policy's actions for every row in one call, storage, the rows), and whole IPPO
training with the preset's rollout shape. The last table is the cost of the actor's forward pass
for one step of every agent: one call with all agents as rows, against one call per agent (what
a loop over agents, or a single-agent path applied to each agent, pays).

    python benchmarks/multiagent.py                       # everything, 5 seeds
    python benchmarks/multiagent.py --seeds 1 --budget 200000 --methods mappo
    python benchmarks/multiagent.py --benchmarl ''   # without BenchMARL
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table, team_returns

ENV_ID = "mpe2.simple_spread_v3"
KWARGS = {"N": 3, "local_ratio": 0.5, "max_cycles": 25}
TARGET = -20.0  # per-agent mean return (the MAPPO paper's accepted result: issue 12)
EPISODES = 100
ROOT = Path(__file__).resolve().parent.parent
BENCHMARL_PYTHON = ROOT / ".venv-benchmarl" / "bin" / "python"
BENCHMARL_SCRIPT = ROOT / "benchmarks" / "peers" / "benchmarl_mappo.py"


# --- random and scripted -------------------------------------------------------------------------


class Scripted:
    """Each agent to the landmark of the assignment of least total distance, chosen at reset."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.targets: dict[str, int] | None = None

    def reset(self) -> None:
        self.targets = None

    def __call__(self, obs: dict) -> dict:
        import numpy as np

        agents = sorted(obs)
        if self.targets is None:
            # landmark positions relative to each agent: obs[4 : 4 + 2n]
            rel = {a: np.asarray(obs[a][4 : 4 + 2 * self.n]).reshape(self.n, 2) for a in agents}
            best = min(
                itertools.permutations(range(self.n)),
                key=lambda p: sum(np.linalg.norm(rel[a][p[i]]) for i, a in enumerate(agents)),
            )
            self.targets = {a: best[i] for i, a in enumerate(agents)}
        actions = {}
        for a in agents:
            o = np.asarray(obs[a])
            velocity, offset = o[0:2], o[4 + 2 * self.targets[a] : 6 + 2 * self.targets[a]]
            # proportional-derivative; the gain and dead band scored best of a small grid (kd
            # 0-1.5, band 0.02-0.1: -8.5 at 0.3 and 0.05 over 40 episodes, -13.5 without kd)
            push = offset - 0.3 * velocity
            if np.abs(push).max() < 0.05:
                actions[a] = 0  # no-op
            elif abs(push[0]) >= abs(push[1]):
                actions[a] = 2 if push[0] > 0 else 1  # +x / -x
            else:
                actions[a] = 4 if push[1] > 0 else 3  # +y / -y
        return actions


def play(policy_name: str, episodes: int, seed: int) -> dict:
    """Per-agent mean returns of ``episodes`` episodes of the random or scripted policy."""
    if policy_name == "random":
        return team_returns(ENV_ID, KWARGS, None, episodes, seed)
    scripted = Scripted(KWARGS["N"])
    act = lambda obs, env: scripted(obs)  # noqa: E731
    return team_returns(ENV_ID, KWARGS, act, episodes, seed, on_reset=scripted.reset)


# --- IPPO and MAPPO ------------------------------------------------------------------------------


def train_worker(method: str, seed: int, budget: int) -> dict:
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(
        method=method,
        env_id=ENV_ID,
        overrides=[
            f"seed={seed}",
            f"output_dir={out}",
            f"stopping.total_steps={budget}",
            "validation.episodes=50",
            f"evaluation.episodes={EPISODES}",
            "logging.progress=false",
            "logging.tensorboard=false",
        ],
    )
    result = api.train(experiment)
    evaluation = result.evaluation
    first = next((v for v in result.validations if v["return_mean"] >= TARGET), None)
    seconds = None
    if first is not None:  # the run's seconds at that validation's step (validations included)
        with open(result.run_dir / "metrics.csv") as f:
            rows = [row for row in csv.DictReader(f) if int(float(row["step"])) <= first["step"]]
        seconds = float(rows[-1]["time"]) if rows else None
    return {
        "return": evaluation.return_mean,
        "ci": [evaluation.return_ci_low, evaluation.return_ci_high],
        "seconds": result.train_seconds,
        "steps": result.total_steps,
        "target_step": None if first is None else first["step"],
        "target_seconds": seconds,
        "reached": evaluation.return_mean >= TARGET,
    }


# --- BenchMARL -----------------------------------------------------------------------------------


def benchmarl_run(python: str, seed: int, budget: int) -> dict:
    """BenchMARL's MAPPO for ``budget`` env steps (frames) in its own venv's fresh process."""
    args = ["--frames", str(budget), "--seed", str(seed), "--episodes", str(EPISODES)]
    return run_worker(str(BENCHMARL_SCRIPT), args, python, f"BenchMARL seed {seed}")


def benchmarl_rows(python: str, seeds: int, budget: int) -> list[list[str]]:
    """Table rows of BenchMARL's runs, one per seed and their median, the CI as mentor's."""
    from mentor.evaluation.statistics import summarize

    name, rows, results = "benchmarl-mappo", [], []
    for seed in range(seeds):
        r = benchmarl_run(python, seed, budget)
        results.append(r)
        brief = {k: r[k] for k in ("env_steps", "train_seconds", "fps", "return")}
        print(f"  {name} seed {seed}: {brief}", flush=True)
        ci = summarize(r["returns"], [KWARGS["max_cycles"]] * len(r["returns"]))
        rows.append(
            [
                name,
                str(seed),
                f"{r['return']:.2f}",
                f"[{ci.return_ci_low:.2f}, {ci.return_ci_high:.2f}]",
                "",
                "",
                f"{r['train_seconds']:.0f}",
                "yes" if r["return"] >= TARGET else "NO",
            ]
        )
    rows.append(
        [
            f"**{name} median**",
            "",
            f"{statistics.median(r['return'] for r in results):.2f}",
            "",
            "",
            "",
            f"{statistics.median(r['train_seconds'] for r in results):.0f}",
            f"{sum(r['return'] >= TARGET for r in results)}/{len(results)}",
        ]
    )
    return rows


# --- throughput ----------------------------------------------------------------------------------


def throughput_worker(copies: int) -> dict:
    """Agent-steps/s: raw PettingZoo stepping, mentor's rows, PPO's collection, IPPO training."""
    import numpy as np
    import torch

    from mentor import api
    from mentor.agent import Agent
    from mentor.core.normalize import RewardScaler
    from mentor.core.storage import RolloutStorage
    from mentor.core.vec_env import VecEnv
    from mentor.envs.pettingzoo import make_parallel_env
    from mentor.experiment import build
    from mentor.methods.ppo import collect

    torch.set_num_threads(1)
    steps, agents = 400, KWARGS["N"]  # vector steps per measurement
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 5, size=(steps, copies * agents))
    envs = [make_parallel_env(ENV_ID, KWARGS) for _ in range(copies)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    tic = time.perf_counter()
    for row in actions:
        for i, env in enumerate(envs):
            if not env.agents:
                env.reset()
            live = env.agents
            env.step({a: int(row[i * agents + j]) for j, a in enumerate(live)})
    out = {"raw": steps * copies * agents / (time.perf_counter() - tic)}

    venv = VecEnv.make(ENV_ID, KWARGS, copies)
    venv.reset(seed=0)
    tic = time.perf_counter()
    for row in actions:
        venv.step(row)
    out["rows"] = steps * copies * agents / (time.perf_counter() - tic)

    experiment = build(method="ippo", env_id=ENV_ID)
    agent = Agent.build(experiment, venv.observation_space, venv.action_space, venv.agents_spec)
    dist, length = agent.policy.dist, experiment.method.num_steps
    storage = RolloutStorage(
        length, venv.num_envs, venv.obs_shape, torch.float32, dist.action_shape, dist.action_dtype
    )
    obs, scaler = venv.reset(seed=0), RewardScaler(venv.num_envs, 0.99, enabled=False)
    rounds = max(1, steps // length)
    tic = time.perf_counter()
    for _ in range(rounds):
        obs, _ = collect(agent.policy, venv, storage, obs, scaler, torch.device("cpu"))
    out["collect"] = rounds * length * venv.num_envs / (time.perf_counter() - tic)
    venv.close()

    folder = tempfile.mkdtemp(prefix="mentor-bench-")
    budget = 20 * length * copies
    experiment = build(
        method="ippo",
        env_id=ENV_ID,
        overrides=[
            f"env.num_envs={copies}",
            f"output_dir={folder}",
            f"stopping.total_steps={budget}",
            f"validation.every_steps={10 * budget}",
            "evaluation.episodes=0",
            "logging.progress=false",
            "logging.tensorboard=false",
        ],
    )
    result = api.train(experiment)
    out["train"] = result.total_steps * agents / result.train_seconds
    return out


def network_worker() -> dict:
    """µs of the actor's forward pass for one step of every agent of every copy: all agents as
    rows of one call, or one call per agent, for 16 and 64 copies."""
    import torch

    from mentor.agent import Agent
    from mentor.core.vec_env import VecEnv
    from mentor.experiment import build

    torch.set_num_threads(1)
    venv = VecEnv.make(ENV_ID, KWARGS, 1)
    experiment = build(method="ippo", env_id=ENV_ID)
    agent = Agent.build(experiment, venv.observation_space, venv.action_space, venv.agents_spec)
    policy, agents = agent.policy.eval(), venv.num_agents
    venv.close()
    out = {}
    for copies in (16, 64):
        rows = torch.randn(copies * agents, venv.obs_shape[0])
        parts = list(rows.view(copies, agents, -1).transpose(0, 1))
        with torch.inference_mode():
            for name, call in (
                ("rows", lambda rows=rows: policy.predict(rows, False)),
                ("per_agent", lambda parts=parts: [policy.predict(p, False) for p in parts]),
            ):
                for _ in range(50):
                    call()
                times = []
                for _ in range(7):
                    tic = time.perf_counter()
                    for _ in range(300):
                        call()
                    times.append((time.perf_counter() - tic) / 300)
                out[f"{name}_{copies}"] = statistics.median(times) * 1e6
    return out


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=2_000_000, help="env steps per run")
    parser.add_argument("--methods", nargs="*", default=["ippo", "mappo"])
    parser.add_argument(
        "--benchmarl",
        metavar="PATH_TO_PYTHON",
        default=str(BENCHMARL_PYTHON) if BENCHMARL_PYTHON.exists() else None,
        help="the python of BenchMARL's venv (default: .venv-benchmarl's, if made); '' skips it",
    )
    parser.add_argument("--worker", choices=["train", "throughput", "network"])
    parser.add_argument("--method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copies", type=int, default=16)
    args = parser.parse_args()
    if args.worker == "train":
        print(json.dumps(train_worker(args.method, args.seed, args.budget)))
        return
    if args.worker == "throughput":
        print(json.dumps(throughput_worker(args.copies)))
        return
    if args.worker == "network":
        print(json.dumps(network_worker()))
        return

    if args.benchmarl is None:
        print("BenchMARL skipped: no .venv-benchmarl (`make bench-benchmarl` makes it)", flush=True)
    elif args.benchmarl and shutil.which(args.benchmarl) is None:
        parser.error(f"--benchmarl {args.benchmarl}: no such program")

    rows = []
    for name in ("random", "scripted"):
        r = play(name, EPISODES, seed=10_000)
        rows.append(
            [
                name,
                "",
                f"{r['return']:.2f}",
                f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]",
                "",
                "",
                "",
                "",
            ]
        )
    for method in args.methods:
        results = []
        for seed in range(args.seeds):
            r = run_worker(
                __file__,
                [
                    "--worker",
                    "train",
                    "--method",
                    method,
                    "--seed",
                    str(seed),
                    "--budget",
                    str(args.budget),
                ],
            )
            results.append(r)
            print(f"  {method} seed {seed}: {r}", flush=True)
            rows.append(
                [
                    method,
                    str(seed),
                    f"{r['return']:.2f}",
                    f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]",
                    "never" if r["target_step"] is None else f"{r['target_step']:,}",
                    "" if r["target_seconds"] is None else f"{r['target_seconds']:.0f}",
                    f"{r['seconds']:.0f}",
                    "yes" if r["reached"] else "NO",
                ]
            )
        reached = [r for r in results if r["target_step"] is not None]
        rows.append(
            [
                f"**{method} median**",
                "",
                f"{statistics.median(r['return'] for r in results):.2f}",
                "",
                f"{statistics.median(r['target_step'] for r in reached):,.0f}" if reached else "",
                f"{statistics.median(r['target_seconds'] for r in reached):.0f}" if reached else "",
                f"{statistics.median(r['seconds'] for r in results):.0f}",
                f"{sum(r['reached'] for r in results)}/{len(results)}",
            ]
        )
    if args.benchmarl:
        rows += benchmarl_rows(args.benchmarl, args.seeds, args.budget)
    print(
        f"\n{ENV_ID} {KWARGS}: per-agent mean return of the final {EPISODES}-episode "
        f"evaluation after {args.budget:,} env steps (target >= {TARGET:g} within 2M env steps "
        "and 15 minutes); first validation (50 episodes) at or above the target: its env step "
        "and the run's seconds then"
        + (
            "; benchmarl-mappo: the final policy (no validations, no best checkpoint), its "
            "budget rounded up to whole batches of 6,000 env steps"
            if args.benchmarl
            else ""
        )
    )
    header = ["policy", "seed", "return", "95% CI", "to target: steps", "s", "train s", "final"]
    print(table(rows, header))

    rates = {
        copies: run_worker(__file__, ["--worker", "throughput", "--copies", str(copies)])
        for copies in (16, 64)
    }
    labels = {
        "raw": "raw PettingZoo stepping, random actions",
        "rows": "mentor's MultiAgentVecEnv, the same actions",
        "collect": "PPO's collection (policy, storage, rows)",
        "train": "IPPO training, the preset's rollout shape",
    }
    rows = [[label, *(f"{rates[c][key]:,.0f}" for c in (16, 64))] for key, label in labels.items()]
    print(f"\nagent-steps/s ({KWARGS['N']} agents per copy)")
    print(table(rows, ["", "16 copies", "64 copies"]))

    costs = run_worker(__file__, ["--worker", "network"])
    agents = KWARGS["N"]

    def cell(key: str, copies: int) -> str:
        return (
            f"{costs[f'{key}_{copies}']:.0f} ({costs[f'{key}_{copies}'] / (copies * agents):.2f})"
        )

    rows = [
        ["one call, all agents as rows", cell("rows", 16), cell("rows", 64)],
        [f"one call per agent ({agents} calls)", cell("per_agent", 16), cell("per_agent", 64)],
    ]
    print("\nthe actor's forward pass for one step of every agent: µs (µs per agent-step)")
    print(table(rows, ["", "16 copies", "64 copies"]))


if __name__ == "__main__":
    main()
