"""What a continual run keeps of each finished task, as loss terms an update adds to its own.

Each is one more named term in the method's loss dict (``loss/ewc``, ``loss/l2``,
``loss/rehearsal``), restricted to the parameters the optimizer at hand trains: a method asks
``terms(params)`` and adds what it gets (PPO: ``ppo_update(..., penalty=...)``). At a task's
end the run hands each the states the policy visited there (``task_end``).

    EWC          strength/2 x sum over finished tasks k and parameters p of F_k[p] (p - p*_k)^2:
                 F_k the diagonal of the policy's Fisher information on task k, the mean over
                 states s of task k and actions a drawn from the policy of (d log pi(a|s)/dp)^2;
                 p*_k the parameters at task k's end (Kirkpatrick et al. 2017)
    online EWC   one Fisher, F <- decay x F + F_k, and the last task's parameters (Schwarz et al.
                 2018): memory that does not grow with the tasks
    L2           strength/2 x sum (p - p*)^2 toward the last task's parameters, unweighted
    rehearsal    strength x the mean of -log pi_now(a_k | s_k) over a batch of kept states s_k
                 of the finished tasks and the actions a_k the policy took there at the task's
                 end (its mode): behaviour cloning of the old policy (policy-distillation
                 rehearsal, as in Rusu et al. 2016 and Continual World's "reservoir" baselines)

The Fisher is taken on the actor's log-probabilities (the critic has no distribution); with
separate actor and critic bodies the critic is not held. Everything is saved in checkpoints:
the Fishers and anchors as tensors by parameter name, the kept states and actions, and the
stream that draws the rehearsal batches.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Keeper:
    """The interface: loss terms over some parameters, updated at each task's end."""

    def terms(self, params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def task_end(self, policy: nn.Module, states: torch.Tensor, seed: int) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError


def fisher_diagonal(policy: Any, states: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The mean over ``states`` of (d log pi(a|s) / dp)^2, a drawn from the policy (its own
    seeded stream: the run's random streams are left as they were), per trainable parameter."""
    named = {n: p for n, p in policy.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in named.items()}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for state in states:
            params = policy.policy_params(state.unsqueeze(0))
            action = policy.dist.sample(params.detach(), False)
            log_prob = policy.dist.log_prob(params, action).sum()
            grads = torch.autograd.grad(log_prob, list(named.values()), allow_unused=True)
            for (name, _), grad in zip(named.items(), grads, strict=True):
                if grad is not None:
                    fisher[name] += grad.detach().square()
    return {n: f / max(len(states), 1) for n, f in fisher.items()}


def _names(policy: nn.Module) -> dict[int, str]:
    return {id(p): n for n, p in policy.named_parameters()}


class EWC(Keeper):
    def __init__(self, policy: nn.Module, strength: float, online: bool, decay: float) -> None:
        self.names = _names(policy)
        self.strength, self.online, self.decay = strength, online, decay
        # One (Fisher, anchor) per finished task; online: a single pair.
        self.fishers: list[dict[str, torch.Tensor]] = []
        self.anchors: list[dict[str, torch.Tensor]] = []

    def task_end(self, policy: nn.Module, states: torch.Tensor, seed: int) -> None:
        fisher = fisher_diagonal(policy, states, seed)
        anchor = {n: p.detach().clone() for n, p in policy.named_parameters() if n in fisher}
        if self.online and self.fishers:
            old = self.fishers[0]
            fisher = {n: self.decay * old[n] + f for n, f in fisher.items()}
            self.fishers, self.anchors = [], []
        self.fishers.append(fisher)
        self.anchors.append(anchor)

    def terms(self, params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
        parts = [
            (fisher[name] * (param - anchor[name]).square()).sum()
            for param in params
            if (name := self.names.get(id(param))) is not None
            for fisher, anchor in zip(self.fishers, self.anchors, strict=True)
            if name in fisher
        ]
        if not parts:  # no task ended yet, or none of these parameters is held
            return {}
        return {"loss/ewc": 0.5 * self.strength * torch.stack(parts).sum()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, (fisher, anchor) in enumerate(zip(self.fishers, self.anchors, strict=True)):
            out.update({f"{k}/fisher/{n}": v for n, v in fisher.items()})
            out.update({f"{k}/anchor/{n}": v for n, v in anchor.items()})
        return out

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        count = len({key.split("/", 1)[0] for key in tensors})
        self.fishers = [{} for _ in range(count)]
        self.anchors = [{} for _ in range(count)]
        for key, value in tensors.items():
            k, kind, name = key.split("/", 2)
            (self.fishers if kind == "fisher" else self.anchors)[int(k)][name] = value


class L2(Keeper):
    def __init__(self, policy: nn.Module, strength: float) -> None:
        self.names, self.strength = _names(policy), strength
        self.anchor: dict[str, torch.Tensor] = {}

    def task_end(self, policy: nn.Module, states: torch.Tensor, seed: int) -> None:
        self.anchor = {n: p.detach().clone() for n, p in policy.named_parameters()}

    def terms(self, params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
        parts = [
            (param - self.anchor[name]).square().sum()
            for param in params
            if (name := self.names.get(id(param))) in self.anchor
        ]
        if not parts:  # no task ended yet, or none of these parameters is held
            return {}
        return {"loss/l2": 0.5 * self.strength * torch.stack(parts).sum()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.anchor)

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.anchor = dict(tensors)


class Rehearsal(Keeper):
    def __init__(self, policy: Any, strength: float, batch_size: int, seed: int) -> None:
        self.policy, self.strength, self.batch_size = policy, strength, batch_size
        self.actor = {id(p) for p in policy.actor_parameters()}
        self.states: torch.Tensor | None = None
        self.actions: torch.Tensor | None = None
        self.generator = torch.Generator().manual_seed(seed + 4099)  # the batches' stream

    def task_end(self, policy: Any, states: torch.Tensor, seed: int) -> None:
        with torch.no_grad():
            actions = policy.dist.sample(policy.policy_params(states), True)
        self.states = states if self.states is None else torch.cat([self.states, states])
        self.actions = actions if self.actions is None else torch.cat([self.actions, actions])

    def terms(self, params: list[nn.Parameter]) -> dict[str, torch.Tensor]:
        if self.states is None or not any(id(p) in self.actor for p in params):
            return {}
        index = torch.randint(len(self.states), (self.batch_size,), generator=self.generator)
        logits = self.policy.policy_params(self.states[index])
        log_prob = self.policy.dist.log_prob(logits, self.actions[index])
        return {"loss/rehearsal": -self.strength * log_prob.mean()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {"generator": self.generator.get_state()}
        if self.states is not None:
            out.update(states=self.states, actions=self.actions)
        return out

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(tensors["generator"])
        self.states, self.actions = tensors.get("states"), tensors.get("actions")
