"""Independent PPO on a multi-agent env (de Witt et al. 2020, arXiv:2011.09533).

Agents become rows (``core/ma_env.py``): copy i's agent j is one row of PPO's batch, so PPO's
loop (``ppo.run``) trains them unchanged. Each agent acts on its own observation through one
network shared by every agent, which tells them apart by the agent index appended to each
observation (``env.agent_ids``), or through parameters of its own (``method.share_parameters:
false``: one grouped call for all agents, ``core/networks.py: GroupedMLP``); each learns from its
own reward, with a critic that reads only what its actor reads. Agents whose spaces differ (a
speaker and a listener) are grouped by space, one set of parameters per group, their rows padded
to one width (``core/agent_rows.py``). Agents that have finished, or
not yet appeared, are rows whose transitions are not learned from (``needs_reset``), like the
reset step of a single-agent env.
"""

from __future__ import annotations

from gymnasium import spaces

from mentor.core.agent_rows import AgentsSpec
from mentor.core.networks import ActorCritic
from mentor.experiment import Experiment
from mentor.methods import ppo
from mentor.runs.checkpoint import ResumePoint
from mentor.runs.folder import RunFolder
from mentor.runs.session import Result, training_setup


def build_networks(
    experiment: Experiment,
    obs_space: spaces.Space,
    action_space: spaces.Space,
    *,
    agents: AgentsSpec,
) -> ActorCritic:
    """PPO's actor-critic over one row: the agent's observation and its index."""
    return ppo.build_networks(experiment, obs_space, action_space, agents=agents)


def train(experiment: Experiment, run: RunFolder, resume: ResumePoint | None = None) -> Result:
    with training_setup(experiment, resume) as (venv, agent):
        return ppo.run(experiment, run, venv, agent, resume)
