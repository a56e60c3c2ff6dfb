"""The Box2D tasks users try after CartPole (issue 19): PPO on LunarLander-v3 and SAC on
LunarLanderContinuous-v3, mentor's presets against Stable-Baselines3 with RL Zoo's
hyperparameters, time to a deterministic 20-episode mean return of 200, in one invocation.

Targets: PPO LunarLander-v3 in less wall time than SB3 + RL Zoo, every seed solving; SAC
LunarLanderContinuous-v3 at least 3x faster than SB3 + RL Zoo.

    python benchmarks/box2d.py --tasks ppo --seeds 3
    python benchmarks/box2d.py --tasks sac --seeds 3 --no-sb3
    python benchmarks/box2d.py --tasks sac --seeds 1 --budget 30000   # steps/s only
    python benchmarks/box2d.py --tasks sac --seeds 1 --budget 30000 \
        --set "agent.network.hidden_sizes=[400,300]" --set method.n_step=1   # RL Zoo's values
    python benchmarks/box2d.py --floor   # SAC's update in plain torch: what no library can beat

``--budget`` cuts both libraries' runs to that many env steps (the learning-rate schedules
shrink with it): too few to solve, enough to compare their training rates on the same work.
``--set`` changes mentor's preset alone (SB3 keeps RL Zoo's values). mentor's SAC preset
differs from RL Zoo's in two values measured here, [64, 64] networks and 3-step returns; the
example with ``--set`` above gives mentor RL Zoo's own, to compare the libraries on the same work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    compare,
    has_sb3,
    mentor_time_to_solve,
    report,
    run_worker,
    sb3_time_to_solve,
    solve_table,
    table,
)

# task: (method, env id, evaluate every, RL Zoo's budget)
TASKS = {
    "ppo": ("ppo", "LunarLander-v3", 32_768, 1_000_000),
    "sac": ("sac", "LunarLanderContinuous-v3", 10_000, 500_000),
}
TARGET, EPISODES = 200.0, 20


def sb3_worker(task: str, seed: int, budget: int | None = None) -> dict:
    """SB3 with RL Zoo's values (ppo.yml and sac.yml, LunarLander(Continuous)-v2)."""
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    _, env_id, every, zoo_budget = TASKS[task]
    budget = budget or zoo_budget
    eval_env = make_vec_env(env_id, n_envs=EPISODES, seed=seed + 1_000_000)
    if task == "ppo":
        env = make_vec_env(env_id, n_envs=16, seed=seed)
        model = PPO("MlpPolicy", env, n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999,
                    n_epochs=4, ent_coef=0.01, seed=seed, device="cpu")  # fmt: skip
    else:
        env = make_vec_env(env_id, n_envs=1, seed=seed)

        def linear(start: float):
            return lambda remaining: remaining * start

        model = SAC("MlpPolicy", env, batch_size=256, learning_rate=linear(7.3e-4),
                    buffer_size=1_000_000, ent_coef="auto", gamma=0.99, tau=0.01, train_freq=1,
                    gradient_steps=1, learning_starts=10_000,
                    policy_kwargs={"net_arch": [400, 300]}, seed=seed, device="cpu")  # fmt: skip
    return sb3_time_to_solve(model, eval_env, TARGET, every, EPISODES, budget)


def floor_worker(updates: int = 2000, warmup: int = 200) -> dict:
    """The least work an SAC update with RL Zoo's LunarLanderContinuous shapes can be: plain torch,
    no library around it (a batch of 256 drawn from a tensor, two [400, 300] ReLU critics, their
    targets, a [400, 300] Gaussian actor, the entropy weight, three Adam steps, the Polyak
    average), one thread: updates/s, and the matrix products' GFLOP/s."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(1)
    obs_size, act_size, batch, gamma, tau = 8, 2, 256, 0.99, 0.01

    def mlp(inputs: int, outputs: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(inputs, 400), nn.ReLU(), nn.Linear(400, 300), nn.ReLU(),
                             nn.Linear(300, outputs))  # fmt: skip

    actor = mlp(obs_size, 2 * act_size)
    critics = nn.ModuleList([mlp(obs_size + act_size, 1) for _ in range(2)])
    targets = nn.ModuleList([mlp(obs_size + act_size, 1) for _ in range(2)])
    targets.load_state_dict(critics.state_dict())
    log_alpha = torch.zeros(1, requires_grad=True)
    opt_actor = torch.optim.Adam(actor.parameters(), 7.3e-4)
    opt_critic = torch.optim.Adam(critics.parameters(), 7.3e-4)
    opt_alpha = torch.optim.Adam([log_alpha], 7.3e-4)
    data = {"obs": torch.randn(100_000, obs_size), "act": torch.rand(100_000, act_size) * 2 - 1,
            "rew": torch.randn(100_000), "next": torch.randn(100_000, obs_size),
            "done": torch.zeros(100_000)}  # fmt: skip

    def policy(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = actor(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        raw = mean + std * torch.randn_like(mean)
        action = torch.tanh(raw)
        log_prob = (-0.5 * ((raw - mean) / std) ** 2 - std.log() - 0.9189385).sum(-1)
        return action, log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1)

    def q(nets: nn.ModuleList, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], -1)
        return torch.min(nets[0](x), nets[1](x)).squeeze(-1)

    def update() -> None:
        i = torch.randint(0, 100_000, (batch,))
        obs, act, rew, nxt, done = (data[k][i] for k in ("obs", "act", "rew", "next", "done"))
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            next_act, next_logp = policy(nxt)
            y = rew + gamma * (1 - done) * (q(targets, nxt, next_act) - alpha * next_logp)
        x = torch.cat([obs, act], -1)
        critic_loss = sum(0.5 * (c(x).squeeze(-1) - y).pow(2).mean() for c in critics)
        opt_critic.zero_grad()
        critic_loss.backward()
        opt_critic.step()
        new_act, logp = policy(obs)
        actor_loss = (alpha * logp - q(critics, obs, new_act)).mean()
        opt_actor.zero_grad()
        actor_loss.backward(inputs=list(actor.parameters()))
        opt_actor.step()
        alpha_loss = -(log_alpha * (logp.detach() - act_size)).mean()
        opt_alpha.zero_grad()
        alpha_loss.backward()
        opt_alpha.step()
        with torch.no_grad():
            for p, t in zip(critics.parameters(), targets.parameters(), strict=True):
                t.lerp_(p, tau)

    for _ in range(warmup):
        update()
    tic = time.perf_counter()
    for _ in range(updates):
        update()
    rate = updates / (time.perf_counter() - tic)

    # Multiply-adds a sample. One forward pass of a [400, 300] MLP is its layers' products; a
    # backward pass to the weights and the inputs is two more, to the inputs alone one more.
    def macs(inputs: int, outputs: int) -> int:
        return inputs * 400 + 400 * 300 + 300 * outputs

    critic, act = macs(obs_size + act_size, 1), macs(obs_size, 2 * act_size)
    per_sample = 2 * critic + act  # the targets' critics on the next state, and its action
    per_sample += 2 * 3 * critic  # the critics' loss: forward, backward to weights and inputs
    per_sample += 3 * act + 2 * 2 * critic  # the actor's loss: through the critics to the action
    gflops = 2 * per_sample * batch * rate / 1e9
    return {"ups": rate, "gflops": gflops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--worker", choices=["mentor", "sb3", "floor"])
    parser.add_argument("--task", choices=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=None, help="env steps (default RL Zoo's)")
    parser.add_argument("--floor", action="store_true", help="SAC's update floor alone")
    args = parser.parse_args()
    if args.floor:
        floor = run_worker(__file__, ["--worker", "floor"])
        print("SAC update with RL Zoo's LunarLanderContinuous shapes, plain torch, one thread")
        print(table([[f"{floor['ups']:.1f}", f"{floor['gflops']:.0f}"]],
                    ["updates/s", "matrix-product GFLOP/s"]))  # fmt: skip
        return
    if args.worker == "floor":
        report(floor_worker())
        return
    if args.worker:
        method, env_id, every, _ = TASKS[args.task]
        if args.worker == "sb3":
            report(sb3_worker(args.task, args.seed, args.budget))
        else:
            report(mentor_time_to_solve(method, env_id, args.seed, TARGET, every, EPISODES,
                                        args.budget, args.overrides))  # fmt: skip
        return
    libraries = ["mentor", "sb3"] if has_sb3() and not args.no_sb3 else ["mentor"]
    for task in args.tasks:
        method, env_id, _, budget = TASKS[task]

        def args_for(lib: str, seed: int, task: str = task) -> list[str]:
            extra = [f"--set={o}" for o in args.overrides] if lib == "mentor" else []
            extra += ["--budget", str(args.budget)] if args.budget else []
            return ["--worker", lib, "--task", task, "--seed", str(seed), *extra]

        results, rows = compare(__file__, libraries, args.seeds, args_for, tag=f"{task} ")
        print(f"\n{method.upper()} {env_id}: time to a deterministic {EPISODES}-episode mean "
              f"return >= {TARGET:g} (budget {args.budget or budget:,} steps)")  # fmt: skip
        print(solve_table(rows, results))


if __name__ == "__main__":
    main()
