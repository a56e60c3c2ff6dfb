"""The errors mentor raises on purpose.

Every error a user can cause (a bad experiment file, an env that breaks the API, a file that is
not a checkpoint) is a ``MentorError``: the CLI prints its message on one line and exits with 2.
Anything else is a bug in mentor and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MentorError(Exception):
    """Base class of the errors caused by the user's input or environment, not by mentor."""


class ConfigError(MentorError, ValueError):
    """An experiment file or override that does not validate."""


class EnvError(MentorError):
    """An environment that cannot be made or that breaks the Gymnasium API."""


class UnknownEnvError(EnvError):
    """An environment id that is neither registered nor an importable ``module:Class``."""


class UnsupportedSpaceError(EnvError):
    """A valid observation or action space that mentor does not support yet (Tuple, Text, ...)."""


class MissingPackageError(MentorError):
    """An optional package that an env (or an expert's module) needs is not installed here."""


class AllMaskedError(EnvError):
    """An action mask that allows no action (no value of some dimension) where one is needed."""


class EnvWorkerError(EnvError):
    """An env worker that crashed or hung once more than ``env.max_restarts`` allows."""


class ClusterLostError(EnvWorkerError):
    """The Ray cluster that rollout workers ran on went away (its head does not answer)."""


class ObservationError(MentorError, ValueError):
    """An observation given to an agent that does not fit its observation space."""


class NonFiniteError(MentorError):
    """A NaN or infinity in an observation, a reward or a loss."""


class DatasetError(MentorError):
    """A dataset that is empty, malformed, or does not fit the env (spaces, columns)."""


class CheckpointError(MentorError):
    """A path that is not a readable mentor checkpoint or run folder."""


class HookError(MentorError):
    """A stop rule or a listener given to a training session that raised or answered wrongly."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' (did you mean: a, b?)' for the closest choices, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""
