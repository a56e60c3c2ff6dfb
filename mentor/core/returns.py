"""Returns and advantages as pure functions of a rollout.

Arrays are (T, N): T steps of N envs. ``next_values[t]`` is V of the observation that followed
step t: for a truncated episode that is the final observation (so the return is bootstrapped
from it), for a terminated one it is ignored (the episode has no future).
"""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    waiting: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized Advantage Estimation (Schulman et al. 2016); returns (advantages, returns).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},  done = terminated or truncated

    Truncation stops the recursion (the next step belongs to another episode) but still
    bootstraps: treating it as termination biases returns low near time limits (Pardo et al. 2018).

    ``waiting`` (bool, (T, N)) marks the steps of a turn-based game where a row's agent waits
    for another's move: see ``gae_over_turns``.
    """
    if waiting is not None:
        return gae_over_turns(
            rewards, values, next_values, terminated, truncated, waiting, gamma, gae_lambda
        )
    not_terminated = 1.0 - terminated.to(rewards.dtype)
    not_done = 1.0 - (terminated | truncated).to(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values
    decay = gamma * gae_lambda * not_done
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    return advantages, advantages + values


def gae_over_turns(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    waiting: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over each agent's own decisions, for turn-based games (agents as rows).

    A row's waiting steps (another agent moves) are not decisions of its agent: what they bring
    belongs to the agent's last decision before them. So a decision at t is followed, in the
    agent's own time, by its next decision t': its reward is r_t plus every waiting step's
    reward in between (undiscounted: one decision is one step of the agent's time), it ends the
    episode if one of those steps did (the other agent's move can win the game), and it
    bootstraps from V(s_t'). A waiting step's own advantage is 0 (it is not learned from).

    At the rollout's end a row that waits bootstraps from the value of the observation it
    waits on; the rewards of that wait arrive in the next rollout, at waiting steps before the
    row's first decision there, and are dropped: one cut per row per rollout.
    """
    dtype = rewards.dtype
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])  # the advantage of the row's next decision
    # What lies between a step and the row's next decision: waits (``stretch``), their summed
    # rewards, whether one ended the episode, and V of the observation after the last of them.
    stretch = torch.zeros_like(waiting[0])
    later_reward = torch.zeros_like(rewards[0])
    later_terminated = torch.zeros_like(terminated[0])
    later_truncated = torch.zeros_like(truncated[0])
    next_value = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        wait = waiting[t]
        ends = terminated[t] | truncated[t]
        # A decision (or a step not learned from): its own outcome, then the waits after it.
        reward = rewards[t] + later_reward
        term = terminated[t] | later_terminated
        done = term | truncated[t] | later_truncated
        bootstrap = torch.where(stretch, next_value, next_values[t])
        delta = reward + gamma * (1.0 - term.to(dtype)) * bootstrap - values[t]
        decided = delta + gamma * gae_lambda * (1.0 - done.to(dtype)) * running
        advantages[t] = torch.where(wait, 0.0, decided)
        # What the step before sees. A wait joins the stretch; one that ends the episode starts
        # it afresh (what follows belongs to the next episode).
        fresh = ~stretch | ends
        running = torch.where(wait, torch.where(ends, 0.0, running), decided)
        later_reward = torch.where(wait, rewards[t] + torch.where(fresh, 0.0, later_reward), 0.0)
        later_terminated = wait & (terminated[t] | (later_terminated & ~fresh))
        later_truncated = wait & (truncated[t] | (later_truncated & ~fresh))
        next_value = torch.where(wait & ~fresh, next_value, next_values[t])
        stretch = wait
    return advantages, advantages + values


def vtrace(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    log_rhos: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace (Espeholt et al. 2018, IMPALA §4): value targets and policy-gradient advantages
    for a policy pi from steps a behaviour policy mu took; returns (advantages, targets).

    rho_t = min(rho_bar, pi/mu),  c_t = lambda * min(c_bar, pi/mu),  log_rhos = log pi - log mu
    delta_t = rho_t * (r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t))
    v_t     = V(s_t) + delta_t + gamma * c_t * (1 - done_t) * (v_{t+1} - V(s_{t+1}))
    A_t     = rho_t * (r_t + gamma * (1 - terminated_t) * v'_{t+1} - V(s_t))

    where v'_{t+1} is v_{t+1} within an episode and V(s_{t+1}) after a truncation (the episode's
    final observation: bootstrapped, not corrected past the end), as in ``gae``. On-policy
    (pi = mu) the targets are GAE's returns; the truncated weights bound the variance that
    importance ratios of a lagging behaviour policy would bring.
    """
    ratios = log_rhos.exp()
    rhos = ratios.clamp(max=rho_bar)
    cs = gae_lambda * ratios.clamp(max=c_bar)
    not_terminated = 1.0 - terminated.to(rewards.dtype)
    not_done = 1.0 - (terminated | truncated).to(rewards.dtype)
    deltas = rhos * (rewards + gamma * not_terminated * next_values - values)
    decay = gamma * cs * not_done
    corrections = torch.empty_like(rewards)  # v_t - V(s_t)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        corrections[t] = running
    targets = values + corrections
    later = torch.cat([corrections[1:], torch.zeros_like(corrections[:1])])  # v_{t+1} - V(s_{t+1})
    next_targets = next_values + not_done * later
    advantages = rhos * (rewards + gamma * not_terminated * next_targets - values)
    return advantages, targets
