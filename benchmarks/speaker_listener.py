"""Agents with different spaces on mpe2.simple_speaker_listener_v4: random, a scripted policy,
IPPO and MAPPO side by side (agents grouped by space, ``mentor/core/agent_rows.py``).

The speaker sees the goal landmark's color (3 numbers) and says one of 3 words; the listener sees
its velocity, the 3 landmarks' relative positions and the word (11 numbers) and moves one of 5
ways; both are paid minus the listener's squared distance to the goal, every step of the 25.
Returns are per agent: the mean over the two agents of each one's episode return (mentor's team
return; the two are equal here). The scripted policy says the goal's index (its color's largest
channel) and moves the listener to the landmark the word names, along the axis where the
proportional-derivative error is largest. IPPO and MAPPO train their shipped presets in a fresh
process per seed for the budget; the final evaluation is 100 episodes of the best checkpoint.

    python benchmarks/speaker_listener.py                     # 3 seeds, 300,000 env steps
    python benchmarks/speaker_listener.py --seeds 1 --budget 50000 --methods ippo
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_worker, table, team_returns

ENV_ID = "mpe2.simple_speaker_listener_v4"
KWARGS = {"max_cycles": 25}
EPISODES = 100


def scripted(obs: dict) -> dict:
    """The speaker names the goal; the listener moves to the named landmark."""
    import numpy as np

    actions = {}
    if "speaker_0" in obs:
        actions["speaker_0"] = int(np.argmax(obs["speaker_0"]))
    if "listener_0" in obs:
        o = obs["listener_0"]
        velocity, landmarks, word = o[:2], o[2:8].reshape(3, 2), o[8:11]
        error = landmarks[int(np.argmax(word))] - 0.5 * velocity
        axis = int(np.argmax(np.abs(error)))
        if np.abs(error).max() < 0.02:
            actions["listener_0"] = 0  # there: stay
        else:  # 1: -x, 2: +x, 3: -y, 4: +y (mpe2's discrete movement actions)
            actions["listener_0"] = 1 + 2 * axis + int(error[axis] > 0)
    return actions


def play(policy_name: str, episodes: int, seed: int) -> dict:
    """Per-agent mean returns of ``episodes`` episodes of the random or scripted policy."""
    act = None if policy_name == "random" else (lambda obs, env: scripted(obs))
    return team_returns(ENV_ID, KWARGS, act, episodes, seed)


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
            f"env.kwargs={json.dumps(KWARGS)}",
            f"stopping.total_steps={budget}",
            f"validation.every_steps={max(budget // 6, 1)}",
            "validation.episodes=50",
            f"evaluation.episodes={EPISODES}",
            "logging.progress=false",
            "logging.tensorboard=false",
        ],
    )
    result = api.train(experiment)
    evaluation = result.evaluation
    return {
        "return": evaluation.return_mean,
        "ci": [evaluation.return_ci_low, evaluation.return_ci_high],
        "seconds": result.train_seconds,
        "steps": result.total_steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=300_000, help="env steps per run")
    parser.add_argument("--methods", nargs="*", default=["ippo", "mappo"])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--method")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_worker(args.method, args.seed, args.budget)))
        return

    rows = []
    for name in ("random", "scripted"):
        r = play(name, EPISODES, seed=10_000)
        rows.append([name, "", f"{r['return']:.2f}", f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]", ""])
    for method in args.methods:
        results = []
        for seed in range(args.seeds):
            flags = ["--worker", "--method", method, "--seed", str(seed)]
            r = run_worker(__file__, [*flags, "--budget", str(args.budget)])
            results.append(r)
            print(f"  {method} seed {seed}: {r}", flush=True)
            ci = f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
            rows.append([method, str(seed), f"{r['return']:.2f}", ci, f"{r['seconds']:.0f}"])
        rows.append([
            f"**{method} median**", "", f"{statistics.median(r['return'] for r in results):.2f}",
            "", f"{statistics.median(r['seconds'] for r in results):.0f}",
        ])  # fmt: skip
    print(
        f"\n{ENV_ID} {KWARGS}: per-agent mean return of the final {EPISODES}-episode evaluation "
        f"after {args.budget:,} env steps"
    )
    print(table(rows, ["policy", "seed", "return", "95% CI", "train s"]))


if __name__ == "__main__":
    main()
