"""What the benchmarks share: time-to-solve workers for mentor and SB3, fresh processes, tables.

Time-to-solve is seconds of *training* (evaluation time excluded) until a deterministic
evaluation of ``episodes`` episodes, run every ``eval_every`` env steps, reaches ``target``.
Each seed runs in a fresh process, so the peak RSS reported is that run's own.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def mentor_time_to_solve(
    method: str,
    env_id: str,
    seed: int,
    target: float,
    eval_every: int,
    episodes: int,
    budget: int | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Train mentor's preset for (method, env) until the target; returns the run's figures."""
    from mentor import api
    from mentor.experiment import build

    out = tempfile.mkdtemp(prefix="mentor-bench-")
    experiment = build(
        method=method,
        env_id=env_id,
        overrides=[
            f"seed={seed}",
            f"output_dir={out}",
            *([f"stopping.total_steps={budget}"] if budget else []),
            f"stopping.target_return={target}",
            f"validation.every_steps={eval_every}",
            f"validation.episodes={episodes}",
            f"validation.num_envs={min(episodes, 20)}",
            "evaluation.episodes=0",
            "logging.progress=false",
            "logging.tensorboard=false",
            "checkpoints.keep_best=false",
            *(overrides or []),
        ],
    )
    result = api.train(experiment)
    with open(result.run_dir / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    updates = last.get("time/gradient_steps") or last.get("time/updates") or 0
    return {
        "solved": result.stop_reason.startswith("target"),
        "seconds": result.train_seconds,
        "steps": result.total_steps,
        "updates": int(float(updates)),
    }


def sb3_time_to_solve(
    model: Any, eval_env: Any, target: float, eval_every: int, episodes: int, budget: int
) -> dict[str, Any]:
    """Train an SB3 model until a deterministic evaluation reaches the target."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    class Solve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_seconds = 0.0
            self.next_eval = eval_every
            self.solved = False

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += eval_every
            tic = time.perf_counter()
            if isinstance(model.get_env(), VecNormalize):  # the statistics trained with, frozen
                sync_envs_normalization(model.get_env(), eval_env)
            mean, _ = evaluate_policy(model, eval_env, episodes, deterministic=True)
            self.eval_seconds += time.perf_counter() - tic
            self.solved = bool(mean >= target)
            return not self.solved

    callback = Solve()
    tic = time.perf_counter()
    model.learn(budget, callback=callback)
    seconds = time.perf_counter() - tic - callback.eval_seconds
    return {
        "solved": callback.solved,
        "seconds": seconds,
        "steps": int(model.num_timesteps),
        "updates": int(getattr(model, "_n_updates", 0)),
    }


def run_worker(
    script: str, args: list[str], python: str = sys.executable, what: str | None = None
) -> dict[str, Any]:
    """Run ``script`` as a worker in a fresh process; returns the JSON line it prints last.
    ``python``: another venv's (a peer library's), run without this venv's paths."""
    env = None
    if python != sys.executable:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run([python, script, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{what or f'worker {args}'} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(
    script: str,
    libraries: list[str],
    seeds: int,
    args_for: Callable[[str, int], list[str]],
    label: Callable[[str], str] = str,
    tag: str = "",
) -> tuple[dict[str, list[dict[str, Any]]], list[list[str]]]:
    """Each seed's run of each library, in a fresh process each (``args_for(library, seed)``:
    the worker's arguments), the libraries alternating so that a machine's drift falls on all
    alike. Returns the results by library and the table's rows: per seed, then the medians."""
    results: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libraries}
    rows = []
    for seed in range(seeds):
        for lib in libraries:
            r = run_worker(script, args_for(lib, seed))
            results[lib].append(r)
            rows.append(seed_rows(label(lib), seed, r))
            print(f"  {tag}{lib} seed {seed}: {r}", file=sys.stderr, flush=True)
    rows += [median_row(label(lib), results[lib]) for lib in libraries]
    return results, rows


def solve_table(rows: list[list[str]], results: dict[str, list[dict[str, Any]]],
                ours: str = "mentor") -> str:  # fmt: skip
    """The time-to-solve table, and with SB3's runs the ratio of the median times."""
    text = table(rows, HEADER)
    if "sb3" in results:
        text += f"\n\nmedian time-to-solve, SB3 / {ours}: "
        text += f"{time_ratio(results['sb3'], results[ours]):.1f}x"
    return text


def time_ratio(slower: list[dict[str, Any]], faster: list[dict[str, Any]]) -> float:
    """The ratio of the median times-to-solve."""
    return statistics.median(r["seconds"] for r in slower) / statistics.median(
        r["seconds"] for r in faster
    )


def report(result: dict[str, Any]) -> None:
    """Print a worker's result as JSON, with the worker's own peak RSS and rates."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = max(result.get("seconds", 0.0), 1e-9)
    extra = {"sps": result["steps"] / seconds} if "steps" in result else {}
    if "updates" in result:
        extra["ups"] = result["updates"] / seconds
    print(json.dumps({**result, **extra, "rss_mb": rss}))


def kernels() -> str:
    """mentor's kernels in this benchmark: its workers inherit ``MENTOR_FAST_KERNELS`` from here."""
    if os.environ.get("MENTOR_FAST_KERNELS", "").strip() == "0":
        return "MENTOR_FAST_KERNELS=0: plain torch kernels (nn.Tanh)"
    return "mentor's fast CPU kernels (tanh through sigmoid)"


def has_sb3() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def seed_rows(library: str, seed: int, r: dict[str, Any]) -> list[str]:
    return [library, str(seed), "yes" if r["solved"] else "NO", f"{r['seconds']:.2f}",
            f"{r['steps']:,}", f"{r['sps']:,.0f}", f"{r.get('ups', 0):,.0f}",
            f"{r['rss_mb']:.0f}"]  # fmt: skip


def median_row(library: str, results: list[dict[str, Any]]) -> list[str]:
    def med(key: str) -> float:
        return statistics.median(r.get(key, 0) for r in results)

    return [f"**{library} median**", "", f"{sum(r['solved'] for r in results)}/{len(results)}",
            f"{med('seconds'):.2f}", f"{med('steps'):,.0f}", f"{med('sps'):,.0f}",
            f"{med('ups'):,.0f}", f"{med('rss_mb'):.0f}"]  # fmt: skip


HEADER = ["library", "seed", "solved", "train s", "env steps", "steps/s", "updates/s", "RSS MB"]


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table, columns right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(row: list) -> str:
        return "| " + " | ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def team_returns(
    env_id: str,
    kwargs: dict[str, Any],
    act: Any,
    episodes: int,
    seed: int,
    on_reset: Any = None,
) -> dict[str, Any]:
    """A PettingZoo env played for ``episodes`` episodes by ``act(obs, env) -> actions`` (None:
    random actions, each agent's space seeded by the episode and its index): the per-agent
    mean return (mentor's team return) with its 95% CI. ``on_reset`` is called at each episode's
    start (a scripted policy's memory)."""
    import numpy as np

    from mentor.envs.pettingzoo import make_parallel_env
    from mentor.evaluation.statistics import summarize

    env = make_parallel_env(env_id, kwargs)
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        for index, agent in enumerate(env.possible_agents):
            env.action_space(agent).seed(seed + 1000 * episode + index)
        if on_reset is not None:
            on_reset()
        total = dict.fromkeys(env.possible_agents, 0.0)
        steps = 0
        while env.agents:
            if act is None:
                actions = {a: env.action_space(a).sample() for a in env.agents}
            else:
                actions = act(obs, env)
            obs, rewards, *_ = env.step(actions)
            steps += 1
            for agent, reward in rewards.items():
                total[agent] += reward
        returns.append(float(np.mean(list(total.values()))))
        lengths.append(steps)
    env.close()
    summary = summarize(returns, lengths)
    return {"return": summary.return_mean, "ci": [summary.return_ci_low, summary.return_ci_high]}
