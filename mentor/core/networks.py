"""Network building blocks: MLPs, the Nature CNN, and the actor-critic built from them; and the
policy interface every method's networks answer.

``PolicyHead`` is what behaviour cloning, DAgger, GAIL, an agent started from another method's
policy and the multi-agent methods see of a network: its action distribution (``dist``, see
``core/distributions.py``), the distribution's parameters for a batch of observations as the
env gives them (normalized inside), the parameters that make up the policy (the critics are not
part of it), and whether its Box actions are in [-1, 1] (``unit_box_actions``: rescaled to the
bounds at the env) or in the env's units. Log-probabilities, entropies and the mode are then
``dist.log_prob(params, actions)``, ``dist.entropy(params)``, ``dist.sample(params, True)``;
under an action mask, of ``dist.masked(params, mask)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Protocol

import torch
from gymnasium import spaces
from torch import nn

from mentor.core.activations import ACTIVATIONS
from mentor.core.distributions import ActionDist, DiagGaussian, StateGaussian, make_dist
from mentor.core.memory import Memory
from mentor.core.normalize import ObsNormalizer, RunningMeanStd
from mentor.core.sde import StateDependentStd
from mentor.envs.spaces import board_planes, is_image, obs_encoder, symbol_grid
from mentor.sections import NetworkConfig


class PolicyHead(Protocol):
    """The policy part of any method's networks (module docstring)."""

    dist: ActionDist
    normalizer: ObsNormalizer
    unit_box_actions: bool

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor: ...

    def actor_parameters(self) -> list[nn.Parameter]: ...


def mlp(in_size: int, hidden_sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_size, size), ACTIVATIONS[activation]()]
        in_size = size
    return nn.Sequential(*layers)


NATURE_CONVOLUTIONS = [[32, 8, 4], [64, 4, 2], [64, 3, 1]]
BOARD_CONVOLUTIONS = [[64, 3, 1, 1], [64, 3, 1, 1]]


def conv_stack(channels: int, layers: list[list[int]]) -> nn.Sequential:
    """Convolutions ``[out, kernel, stride(, padding)]`` with a ReLU after each, flattened."""
    modules: list[nn.Module] = []
    for out, kernel, stride, *padding in layers:
        modules += [nn.Conv2d(channels, out, kernel, stride, *padding), nn.ReLU()]
        channels = out
    return nn.Sequential(*modules, nn.Flatten())


def flat_size(convs: nn.Module, channels: int, height: int, width: int) -> int:
    """How many features the convolutions give for one (channels, height, width) input; a
    clear error when they shrink it to nothing."""
    try:
        with torch.no_grad():
            return convs(torch.zeros(1, channels, height, width)).shape[1]
    except RuntimeError as exc:
        raise ValueError(
            f"agent.network.convolutions do not fit a {height} x {width} input: {exc}"
        ) from None


class NatureCNN(nn.Module):
    """The DQN paper's convolutional torso (Mnih et al. 2015) for (H, W, C) uint8 images, or
    the ``convolutions`` given, then ``features`` units."""

    obs_dtype = torch.uint8

    def __init__(
        self,
        shape: tuple[int, ...],
        features: int = 512,
        convolutions: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        channels = shape[2]
        self.convs = conv_stack(channels, convolutions or NATURE_CONVOLUTIONS)
        flat = flat_size(self.convs, channels, shape[0], shape[1])
        self.fc = nn.Sequential(nn.Linear(flat, features), nn.ReLU())
        self.out_size = features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.permute(0, 3, 1, 2).float() / 255.0
        return self.fc(self.convs(x))


class GridCNN(nn.Module):
    """A small CNN over a grid of symbols (MiniGrid's 7 x 7 view, ``envs.spaces.symbol_grid``):
    each cell's one-hots as channels, then 2 x 2 convolutions of 16, 32 and 64 channels with a
    2 x 2 max-pool after the first (the torso of Chevalier-Boisvert et al.'s MiniGrid baselines,
    on one-hots rather than raw indices); its features beside the rest of the observation (a
    direction, say)."""

    obs_dtype = torch.float32

    def __init__(self, layout: tuple[int, int, int, int], obs_size: int) -> None:
        super().__init__()
        self.offset, self.height, self.width, self.depth = layout
        self.end = self.offset + self.height * self.width * self.depth
        self.convs = nn.Sequential(
            nn.Conv2d(self.depth, 16, 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 2), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, self.depth, self.height, self.width)).shape[1]
        self.out_size = flat + obs_size - (self.end - self.offset)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        grid = obs[:, self.offset : self.end].view(-1, self.height, self.width, self.depth)
        features = self.convs(grid.permute(0, 3, 1, 2))
        return torch.cat([obs[:, : self.offset], features, obs[:, self.end :]], dim=1)


class BoardCNN(nn.Module):
    """A CNN over a board of planes (Connect Four's pieces, MinAtar's objects;
    ``envs.spaces.board_planes``): by default two 3 x 3 convolutions of 64 channels that keep
    the board's size (padding 1), so that every cell sees its neighbours in all eight
    directions whatever the board's size (the residual towers of AlphaZero, Silver et al.
    2018, at their smallest), or the ``convolutions`` given; its features beside the rest of
    the observation (an agent's index)."""

    obs_dtype = torch.float32

    def __init__(
        self,
        layout: tuple[int, int, int, int],
        obs_size: int,
        convolutions: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.offset, self.height, self.width, self.depth = layout
        self.end = self.offset + self.height * self.width * self.depth
        self.convs = conv_stack(self.depth, convolutions or BOARD_CONVOLUTIONS)
        flat = flat_size(self.convs, self.depth, self.height, self.width)
        self.out_size = flat + obs_size - (self.end - self.offset)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        board = obs[:, self.offset : self.end].view(-1, self.height, self.width, self.depth)
        features = self.convs(board.permute(0, 3, 1, 2))
        return torch.cat([obs[:, : self.offset], features, obs[:, self.end :]], dim=1)


def obs_dtype(cnn: nn.Module | None) -> torch.dtype:
    """How observations are stored for a network with this torso: uint8 images, else float32."""
    return torch.float32 if cnn is None else cnn.obs_dtype


def observation_encoder(
    obs_space: spaces.Space,
    config: NetworkConfig,
    normalize_obs: bool,
    clip_obs: float,
    layout_space: spaces.Space | None = None,
) -> tuple[ObsNormalizer, NatureCNN | GridCNN | BoardCNN | None, int]:
    """The first layers every network shares: normalization (vectors only) and, for images, the
    Nature CNN; with ``kind: cnn``, a grid of symbols gets the ``GridCNN``, a board of planes the
    ``BoardCNN``. Returns them and the
    size of the features they produce. ``layout_space``: the space a grid or board is found in
    when ``obs_space`` is a row built from it (an agent's observation, then its index:
    ``core/agent_rows.py``); the grid starts the row either way."""
    _, obs_shape = obs_encoder(obs_space)
    image = is_image(obs_space)
    shaped = obs_space if layout_space is None else layout_space
    grid = symbol_grid(shaped) if config.kind == "cnn" and not image else None
    board = board_planes(shaped) if config.kind == "cnn" and not image else None
    if config.kind == "cnn" and not image and grid is None and board is None:
        raise ValueError(
            "agent.network.kind 'cnn' needs (H, W, C) uint8 images, an (H, W, C) "
            "MultiDiscrete grid of symbols (MiniGrid's view) or an (H, W, C) Box board of "
            f"planes (Connect Four's), got {obs_space}"
        )
    if config.kind == "mlp" and image:
        raise ValueError("agent.network.kind 'mlp' cannot take image observations; use cnn or auto")
    normalizer = ObsNormalizer(obs_shape, normalize_obs and not image, clip_obs)
    if config.convolutions is not None and (grid is not None or not (image or board)):
        raise ValueError(
            "agent.network.convolutions shape a CNN: for (H, W, C) uint8 images, or with kind "
            f"cnn for an (H, W, C) Box board of planes; this network has none ({obs_space})"
        )
    if grid is not None:
        cnn: NatureCNN | GridCNN | BoardCNN | None = GridCNN(grid, obs_shape[0])
    elif board is not None:
        cnn = BoardCNN(board, obs_shape[0], config.convolutions)
    else:
        cnn = NatureCNN(obs_shape, convolutions=config.convolutions) if image else None
    return normalizer, cnn, cnn.out_size if cnn is not None else obs_shape[0]


def init_linear(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain``, zero biases, for every linear and conv layer (each
    member of an ensemble layer on its own)."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                nn.init.orthogonal_(layer.weight, gain)
                nn.init.zeros_(layer.bias)
            elif isinstance(layer, EnsembleLinear):
                for member in layer.weight:
                    nn.init.orthogonal_(member, gain)
                nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module):
    """A policy head and a value head over shared or separate hidden layers.

    Observations enter as mentor encodes them (float32 vectors, or uint8 images) and are
    normalized inside the module, so a saved agent carries its own normalization. Box actions
    are in the env's units (clipped to the bounds at the env).

    With ``critic_space`` (a vector Box) the critic reads its own input, ``critic_obs``, through
    its own normalizer and hidden layers, instead of the actor's observation: a centralized
    critic's global state (MAPPO), or privileged information the actor does not see.

    ``mask`` (bool, ``(batch, dist.num_params)``; Discrete and MultiDiscrete actions) restricts
    the policy to the allowed actions in ``predict`` and ``evaluate_actions`` alike.
    """

    unit_box_actions = False
    honours_masks = True

    def __init__(
        self,
        obs_space: spaces.Space,
        action_space: spaces.Space,
        config: NetworkConfig,
        normalize_obs: bool = False,
        clip_obs: float = 10.0,
        critic_space: spaces.Space | None = None,
        groups: int | Sequence[int] | None = None,
        value_norm: bool = False,
        layout_space: spaces.Space | None = None,
        sde_log_std_init: float | None = None,
    ) -> None:
        super().__init__()
        # Value normalization (Yu et al. 2022's ValueNorm): the critic's head learns values in
        # units of the running mean and std of the returns it is fit to, and the network gives
        # values in the env's units (the head's output times the std, plus the mean).
        self.value_stats = RunningMeanStd(()) if value_norm else None
        self.normalizer, self.cnn, in_size = observation_encoder(
            obs_space, config, normalize_obs, clip_obs, layout_space
        )
        image = self.cnn is not None
        # A recurrent core (core/memory.py) between the features and the hidden layers.
        self.memory: Memory | None = None
        if config.memory is not None:
            if groups is not None or critic_space is not None:
                raise ValueError(
                    "a recurrent core with per-agent parameters or a critic input of its own is "
                    "not supported"
                )
            memory = config.memory
            self.memory = Memory(memory.cell, in_size, memory.hidden_size, memory.critic)
            in_size = memory.hidden_size
        self.dist: ActionDist = make_dist(action_space, config.log_std_init)
        hidden, act = config.hidden_sizes, config.activation
        out_size = hidden[-1] if hidden else in_size
        # gSDE (core/sde.py): the head gives the mean, the std follows from the last hidden
        # layer's features and a learned matrix, and the policy is a StateGaussian.
        self.sde: StateDependentStd | None = None
        if sde_log_std_init is not None:
            if not isinstance(self.dist, DiagGaussian):
                raise ValueError(f"gSDE needs Box actions (a Gaussian policy), got {action_space}")
            if groups is not None:
                raise ValueError("gSDE with per-agent parameters (agents as rows) is not supported")
            size = self.dist.num_params
            self.dist = StateGaussian(size)
            self.sde = StateDependentStd(out_size, size, sde_log_std_init)
        self.critic_normalizer: ObsNormalizer | None = None
        critic_in = in_size
        if critic_space is not None:
            if is_image(critic_space):
                raise ValueError(f"a critic input must be a vector Box, got {critic_space}")
            self.critic_normalizer, _, critic_in = observation_encoder(
                critic_space, config, normalize_obs, clip_obs
            )
        # The critic's own memory cell (memory.critic) gives it a body of its own too.
        critic_cell = self.memory is not None and self.memory.critic_cell is not None
        self.shared = (config.shared or image) and critic_space is None and not critic_cell
        # Parameters per group of rows (agents as rows, ``core/agent_rows.py``): ``groups`` maps
        # each agent's index to its parameters (an int K: one set per agent of K).
        self.groups = groups
        mapping = list(range(groups)) if isinstance(groups, int) else groups
        self.num_agents = None if mapping is None else len(mapping)
        members = None if mapping is None else max(mapping) + 1
        if mapping is not None:
            self.register_buffer(
                "agent_group", torch.tensor(mapping, dtype=torch.long), persistent=False
            )
        if members is not None:  # per-agent parameters: body and head in one grouped MLP each
            if self.shared or image:
                raise ValueError(
                    "per-agent parameters need separate actor and critic bodies on vector "
                    "observations (agent.network.shared=false, no images)"
                )
            self.actor_body = GroupedMLP(members, in_size, hidden, self.dist.num_params, act)
            self.critic_body = GroupedMLP(members, critic_in, hidden, 1, act)
            self.actor_head, self.critic_head = nn.Identity(), nn.Identity()
            heads = [self.actor_body.ensemble.layers[-1], self.critic_body.ensemble.layers[-1]]
        else:
            self.actor_body = mlp(in_size, hidden, act)
            self.critic_body = None if self.shared else mlp(critic_in, hidden, act)
            head_size = self.dist.num_params if self.sde is None else self.sde.action_size
            self.actor_head = nn.Linear(out_size, head_size)
            self.critic_head = nn.Linear(out_size, 1)
            heads = [self.actor_head, self.critic_head]
        if config.ortho_init:  # gains as in the PPO implementation details (Huang et al. 2022)
            init_linear(self, math.sqrt(2))
            init_linear(heads[0], 0.01)
            init_linear(heads[1], 1.0)

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        obs = self.normalizer(obs)
        return self.cnn(obs) if self.cnn is not None else obs

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        if self.memory is not None:
            raise RuntimeError("a recurrent policy acts through step() and unroll(): its memory")
        return self._encode(obs)

    def _group_of(self, obs: torch.Tensor) -> torch.Tensor | None:
        """Each row's parameters with per-group parameters: its observation ends with a one-hot
        of its agent (``env.agent_ids``), read before normalization."""
        if self.num_agents is None:
            return None
        return self.agent_group[obs[:, -self.num_agents :].argmax(-1)]

    @staticmethod
    def _run(body: nn.Module, head: nn.Module, x: torch.Tensor, group: torch.Tensor | None):
        return head(body(x)) if group is None else body(x, group)

    def _critic_input(self, x: torch.Tensor, critic_obs: torch.Tensor | None) -> torch.Tensor:
        """What the critic's body reads: its own input when it has one, else the features."""
        if self.critic_normalizer is None:
            return x
        if critic_obs is None:
            raise ValueError("this critic reads its own input: give critic_obs")
        return self.critic_normalizer(critic_obs)

    def forward(
        self, obs: torch.Tensor, critic_obs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Distribution parameters and value estimates for a batch of observations."""
        x, group = self._features(obs), self._group_of(obs)
        if self.shared:
            actor_x = self.actor_body(x)
            return self._head(actor_x), self._value_units(self.critic_head(actor_x).squeeze(-1))
        params = self._policy(x, group)
        critic_x = self._critic_input(x, critic_obs)
        values = self._run(self.critic_body, self.critic_head, critic_x, group).squeeze(-1)
        return params, self._value_units(values)

    def _policy(self, x: torch.Tensor, group: torch.Tensor | None) -> torch.Tensor:
        """The distribution's parameters from the features."""
        return self.actor_body(x, group) if group is not None else self._head(self.actor_body(x))

    def _head(self, latent: torch.Tensor) -> torch.Tensor:
        """The actor head's output; under gSDE, the mean and then each state's log std."""
        mean = self.actor_head(latent)
        return mean if self.sde is None else torch.cat([mean, self.sde(latent)], -1)

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        return self._policy(self._features(obs), self._group_of(obs))

    def explore(self, obs: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """gSDE's collection actions: the mean plus the noise of the matrices ``eps`` (one per
        row, ``core/sde.py``)."""
        assert self.sde is not None
        latent = self.actor_body(self._features(obs))
        return self.actor_head(latent) + self.sde.noise(latent, eps)

    # --- with a recurrent core (core/memory.py) ------------------------------------------------

    def _outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distribution parameters and values from the memory's output."""
        if self.shared:
            actor_x = self.actor_body(x)
            return self._head(actor_x), self._value_units(self.critic_head(actor_x).squeeze(-1))
        critic_x = x
        if self.memory.critic_cell is not None:  # the policy's half, the critic's half
            x, critic_x = x.chunk(2, -1)
        values = self.critic_head(self.critic_body(critic_x)).squeeze(-1)
        return self._head(self.actor_body(x)), self._value_units(values)

    def step(
        self, obs: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of a batch of rows: parameters, values and each row's next state."""
        x, state = self.memory(self._encode(obs), state)
        return *self._outputs(x), state

    def unroll(
        self, obs: torch.Tensor, state: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters (T, B, P) and values (T, B) of T steps of B rows' observations from their
        states, forgetting after the steps ``valid`` is False for (``Memory.unroll``)."""
        t, b = obs.shape[:2]
        x = self._encode(obs.flatten(0, 1)).view(t, b, -1)
        out, _ = self.memory.unroll(x, state, valid)
        params, values = self._outputs(out.flatten(0, 1))
        return params.view(t, b, -1), values.view(t, b)

    def predict_step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        deterministic: bool = True,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions and next states: what a recurrent Agent acts with."""
        params, _, state = self.step(obs, state)
        if mask is not None:
            params = self.dist.masked(params, mask)
        return self.dist.sample(params, deterministic), state

    def actor_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the critic's own layers: shared layers and the CNN count."""
        critic = [
            m for m in (self.critic_body, self.critic_head, self.critic_normalizer) if m is not None
        ]
        own = {id(p) for m in critic for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def value(self, obs: torch.Tensor, critic_obs: torch.Tensor | None = None) -> torch.Tensor:
        if self.shared:
            return self._value_units(
                self.critic_head(self.actor_body(self._features(obs))).squeeze(-1)
            )
        x = obs if self.critic_normalizer is not None else self._features(obs)
        critic_x = self._critic_input(x, critic_obs)
        group = self._group_of(obs)
        values = self._run(self.critic_body, self.critic_head, critic_x, group).squeeze(-1)
        return self._value_units(values)

    def _value_units(self, head_output: torch.Tensor) -> torch.Tensor:
        """The critic head's output in the env's units (value normalization), else itself."""
        if self.value_stats is None:
            return head_output
        std = (self.value_stats.var + 1e-8).sqrt().to(head_output.dtype)
        return head_output * std + self.value_stats.mean.to(head_output.dtype)

    def standardize_value(self, values: torch.Tensor) -> torch.Tensor:
        """Values in the env's units to the standardized units the critic head learns in."""
        assert self.value_stats is not None
        std = (self.value_stats.var + 1e-8).sqrt().to(values.dtype)
        return (values - self.value_stats.mean.to(values.dtype)) / std

    def predict(
        self, obs: torch.Tensor, deterministic: bool = True, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Actions only: what an Agent acts with."""
        params = self.policy_params(obs)
        if mask is not None:
            params = self.dist.masked(params, mask)
        return self.dist.sample(params, deterministic)

    def evaluate_actions(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities, entropies and values of given actions (for the update)."""
        params, values = self(obs, critic_obs)
        if mask is not None:
            params = self.dist.masked(params, mask)
        return self.dist.log_prob(params, actions), self.dist.entropy(params), values


class EnsembleLinear(nn.Module):
    """K independent linear layers applied in one batched matmul: input (K, B, in) -> (K, B, out).

    Twin critics (TD3, SAC) evaluated this way cost one call instead of two per layer, forward
    and backward: on a CPU, with small layers, per-call overhead is most of the cost.
    """

    def __init__(self, members: int, in_size: int, out_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_size, out_size))
        self.bias = nn.Parameter(torch.empty(members, 1, out_size))
        bound = 1 / math.sqrt(in_size)  # nn.Linear's default initialisation, per member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class GroupedMLP(nn.Module):
    """One MLP per group of rows — per-agent parameters for agents as rows — evaluated in one
    batched call: ``forward(x, groups)`` gathers each group's rows into its member's slice of a
    padded (K, max rows, in) batch, runs the ensemble once and puts the outputs back in row
    order. The result equals K separate MLPs applied to their own rows."""

    def __init__(self, members: int, in_size: int, hidden_sizes: list[int], out_size: int,
                 activation: str) -> None:  # fmt: skip
        super().__init__()
        self.members = members
        self.ensemble = EnsembleMLP(members, in_size, hidden_sizes, out_size, activation)

    def forward(self, x: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(groups, stable=True)
        sorted_groups = groups[order]
        counts = torch.bincount(groups, minlength=self.members)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(len(groups), device=x.device) - starts[sorted_groups]
        padded = x.new_zeros(self.members, int(counts.max()), x.shape[-1])
        padded[sorted_groups, slot] = x[order]
        out = self.ensemble(padded)[sorted_groups, slot]
        return torch.empty_like(out).index_copy_(0, order, out)


class EnsembleMLP(nn.Module):
    """K MLPs of the same shape, evaluated together; ``forward(x)`` takes (B, in) — the same input
    for every member — or (K, B, in), and returns (K, B, out)."""

    def __init__(self, members: int, in_size: int, hidden_sizes: list[int], out_size: int,
                 activation: str) -> None:  # fmt: skip
        super().__init__()
        self.members = members
        sizes = [in_size, *hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [EnsembleLinear(members, a, b), ACTIVATIONS[activation]()]
        layers.append(EnsembleLinear(members, sizes[-1], out_size))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        return self.layers(x)
