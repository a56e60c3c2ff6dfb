"""Multi-agent PPO with a centralized critic (Yu et al. 2022, arXiv:2103.01955, "The Surprising
Effectiveness of PPO in Cooperative Multi-Agent Games").

The actors are IPPO's (``methods/ippo.py``): one network shared by the agents, each acting on
its own observation and index, so the trained agent needs nothing but its observations. The
critic is centralized: during training it reads the whole env, which makes the value of a
team's situation learnable where one agent's view hides the others' (``method.critic``):

    state         the env's global state, ``env.state()``, with the agent's index
                  (the paper's agent-specific global state, in its simplest form)
    observations  every agent's observation of the copy, concatenated, with the agent's index
                  (for envs without ``state()``)

PPO's loop runs it (``ppo.run`` with a ``CriticInput``): the actor-critic is built with a critic
of its own input (``ActorCritic(critic_space=...)``), so checkpoints load as agents and the
critic's normalizer and layers are saved with them.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from mentor.core.agent_rows import AgentsSpec, parameter_groups, row_space
from mentor.core.ma_env import MultiAgentVecEnv
from mentor.core.networks import ActorCritic
from mentor.envs.spaces import obs_encoder
from mentor.errors import ConfigError
from mentor.experiment import Experiment
from mentor.methods import ppo
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, training_setup


def critic_width(experiment: Experiment, obs_space: spaces.Space, agents: AgentsSpec) -> int:
    """The width of the critic's input before the agent index (``method.critic``)."""
    if experiment.method.critic == "observations":
        return agents.num_agents * obs_encoder(obs_space)[1][0]
    if agents.state_space is None:
        raise ConfigError(
            f"method.critic=state: env '{experiment.env.id}' gives no global state (env.state()); "
            "use method.critic=observations, a critic on every agent's observation"
        )
    return int(np.prod(agents.state_space.shape))


def build_networks(
    experiment: Experiment,
    obs_space: spaces.Space,
    action_space: spaces.Space,
    *,
    agents: AgentsSpec,
) -> ActorCritic:
    """IPPO's actor over one row, and a critic of the centralized input and the row's agent."""
    width = critic_width(experiment, obs_space, agents) + agents.num_agents
    return ActorCritic(
        row_space(obs_space, agents.num_agents, agents.agent_ids),
        action_space,
        experiment.agent.network,
        normalize_obs=experiment.env.normalize_obs,
        clip_obs=experiment.env.clip_obs,
        critic_space=spaces.Box(-np.inf, np.inf, (width,), np.float32),
        groups=parameter_groups(agents, experiment.method.share_parameters),
        value_norm=experiment.method.value_norm,
    )


class CentralizedCritic:
    """What the critic reads for every row: its copy's state or joint observation, then a
    one-hot of the row's agent (a ``ppo.CriticInput``)."""

    def __init__(self, experiment: Experiment, venv: MultiAgentVecEnv) -> None:
        self.kind = experiment.method.critic
        self.num_agents = venv.num_agents
        width = critic_width(experiment, venv.observation_space, venv.agents_spec)
        self.space = spaces.Box(-np.inf, np.inf, (width + venv.num_agents,), np.float32)
        self.ids = np.tile(np.eye(venv.num_agents, dtype=np.float32), (venv.num_copies, 1))

    def __call__(self, venv: MultiAgentVecEnv) -> np.ndarray:
        per_copy = venv.global_state() if self.kind == "state" else venv.joint_observations()
        rows = np.repeat(per_copy, self.num_agents, axis=0)
        return np.concatenate([rows, self.ids], axis=1)


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    with training_setup(experiment, resume) as (venv, agent):
        critic = CentralizedCritic(experiment, venv)
        return ppo.run(experiment, run, venv, agent, resume, critic_input=critic)
