"""Observations encoded at the edge; actions converted back; spaces saved as JSON."""

import numpy as np
import pytest
from gymnasium import spaces

from mentor.envs.spaces import (
    check_action_space,
    obs_encoder,
    space_from_json,
    space_to_json,
    to_env_actions,
)
from mentor.errors import EnvError, UnsupportedSpaceError


def test_discrete_observations_become_one_hot_respecting_start() -> None:
    encode, shape = obs_encoder(spaces.Discrete(3, start=1))
    assert shape == (3,)
    np.testing.assert_array_equal(encode(np.array([1, 3])), [[1, 0, 0], [0, 0, 1]])


def test_multidiscrete_observations_become_concatenated_one_hots() -> None:
    encode, shape = obs_encoder(spaces.MultiDiscrete([2, 3]))
    assert shape == (5,)
    np.testing.assert_array_equal(encode(np.array([[1, 2]])), [[0, 1, 0, 0, 1]])


def test_dict_observations_are_concatenated_in_key_order() -> None:
    space = spaces.Dict({"b": spaces.Box(-1, 1, (2,)), "a": spaces.Discrete(2)})
    encode, shape = obs_encoder(space)
    assert shape == (4,)
    batch = {"a": np.array([1]), "b": np.array([[0.5, -0.5]], dtype=np.float32)}
    np.testing.assert_array_equal(encode(batch), [[0, 1, 0.5, -0.5]])  # Dict sorts keys: a, b


def test_dict_observation_with_a_missing_key_names_it() -> None:  # FAULT-8
    encode, _ = obs_encoder(spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Discrete(2)}))
    with pytest.raises(EnvError, match=r"missing \['b'\]"):
        encode({"a": np.array([0])})


def test_images_stay_uint8_and_vectors_become_float32() -> None:
    encode, shape = obs_encoder(spaces.Box(0, 255, (8, 8, 3), np.uint8))
    assert shape == (8, 8, 3)
    assert encode(np.zeros((2, 8, 8, 3), np.uint8)).dtype == np.uint8
    encode, shape = obs_encoder(spaces.Box(-1, 1, (2, 3), np.float64))
    out = encode(np.zeros((4, 2, 3)))
    assert shape == (6,) and out.shape == (4, 6) and out.dtype == np.float32


def test_box_actions_are_clipped_to_the_bounds() -> None:  # FAULT-9
    space = spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), dtype=np.float32)
    out = to_env_actions(space, np.array([[5.0, -3.0]]))
    np.testing.assert_array_equal(out, [[1.0, 0.0]])
    assert out.dtype == np.float32


def test_discrete_actions_are_shifted_by_start() -> None:
    np.testing.assert_array_equal(
        to_env_actions(spaces.Discrete(3, start=-1), np.array([0, 2])), [-1, 1]
    )


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1.0, 1.0, (3,), np.float32),
        spaces.Box(np.array([0.0, -2.0]), np.array([1.0, 2.0]), dtype=np.float64),
        spaces.Discrete(5, start=2),
        spaces.MultiDiscrete([2, 3]),
        spaces.MultiBinary(4),
        spaces.Dict({"x": spaces.Box(0, 1, (2,)), "y": spaces.Discrete(3)}),
    ],
)
def test_spaces_survive_a_json_round_trip(space) -> None:
    assert space_from_json(space_to_json(space)) == space


@pytest.mark.parametrize(
    "space",
    [
        spaces.Text(5),
        spaces.Tuple((spaces.Discrete(3), spaces.Discrete(2))),
        spaces.Sequence(spaces.Discrete(3)),
        spaces.Graph(spaces.Box(0, 1, (2,)), None),
    ],
    ids=["Text", "Tuple", "Sequence", "Graph"],
)
def test_unsupported_observation_space_names_it_and_the_supported_ones(space) -> None:
    kind = type(space).__name__
    with pytest.raises(UnsupportedSpaceError) as info:
        obs_encoder(space)
    message = str(info.value)
    assert f"the observation space is a {kind} space" in message
    assert "not support yet; supported: Box, Discrete, MultiDiscrete, MultiBinary, Dict" in message
    assert "Gymnasium API" not in message


def test_unsupported_space_inside_a_dict_names_the_entry() -> None:
    space = spaces.Dict({"x": spaces.Box(0, 1, (2,)), "cards": spaces.Tuple((spaces.Discrete(3),))})
    pattern = "entry 'cards' of the observation space is a Tuple space"
    with pytest.raises(UnsupportedSpaceError, match=pattern):
        obs_encoder(space)


def test_unsupported_action_space_names_it_and_the_supported_ones() -> None:
    with pytest.raises(
        UnsupportedSpaceError,
        match=r"the action space is a Tuple space \(Tuple\(Discrete\(2\), Discrete\(3\)\)\), "
        "which mentor does not support yet; supported: Discrete, Box, MultiDiscrete, MultiBinary",
    ):
        check_action_space(spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))))


def test_something_that_is_not_a_space_is_not_called_unsupported() -> None:
    with pytest.raises(
        EnvError, match="the observation space is a NoneType, not a gymnasium"
    ) as info:
        obs_encoder(None)
    assert not isinstance(info.value, UnsupportedSpaceError)
