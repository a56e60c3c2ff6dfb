"""An agent's inputs: one observation or a batch, and a typed error naming the shapes for
anything else (issue 10, item 2)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from mentor.agent import Agent
from mentor.errors import ObservationError
from mentor.experiment import Experiment


def agent_for(observation_space: spaces.Space, action_space: spaces.Space) -> Agent:
    return Agent.build(Experiment(), observation_space, action_space)


@pytest.fixture(scope="module")
def cartpole() -> tuple[Agent, gym.Env]:
    env = gym.make("CartPole-v1")
    return agent_for(env.observation_space, env.action_space), env


def test_one_observation_gives_one_action_and_a_batch_gives_a_batch(cartpole) -> None:
    agent, env = cartpole
    obs, _ = env.reset(seed=0)
    assert isinstance(agent.act(obs), int)
    assert agent.act(np.stack([obs, obs, obs])).shape == (3,)
    assert isinstance(agent.act(obs.tolist()), int)  # a list is an observation too


@pytest.mark.parametrize(
    ("obs", "says"),
    [
        (
            np.zeros(3),
            "has shape (3,); the observation space Box(shape=(4,), dtype=float32) "
            "takes one observation of shape (4,) or a batch of shape (N, 4)",
        ),
        (1.0, "has shape ()"),
        (np.zeros((2, 5)), "has shape (2, 5)"),
        (np.zeros((0, 4)), "an empty batch (0, 4)"),
        ("left", "must be numeric"),
        ([[1.0, 2.0], [3.0]], "is not an array"),
    ],
)
def test_an_observation_of_the_wrong_shape_is_a_typed_error(cartpole, obs, says: str) -> None:
    agent, _ = cartpole
    with pytest.raises(ObservationError) as error:
        agent.act(obs)
    assert says in str(error.value)


def test_resets_obs_info_tuple_is_named(cartpole) -> None:
    agent, env = cartpole
    with pytest.raises(ObservationError, match=r"did you pass reset\(\)'s \(obs, info\)\?"):
        agent.act(env.reset(seed=0))


def test_discrete_and_dict_observations() -> None:
    agent = agent_for(spaces.Discrete(5), spaces.Discrete(2))
    assert agent.act(3) in (0, 1)
    assert agent.act(np.array([0, 4])).shape == (2,)
    with pytest.raises(ObservationError, match=r"shape \(2, 2\)"):
        agent.act(np.zeros((2, 2), dtype=np.int64))

    space = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Discrete(3)})
    agent = agent_for(space, spaces.Discrete(2))
    assert agent.act({"a": np.zeros(2), "b": 1}) in (0, 1)
    assert agent.act({"a": np.zeros((4, 2)), "b": np.arange(4) % 3}).shape == (4,)
    with pytest.raises(ObservationError, match=r"keys \['a', 'b'\].*got \['a'\]"):
        agent.act({"a": np.zeros(2)})
    with pytest.raises(ObservationError, match=r"observation\['a'\] has shape \(3,\)"):
        agent.act({"a": np.zeros(3), "b": 1})
    with pytest.raises(ObservationError, match="mix one observation and a batch"):
        agent.act({"a": np.zeros((4, 2)), "b": 1})
