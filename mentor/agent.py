"""A trained agent: the policy network with its spaces, ready to act on raw observations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from mentor.core.agent_rows import AgentRows, AgentsSpec
from mentor.core.memory import forget
from mentor.data.record import Policy, named_policy
from mentor.envs.masks import allows_some, mask_nvec, mask_offsets
from mentor.envs.resolve import resolve_entry_point
from mentor.envs.spaces import (
    MASK_KEY,
    describe,
    has_action_mask,
    obs_encoder,
    space_from_json,
    space_to_json,
    to_env_actions,
)
from mentor.errors import CheckpointError, ConfigError, DatasetError, EnvError, ObservationError
from mentor.experiment import METHOD_CONFIGS, AgentConfig, Experiment, method_module
from mentor.runs import checkpoint
from mentor.transfer.loading import (
    InitReport,
    check_patterns,
    fit,
    freeze,
    matches,
    renamed,
)


class Agent:
    """``agent.act(obs)`` takes an observation as the env gives it (one, or a batch) and returns
    the action in the env's form. Normalization statistics live inside the network. Action
    masks (``envs/masks.py``) are honoured: the observation's ``"action_mask"`` entry, or the
    ``action_mask`` given to ``act`` (for an env that gives its masks in ``info``).

    An agent of a multi-agent env (``agents``: the env's agents, ``core/ma_env.py``) acts for
    all of them: ``act`` takes a dict of observations, one per agent (as PettingZoo's
    ``reset`` and ``step`` give them), and returns a dict of actions for the same agents. Its
    spaces are those every agent shares."""

    def __init__(
        self,
        policy: torch.nn.Module,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        experiment: Experiment,
        agents: AgentsSpec | None = None,
    ) -> None:
        self.policy = policy.eval()
        self.observation_space = observation_space
        self.action_space = action_space
        self.experiment = experiment
        self.agents = agents
        self.init_report: InitReport | None = None  # what agent.init loaded (a new run's)
        self.encode, _ = obs_encoder(observation_space)
        self.rows = None if agents is None else AgentRows(agents, observation_space, action_space)
        self.device = next(policy.parameters()).device
        self.memory: torch.Tensor | None = None  # a recurrent policy's state, one row per row

    @classmethod
    def build(
        cls,
        experiment: Experiment,
        obs_space: spaces.Space,
        act_space: spaces.Space,
        agents: AgentsSpec | None = None,
    ) -> Agent:
        """A freshly initialised agent: the method's networks for the env's spaces (and, for a
        multi-agent method, its agents)."""
        build_networks = method_module(experiment.method.name).build_networks
        if agents is None:
            policy = build_networks(experiment, obs_space, act_space)
        else:
            policy = build_networks(experiment, obs_space, act_space, agents=agents)
        return cls(policy, obs_space, act_space, experiment, agents)

    def spaces_meta(self) -> dict[str, Any]:
        meta = {
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
        }
        if self.agents is not None:
            meta["agents"] = self.agents.to_json()
        return meta

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Agent:
        """Load from a run folder (its best, else final, checkpoint) or a checkpoint folder."""
        folder = checkpoint.resolve(path)
        components, meta = checkpoint.load(folder)
        try:
            experiment = Experiment.model_validate(meta["experiment"])
            obs_space = space_from_json(meta["observation_space"])
            act_space = space_from_json(meta["action_space"])
            agents = AgentsSpec.from_json(meta["agents"]) if "agents" in meta else None
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"'{folder}': meta.json is incomplete ({exc})") from None
        agent = cls.build(experiment, obs_space, act_space, agents)
        load_weights(agent.policy, components.get("model", {}), folder)
        agent.policy.to(device)
        agent.device = torch.device(device)
        agent.folder = folder
        agent.meta = meta
        return agent

    def act(self, obs: Any, deterministic: bool = True, action_mask: Any = None) -> Any:
        """The action for one observation, or an array of actions for a batch; for a
        multi-agent agent, a dict of actions for a dict of observations. An observation that
        fits no form raises ``ObservationError`` naming the shapes.

        The action is one the mask allows: ``action_mask`` when given (one mask for one
        observation, one per row for a batch: n zeros and ones for Discrete(n), the
        dimensions' masks concatenated for MultiDiscrete), else the observation's
        ``"action_mask"`` entry when its space has one."""
        if self.rows is not None:
            return self._act_for_agents(obs, deterministic, action_mask)
        batch, single = as_batch(obs, self.observation_space)
        mask = self._mask(batch, single, action_mask)
        actions = self.predict(self.encode(batch), deterministic, mask)
        env_actions = to_env_actions(self.action_space, actions)
        if not single:
            return env_actions
        action = env_actions[0]
        return action.item() if isinstance(self.action_space, spaces.Discrete) else action

    def _act_for_agents(self, obs: Any, deterministic: bool, action_mask: Any) -> dict[str, Any]:
        """One action per agent of a dict of observations (module: ``act``), each among the
        actions its mask allows: its observation's ``"action_mask"``, or ``action_mask[agent]``
        (a dict of masks, for an env that gives them in its infos)."""
        assert self.rows is not None
        if not isinstance(obs, dict):
            raise ObservationError(
                f"this agent acts for the agents {list(self.rows.agents)} of a multi-agent env: "
                f"give a dict of observations, one per agent, got {type(obs).__name__}"
            )
        unknown = [name for name in obs if name not in self.rows.index]
        if unknown:
            raise ObservationError(
                f"the observations name agent '{unknown[0]}', which is not one of the agents "
                f"{list(self.rows.agents)} the agent was trained with"
            )
        names = list(obs)
        if not names:
            return {}
        indices = [self.rows.index[name] for name in names]
        own_spaces = [self.rows.obs_space_of(name) for name in names]
        for name, space in zip(names, own_spaces, strict=True):
            _, single = as_batch(obs[name], space, f"observation of '{name}'")
            if not single:
                raise ObservationError(
                    f"the observation of '{name}' is a batch: a multi-agent agent takes one "
                    "observation per agent, as the env's dict gives them"
                )
        rows = self.rows.rows([obs[name] for name in names], indices)
        own_masks = None
        if all(has_action_mask(space) for space in own_spaces):
            own_masks = [np.ravel(obs[name][MASK_KEY]) for name in names]
        elif action_mask is not None:
            if not isinstance(action_mask, dict) or set(names) - set(action_mask):
                raise ObservationError(
                    "a multi-agent agent's action_mask is a dict of masks, one for each agent "
                    f"it acts for ({names})"
                )
            own_masks = [np.ravel(action_mask[name]) for name in names]
        masks = None if own_masks is None else self._pad_masks(names, indices, own_masks)
        if self.rows.action_limits is not None:  # agents with fewer actions than the rows
            limits = self.rows.action_limits[indices]
            masks = limits if masks is None else masks & limits
        mask = None if masks is None else self._mask(names, False, masks)
        actions = to_env_actions(self.action_space, self.predict(rows, deterministic, mask))
        discrete = isinstance(self.action_space, spaces.Discrete)
        return {
            name: action.item() if discrete else action
            for name, action in zip(names, actions, strict=True)
        }

    def _pad_masks(
        self, names: list[str], indices: list[int], own_masks: list[np.ndarray]
    ) -> np.ndarray:
        """Each agent's own mask over the rows' actions (agents whose spaces differ)."""
        assert self.rows is not None
        if self.rows.action_limits is None:
            return np.stack(own_masks)
        out = []
        for name, j, mask in zip(names, indices, own_masks, strict=True):
            size = int(self.rows.action_limits[j].sum())
            if mask.size != size:
                raise ObservationError(
                    f"the action mask of '{name}' has {mask.size} entries; its action space "
                    f"({describe(self.rows.own[j][1])}) needs {size}"
                )
            out.append(self.rows.pad_mask(j, mask != 0))
        return np.stack(out)

    def check_fits(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        env: str,
        agents: AgentsSpec | None = None,
    ) -> None:
        """Raise ``EnvError`` when ``env``'s spaces (and agents) are not the ones the agent was
        trained on."""
        own = None if self.agents is None else self.agents.agents
        theirs = None if agents is None else agents.agents
        if own is not None and theirs is not None and own == theirs:
            for j, agent in enumerate(own):
                mine, env_own = (
                    self.agents.own_spaces(j, (self.observation_space, self.action_space)),
                    agents.own_spaces(j, (observation_space, action_space)),
                )
                if mine != env_own:
                    raise EnvError(
                        f"env '{env}' gives agent '{agent}' the spaces {describe(env_own[0])}, "
                        f"{describe(env_own[1])}; the agent was trained on {describe(mine[0])}, "
                        f"{describe(mine[1])}: give an env like the one it was trained on (--env)"
                    )
        if own != theirs:

            def said(names: tuple[str, ...] | None) -> str:
                return "a single-agent env" if names is None else f"the agents {list(names)}"

            raise EnvError(
                f"env '{env}' has {said(theirs)}; the agent was trained on {said(own)}: give "
                "an env like the one it was trained on (--env)"
            )
        for kind, theirs, own in (
            ("observation", observation_space, self.observation_space),
            ("action", action_space, self.action_space),
        ):
            if theirs != own:
                raise EnvError(
                    f"env '{env}' has {kind} space {describe(theirs)}; the agent was trained "
                    f"on {describe(own)}: give an env with the agent's spaces (--env)"
                )

    def _mask(self, batch: Any, single: bool, action_mask: Any) -> np.ndarray | None:
        """The ``(N, size)`` bool masks for a batch, checked; None without a mask."""
        if action_mask is None and not has_action_mask(self.observation_space):
            return None
        try:
            nvec = mask_nvec(self.action_space, "agent.act got an action mask")
        except EnvError as exc:
            raise ObservationError(str(exc)) from None
        rows = len(next(iter(batch.values())) if isinstance(batch, dict) else batch)
        if action_mask is None:  # the observations' own, shaped by as_batch
            mask = np.asarray(batch[MASK_KEY]).reshape(rows, -1)
        else:
            mask = np.asarray(action_mask)
            expected = (sum(nvec),) if single else (rows, sum(nvec))
            if mask.shape != expected:
                what = "one observation" if single else f"a batch of {rows}"
                raise ObservationError(
                    f"the action_mask has shape {mask.shape}; for {describe(self.action_space)} "
                    f"and {what} it takes shape {expected}"
                )
            mask = mask.reshape(rows, -1)
        mask = mask != 0
        blocked = np.flatnonzero(~allows_some(mask, mask_offsets(nvec)))
        if len(blocked):
            row = "" if single else f" (row {blocked[0]})"
            what = "no action" if len(nvec) == 1 else "no action in some dimension"
            shown = mask[blocked[0]].astype(int).tolist()
            raise ObservationError(f"the action mask{row} allows {what}: {shown}")
        return mask

    def predict(
        self, encoded_obs: np.ndarray, deterministic: bool = True, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Network actions for a batch of already-encoded observations, among the actions
        ``mask`` allows (bool, one row per observation; None: all). A recurrent agent acts from
        its memory of the rows' earlier observations and remembers this one (``reset``)."""
        with torch.inference_mode():
            obs = torch.as_tensor(encoded_obs, device=self.device)
            mask_t = None if mask is None else torch.as_tensor(mask, device=self.device)
            if mask is not None and not getattr(self.policy, "honours_masks", False):
                able = [name for name, cfg in METHOD_CONFIGS.items() if cfg.action_masks]
                raise ConfigError(
                    f"this agent ({self.experiment.method.name}) cannot honour action masks, "
                    f"and its env gives them; agents of these methods can: {', '.join(able)}"
                )
            if self.recurrent:
                if self.memory is None or len(self.memory) != len(obs):
                    self.memory = self.policy.memory.initial(len(obs), self.device)
                actions, self.memory = self.policy.predict_step(
                    obs, self.memory, deterministic, mask_t
                )
                return actions.cpu().numpy()
            if mask is None:
                return self.policy.predict(obs, deterministic).cpu().numpy()
            return self.policy.predict(obs, deterministic, mask=mask_t).cpu().numpy()

    @property
    def recurrent(self) -> bool:
        return getattr(self.policy, "memory", None) is not None

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Forget: every row's memory, or the rows marked True (a recurrent agent; else
        nothing to do). Call it when an episode starts."""
        if self.memory is not None:
            self.memory = None if rows is None else forget(self.memory, rows)

    def player(
        self, venv: Any, deterministic: bool = True
    ) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
        """What ``run_episodes`` plays with on ``venv``: ``predict``, and for a recurrent agent
        its memory of each env forgotten when that env's episode restarts."""
        self.reset()
        if not self.recurrent:
            return lambda obs, mask: self.predict(obs, deterministic, mask)

        def play(obs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
            actions = self.predict(obs, deterministic, mask)
            self.reset(venv.needs_reset)  # those envs reset at this step: new episodes next
            return actions

        return play


def policy_from(spec: str) -> Policy:
    """The expert named by ``spec``: a run or checkpoint folder (a trained agent, acting
    deterministically) or ``package.module:function`` (a batch of observations in, a batch of
    actions out; imported as env entry points are, from the working folder too)."""
    if Path(spec).exists():
        agent = Agent.load(spec)
        policy = named_policy(lambda obs: agent.act(obs), spec)
        policy.agent = agent  # type: ignore[attr-defined]  # record checks its spaces
        return policy
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise DatasetError(
            f"expert '{spec}' is neither an existing run/checkpoint folder nor "
            "'package.module:function'"
        )
    function = resolve_entry_point(spec, "expert", ConfigError)
    if not callable(function):
        raise ConfigError(f"expert '{spec}' is a {type(function).__name__}, not a function")
    return named_policy(function, spec)


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Strict load: missing, unexpected or reshaped tensors are an error listing the keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or extra or reshaped:
        raise CheckpointError(
            f"'{source}' does not fit this network: missing {missing}, unexpected {extra}, "
            f"reshaped (checkpoint vs network) {reshaped}"
        )
    module.load_state_dict(state)


def as_batch(obs: Any, space: spaces.Space, where: str = "observation") -> tuple[Any, bool]:
    """``(batch, single)``: one observation of ``space`` made a batch of one, or a batch as it
    is. Anything else (a wrong shape, an empty batch, reset()'s ``(obs, info)`` tuple, a value
    that is not numeric) raises ``ObservationError`` naming what was expected and received."""
    if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
        raise ObservationError(
            f"the {where} is a tuple (obs, info): did you pass reset()'s (obs, info)? "
            "Pass the observation alone: obs, info = env.reset(); agent.act(obs)"
        )
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, dict) or set(obs) != set(space.spaces):
            got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
            raise ObservationError(
                f"the {where} must be a dict with keys {sorted(space.spaces)} (the observation "
                f"space {describe(space)}), got {got}"
            )
        parts = {k: as_batch(obs[k], sub, f"{where}['{k}']") for k, sub in space.spaces.items()}
        forms = {single for _, single in parts.values()}
        if len(forms) > 1:
            raise ObservationError(
                f"the {where}'s entries mix one observation and a batch: give every key one "
                "observation, or every key a batch of the same length"
            )
        batch = {k: b for k, (b, _) in parts.items()}
        lengths = {len(b) for b in batch.values()}
        if len(lengths) > 1:
            raise ObservationError(f"the {where}'s entries are batches of lengths {lengths}")
        return batch, forms.pop()
    try:
        array = np.asarray(obs)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ObservationError(f"the {where} is not an array ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise ObservationError(
            f"the {where} must be numeric, got {type(obs).__name__} of dtype {array.dtype}"
        )
    one = () if isinstance(space, spaces.Discrete) else space.shape
    if array.shape == one:
        return array[None], True
    if array.ndim == len(one) + 1 and array.shape[1:] == one:
        if len(array) == 0:
            raise ObservationError(
                f"the {where} is an empty batch {array.shape}: give at least one"
            )
        return array, False
    batch = "(N,)" if not one else f"(N, {', '.join(map(str, one))})"
    raise ObservationError(
        f"the {where} has shape {array.shape}; the observation space {describe(space)} takes one "
        f"observation of shape {one} or a batch of shape {batch}"
    )


def initialize(agent: Agent, config: AgentConfig, load: bool = True) -> InitReport | None:
    """Step 3, the initial policy: random (already, seeded) or weights from a checkpoint — all
    of them or the layers named, strictly or those that fit (``mentor/transfer/loading.py``) —
    optionally frozen. Returns what was loaded, tensor by tensor (None for 'random').
    ``load=False`` (resuming, the weights come from the run's checkpoint) applies only the
    freezing."""
    if config.init == "random":
        return None
    if not load:
        freeze(agent.policy, config.freeze)
        return None
    folder = checkpoint.resolve(config.init)
    components, meta = checkpoint.load(folder)
    report = InitReport(str(folder), config.init_strict)
    for key, own in agent.spaces_meta().items():
        if meta.get(key) != own and config.init_strict:
            raise CheckpointError(
                f"agent.init '{folder}': its {key.replace('_', ' ')} {meta.get(key)} differs "
                f"from the env's {own} (agent.init_strict=false loads the layers that fit and "
                "builds the others new)"
            )
    theirs = meta.get("experiment", {}).get("agent", {}).get("network", {}).get("activation")
    if theirs is not None and theirs != config.network.activation:
        raise CheckpointError(
            f"agent.init '{folder}' was trained with agent.network.activation {theirs!r}; this "
            f"experiment's network uses {config.network.activation!r}: its weights would load "
            f"but not act alike (set agent.network.activation={theirs})"
        )
    source = renamed(components.get("model", {}), config.init_map)
    if config.init_layers:
        check_patterns(config.init_layers, list(source), "agent.init_layers", f"'{folder}'")
        source = {k: v for k, v in source.items()
                  if any(matches(k, pattern) for pattern in config.init_layers)}  # fmt: skip
    own = agent.policy.state_dict()
    if config.init_strict:
        state = {**own, **source} if config.init_layers or config.init_map else source
        load_weights(agent.policy, state, folder)
        report.loaded = sorted(source)
        report.new = sorted(set(own) - set(source))
    else:
        agent.policy.load_state_dict(fit(own, source, report))
    report.frozen = freeze(agent.policy, config.freeze)
    names = [name for name, _ in agent.policy.named_parameters()]
    check_patterns(config.lr_scale, names, "agent.lr_scale", "the network")
    report.lr_scale = dict(config.lr_scale)
    return report


def trainable(
    parameters: torch.nn.Module | Iterable[torch.nn.Parameter], what: str, config: AgentConfig
) -> list[torch.nn.Parameter]:
    """The parameters (of a module, or given) that train; an error when agent.freeze left none."""
    if isinstance(parameters, torch.nn.Module):
        parameters = parameters.parameters()
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ConfigError(
            f"agent.freeze {config.freeze} freezes every parameter of the {what}: nothing is left "
            "to train; freeze fewer layers"
        )
    return params
