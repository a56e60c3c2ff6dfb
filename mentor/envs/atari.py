"""The Atari games as the literature trains on them: ``env.preset: atari``.

Each copy of an ``ALE/<Game>-v5`` id runs in ale-py's own vector env (``AtariVectorEnv``, C++
threads), with the standard preprocessing of Mnih et al. (2015) and Machado et al. (2018):

- **no-op reset**: a random number (0 to 30) of NOOP actions after each reset, so that episodes
  do not all start from the same frame; FIRE after a reset in games that need it to start;
- **frame skip 4 with max-pooling**: each action repeats for 4 frames and the observation is the
  pixelwise maximum of the last two (sprites that flicker stay visible);
- **84 x 84 grayscale**, **4 frames stacked** along the channel axis: observations are
  ``(84, 84, 4)`` uint8 images, channels last like every image in mentor (the Nature CNN reads
  them, ``core/networks.py``);
- **sticky actions** with probability 0.25 (the v5 default; ``env.kwargs:
  {repeat_action_probability: 0.0}`` gives the older v4 behaviour of the RL Zoo's
  ``NoFrameskip-v4`` ids).

Two more belong to learning, not to the game, and mentor applies them to what the learner sees
(``LearningSignals``) while episode records keep the game's own: **reward clipping** to its sign
(-1, 0, 1), and **episodic life**: the loss of a life ends the value's horizon (``terminated``
for learning) while the game goes on, with no reset. Episode returns and lengths, in the
progress line, validation and evaluation, are whole games in the game's points — what papers
report — not lives and clipped rewards.

Without the preset an ALE id is the raw game (210 x 160 RGB frames, one env per copy, no
preprocessing). Atari envs resume by starting new episodes (``mentor.envs.snapshot``: ALE's
vector env has no state that can be saved).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from mentor.errors import ConfigError

PRESETS = ("atari",)
ATARI_VECTOR_ENV = "ale_py.vector_env:AtariVectorEnv"
FRAME_SKIP = 4
# The preprocessing every copy gets (AtariVectorEnv's arguments); the module docstring says why.
ATARI_PREPROCESSING: dict[str, Any] = {
    "noop_max": 30,
    "use_fire_reset": True,
    "frameskip": FRAME_SKIP,
    "maxpool": True,
    "img_height": 84,
    "img_width": 84,
    "grayscale": True,
    "stack_num": 4,
    "episodic_life": False,  # LearningSignals: life losses end the horizon, not the episode
    "reward_clipping": False,  # LearningSignals: clipped for learning, the game's in records
}
# What a user may change through env.kwargs (the rest is the preset).
ATARI_KWARGS = ("repeat_action_probability", "full_action_space", "max_num_frames_per_episode")


def is_ale(env_spec: EnvSpec | None) -> bool:
    """Whether a registered id is an ALE game with ale-py's vector env (the v5 ids)."""
    return env_spec is not None and env_spec.vector_entry_point == ATARI_VECTOR_ENV


def check_preset(preset: str | None, env_id: str, env_spec: EnvSpec | None) -> None:
    """The preset must fit the env: ``atari`` takes the ``ALE/<Game>-v5`` ids."""
    if preset is None:
        return
    if preset not in PRESETS:
        raise ConfigError(f"env.preset {preset!r} is not known; use one of {', '.join(PRESETS)}")
    if not is_ale(env_spec):
        raise ConfigError(
            f"env.preset 'atari' needs an Atari game of ale-py's v5 ids (ALE/Breakout-v5, "
            f"ALE/Pong-v5, ...), got env '{env_id}'"
        )


def atari_vector_env(
    env_spec: EnvSpec, kwargs: dict[str, Any], num_envs: int, max_episode_steps: int | None
) -> gym.vector.VectorEnv:
    """``num_envs`` preprocessed copies of an ALE game (module docstring), channels last."""
    unknown = sorted(set(kwargs) - set(ATARI_KWARGS))
    if unknown:
        raise ConfigError(
            f"env.kwargs {', '.join(unknown)} cannot be set under env.preset 'atari' (it sets "
            f"the preprocessing); these can: {', '.join(ATARI_KWARGS)}"
        )
    options = {**env_spec.kwargs, **kwargs, **ATARI_PREPROCESSING}
    options.pop("obs_type", None)
    if max_episode_steps is not None:  # ALE counts frames
        options["max_num_frames_per_episode"] = max_episode_steps * FRAME_SKIP
    env = gym.make_vec(env_spec.id, num_envs, vectorization_mode="vector_entry_point", **options)
    return ChannelsLast(env)


class ChannelsLast(gym.vector.VectorObservationWrapper):
    """ALE's stacked frames (stack, H, W) as mentor's images are, (H, W, stack)."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        stack, height, width = env.single_observation_space.shape
        self.single_observation_space = spaces.Box(0, 255, (height, width, stack), np.uint8)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, env.num_envs
        )

    def observations(self, observations: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(observations.transpose(0, 2, 3, 1))


class LearningSignals:
    """What the learner sees of an Atari step (module docstring): rewards clipped to their
    sign, and ``terminated`` also where a copy lost a life and its game goes on. A copy that
    was just reset (``started``) lost nothing: its lives were refilled."""

    def __init__(self, num_envs: int) -> None:
        self.lives = np.zeros(num_envs, dtype=np.int64)

    def reset(self, infos: dict[str, Any]) -> None:
        self.lives[:] = infos["lives"]

    def __call__(
        self,
        rewards: np.ndarray,
        terminated: np.ndarray,
        infos: dict[str, Any],
        started: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        lives = np.asarray(infos["lives"], dtype=np.int64)
        lost = (lives < self.lives) & ~started
        self.lives[:] = lives
        return np.sign(rewards).astype(np.float32), terminated | lost
