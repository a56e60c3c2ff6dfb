"""Step 3 from another run: an initial policy's weights, whole or in part, across spaces and
network widths.

``agent.init`` names a run or checkpoint folder; the rest of the ``agent`` section says what is
taken from it and how it trains:

    init_layers   the source's tensors to load, by name: a prefix (``actor`` takes actor_body
                  and actor_head) or a glob (``*_body.*``); all of them when empty
    init_map      {target prefix: source prefix}: the source's tensors under another name
                  (``{critic_body: actor_body}`` starts the critic from the actor's layers)
    init_strict   true (the default): the chosen tensors must all exist in the network with
                  their shapes, and the source's spaces must be the env's (FAULT-27, FAULT-28);
                  false: the tensors that fit (same name, same shape) are loaded, the others
                  keep the values they were built with (a new head for a new action space, a
                  new encoder for a new observation), and every tensor is listed as loaded,
                  new, reshaped (same name, another shape: built new) or skipped (the source's,
                  with no place in the network)
    freeze        parameters not trained, by prefix or glob
    lr_scale      {pattern: scale}: those parameters train at scale x the learning rate (a
                  transferred encoder at 0.1, say); one Adam parameter group per scale
    init_replay   off-policy methods: the source run's replay buffer fills the new one first
                  (``replay_source``: from its final or latest periodic checkpoint)

The listing (``InitReport``) is printed when training starts and kept in the manifest
(``init``). Freezing every parameter, a pattern that matches nothing (with the names it could
have meant) and a source of which nothing fits (with both networks' shapes) are errors.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mentor.errors import CheckpointError, ConfigError, did_you_mean
from mentor.runs import checkpoint


def matches(name: str, pattern: str) -> bool:
    """A parameter's name against a pattern: a glob when it has * ? or [, else a prefix."""
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name.startswith(pattern)


def modules_of(names: Iterable[str]) -> list[str]:
    """The module paths of these tensor names (``actor_body.0.weight`` -> actor_body,
    actor_body.0), for did-you-mean."""
    out: set[str] = set()
    for name in names:
        parts = name.split(".")[:-1]
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(out)


def check_patterns(patterns: Iterable[str], names: list[str], what: str, whose: str) -> None:
    """Each pattern must match some name: else an error with the names it could have meant."""
    for pattern in patterns:
        if not any(matches(name, pattern) for name in names):
            top = sorted({name.split(".")[0] for name in names})
            raise ConfigError(
                f"{what} pattern {pattern!r} matches no parameter of {whose}"
                + did_you_mean(pattern, modules_of(names) + names)
                + f"; its top-level layers are {top}"
            )


@dataclass
class InitReport:
    """What ``agent.init`` did, tensor by tensor (module docstring)."""

    source: str
    strict: bool
    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)  # "name (source shape -> network shape)"
    skipped: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    lr_scale: dict[str, float] = field(default_factory=dict)
    replay: dict[str, Any] | None = None  # {"source": folder, "transitions": n}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The listing for the console: counts, then the names of all but the loaded."""
        head = (
            f"init: {len(self.loaded)} tensors loaded from {self.source}, {len(self.new)} new, "
            f"{len(self.reshaped)} reshaped (built new), {len(self.skipped)} skipped"
        )
        out = [head]
        for what, names in (("new", self.new), ("reshaped", self.reshaped),
                            ("skipped", self.skipped), ("frozen", self.frozen)):  # fmt: skip
            if names:
                out.append(f"  {what}: {', '.join(names)}")
        if self.lr_scale:
            scales = ", ".join(f"{k} x{v:g}" for k, v in self.lr_scale.items())
            out.append(f"  learning rate: {scales}")
        if self.replay:
            out.append(f"  replay: {self.replay['transitions']:,} transitions from "
                       f"{self.replay['source']}")  # fmt: skip
        return out


def renamed(
    state: Mapping[str, torch.Tensor], mapping: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    """The source's tensors with ``init_map``'s prefixes put in place: {target: source}. A
    source tensor may serve several targets; the unmapped keep their names."""
    out = dict(state)
    for target, source in mapping.items():
        found = {k: v for k, v in state.items() if k.startswith(source)}
        if not found:
            raise ConfigError(
                f"agent.init_map {target!r}: {source!r} matches no tensor of the source"
                + did_you_mean(source, modules_of(state))
            )
        out.update({target + k[len(source) :]: v for k, v in found.items()})
    return out


def fit(
    own: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor], report: InitReport
) -> dict[str, torch.Tensor]:
    """The network's state with every source tensor that fits (same name and shape) in place;
    ``report`` lists what happened to each tensor."""
    state = dict(own)
    for name, tensor in own.items():
        if name not in theirs:
            report.new.append(name)
        elif theirs[name].shape != tensor.shape:
            source = tuple(theirs[name].shape)
            report.reshaped.append(f"{name} ({source} -> {tuple(tensor.shape)})")
        else:
            state[name] = theirs[name]
            report.loaded.append(name)
    report.skipped = sorted(set(theirs) - set(own))
    if not report.loaded:
        raise CheckpointError(
            f"agent.init '{report.source}': no tensor of it fits this network (same name and "
            f"shape): its {shapes(theirs)}; the network's {shapes(own)}. Map names with "
            "agent.init_map, or start from random"
        )
    return state


def shapes(state: Mapping[str, torch.Tensor], limit: int = 8) -> str:
    items = [f"{k} {tuple(v.shape)}" for k, v in state.items()]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def freeze(module: torch.nn.Module, patterns: list[str]) -> list[str]:
    """Stop the matching parameters' training; returns their names (an error for a pattern
    that matches none, or when nothing is left to train)."""
    names = [name for name, _ in module.named_parameters()]
    check_patterns(patterns, names, "agent.freeze", "the network")
    frozen = []
    for name, param in module.named_parameters():
        if any(matches(name, pattern) for pattern in patterns):
            param.requires_grad_(False)
            frozen.append(name)
    if patterns and len(frozen) == len(names):
        raise ConfigError(
            f"agent.freeze {patterns} freezes every parameter of the network: nothing is left "
            "to train; freeze fewer layers"
        )
    return frozen


def replay_source(init: str) -> tuple[Path, dict[str, torch.Tensor]]:
    """The replay buffer of ``agent.init``'s run: its checkpoint folder's, else (a run folder,
    whose best/ leaves the buffer out) its final or latest periodic checkpoint's."""
    path = Path(init)
    folders = [path] if (path / checkpoint.META).is_file() else []
    folders += [path / "final", *checkpoint.latest(path)]
    for folder in folders:
        if (folder / checkpoint.META).is_file():
            components, _ = checkpoint.load(folder)
            if components.get("replay"):
                return folder, components["replay"]
    raise CheckpointError(
        f"agent.init_replay: '{init}' holds no replay buffer (a best/ checkpoint leaves it out): "
        "give the run folder, or its final or a periodic checkpoint, of an off-policy run"
    )


def scaled_groups(
    params: list[torch.nn.Parameter], network: torch.nn.Module, scales: Mapping[str, float],
    learning_rate: float,
) -> list[torch.nn.Parameter] | list[dict[str, Any]]:  # fmt: skip
    """An optimizer's parameters with ``agent.lr_scale`` applied: one group per scale, each
    with its ``lr_scale`` (``core.optim.set_lr`` keeps it under a schedule); the plain list when
    no scale applies. Names are the network's (``network``: the agent's whole policy module);
    the first matching pattern decides."""
    if not scales:
        return params
    names = {id(p): name for name, p in network.named_parameters()}
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for param in params:
        name = names.get(id(param), "")
        scale = next((s for pattern, s in scales.items() if matches(name, pattern)), 1.0)
        groups.setdefault(scale, []).append(param)
    return [{"params": group, "lr": learning_rate * scale, "lr_scale": scale}
            for scale, group in groups.items()]  # fmt: skip
