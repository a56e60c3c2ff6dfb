"""Deployment: an agent's policy alone, as an ONNX model or a TorchScript module, for programs
that import neither mentor nor (for ONNX) torch.

What is written is one function, batch in and batch out: ``obs`` (a batch of observations as the
env gives them: float32, or uint8 for images; for spaces other than Box, the encoding
``envs/spaces.py: obs_encoder`` makes, one-hots concatenated) to ``action`` (the deterministic
action in the env's form: the likeliest index for Discrete, the mean in the bounds for Box,
clipped to them). Observation normalization is inside, with the statistics frozen at the
checkpoint. ``export.json`` beside it says the input's shape and type and the action space.

Every export is checked before it is kept: the written file, run by onnxruntime (or loaded by
``torch.jit.load``), must give mentor's own actions on 1,000 observations drawn from the
observation space (the same index for discrete actions; within 1e-5 for continuous ones).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space
from torch import nn

from mentor.agent import Agent
from mentor.envs.spaces import is_image, space_to_json, to_env_actions
from mentor.errors import ConfigError, MissingPackageError
from mentor.runs.folder import write_json

FORMATS = ("onnx", "torchscript")
FILES = {"onnx": "policy.onnx", "torchscript": "policy.pt"}
CHECKED_OBSERVATIONS = 1000
TOLERANCE = 1e-5  # continuous actions, in the env's units


class DeployedPolicy(nn.Module):
    """The agent's deterministic action for a batch of observations, in the env's form."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self.policy = agent.policy
        space = agent.action_space
        self.flatten = isinstance(agent.observation_space, spaces.Box) and not is_image(
            agent.observation_space
        )
        self.box = isinstance(space, spaces.Box)
        self.shape = tuple(space.shape)
        low = high = start = torch.zeros(())
        if self.box:
            low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
        elif isinstance(space, spaces.Discrete):
            start = torch.as_tensor(int(space.start))
        elif isinstance(space, spaces.MultiDiscrete):
            start = torch.as_tensor(space.start).reshape(-1)
        self.register_buffer("low", low.float().reshape(-1))
        self.register_buffer("high", high.float().reshape(-1))
        self.register_buffer("start", start.long())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            obs = obs.reshape(obs.shape[0], -1)
        actions = self.policy.predict(obs, True)
        if self.box:
            flat = actions.reshape(actions.shape[0], -1)
            return torch.minimum(torch.maximum(flat, self.low), self.high).reshape(
                (-1, *self.shape)
            )
        return actions + self.start


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"export format '{fmt}': choose one of safetensors, {', '.join(FORMATS)}")


def input_spec(agent: Agent) -> dict[str, Any]:
    """The deployed function's input: name, shape (batch first), dtype, and whether it is the
    observation itself or mentor's encoding of it."""
    space = agent.observation_space
    if is_image(space):
        return {"name": "obs", "shape": ["batch", *space.shape], "dtype": "uint8", "encoded": False}
    if isinstance(space, spaces.Box):
        shape = ["batch", *space.shape]
        return {"name": "obs", "shape": shape, "dtype": "float32", "encoded": False}
    size = sample_observations(agent, 1).shape[1]
    return {"name": "obs", "shape": ["batch", size], "dtype": "float32", "encoded": True}


def refuse_unsupported(agent: Agent) -> None:
    """A ConfigError for the agents a single observation-to-action function cannot serve."""
    if agent.agents is not None:
        raise ConfigError(
            "export --format onnx/torchscript: a multi-agent agent acts through its agents' "
            "rows, which the deployed function does not take yet; export it without --format "
            "(mentor.load reads it)"
        )
    if agent.recurrent:
        raise ConfigError(
            "export --format onnx/torchscript: this agent's policy has a state (an LSTM or GRU, "
            "or an option in force), which the deployed function does not carry yet; export it "
            "without --format (mentor.load reads it)"
        )
    if isinstance(agent.observation_space, spaces.Dict) and "action_mask" in (
        agent.observation_space.spaces
    ):
        raise ConfigError(
            "export --format onnx/torchscript: this agent's env gives action masks, which the "
            "deployed function does not take yet; export it without --format (mentor.load "
            "reads it and honours masks)"
        )


def sample_observations(agent: Agent, n: int = CHECKED_OBSERVATIONS, seed: int = 0) -> np.ndarray:
    """``n`` observations drawn from the observation space (seeded), as the input takes them."""
    space = batch_space(agent.observation_space, n)
    space.seed(seed)
    batch = space.sample()
    if isinstance(agent.observation_space, spaces.Box):
        return batch if is_image(agent.observation_space) else batch.astype(np.float32)
    return agent.encode(batch).astype(np.float32)


def mentor_actions(agent: Agent, obs: np.ndarray) -> np.ndarray:
    """The actions mentor itself takes: ``agent.act`` on the observations (on their encoding,
    for spaces other than Box, as ``act`` takes it after encoding)."""
    if isinstance(agent.observation_space, spaces.Box):
        return np.asarray(agent.act(obs))
    return to_env_actions(agent.action_space, agent.predict(obs, True))


def unsupported_op(exc: BaseException) -> str | None:
    """The operator an exporter's error names (``OpOverload(op='prims.zeta')``,
    ``torch.ops.aten.histc.default``, ``aten::kthvalue``), as ``namespace::name``; None if
    it names none."""
    text = "\n".join(str(e) for e in _chain(exc))
    for pattern in (
        r"op='(\w+)\.(\w+)'",
        r"torch\.ops\.(\w+)\.(\w+)",
        r"\b(aten|prims)(?:::|\.)(\w+)",
    ):
        found = re.search(pattern, text)
        if found:
            return f"{found.group(1)}::{found.group(2)}"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def write_onnx(module: DeployedPolicy, example: torch.Tensor, path: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise MissingPackageError(
            "export --format onnx needs onnx, onnxscript and onnxruntime: pip install "
            "'mentor[export]'"
        ) from None
    batch = torch.export.Dim("batch", min=1)
    quiet = logging.getLogger("torch.onnx")
    level, quiet.level = quiet.level, logging.ERROR
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (example,), str(path), dynamo=True, input_names=["obs"],
                output_names=["action"], dynamic_shapes={"obs": {0: batch}}, verbose=False,
            )  # fmt: skip
    except Exception as exc:  # the exporter raises several kinds; the op is what matters
        op = unsupported_op(exc)
        what = f"operator {op}" if op else f"a step ({type(exc).__name__})"
        raise ConfigError(
            f"export --format onnx: ONNX cannot express {what} of this policy; export it "
            "with --format torchscript, or without --format (mentor.load reads it)"
        ) from None
    finally:
        quiet.level = level


def write_torchscript(module: DeployedPolicy, example: torch.Tensor, path: Path) -> None:
    # torch.jit.trace is deprecated in favour of torch.export, but TorchScript is what C++
    # (libtorch) and mobile runtimes load today; a trace is exact for these feed-forward
    # policies (no branch depends on the data) and checked below like the ONNX file.
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, example, check_trace=False)
    except Exception as exc:
        op = unsupported_op(exc)
        what = f"operator {op}" if op else f"a step ({type(exc).__name__}: {exc})"
        raise ConfigError(f"export --format torchscript: cannot trace {what}") from None
    traced.save(str(path))


def run_file(fmt: str, path: Path, obs: np.ndarray) -> np.ndarray:
    """The written file's actions, run outside mentor's modules."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["action"], {"obs": obs})[0]
    loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        return loaded(torch.as_tensor(obs)).numpy()


def agreement(agent: Agent, ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """How the file's actions compare with mentor's: exact for integer actions, the largest
    difference for continuous ones."""
    if isinstance(agent.action_space, spaces.Box):
        worst = float(np.max(np.abs(ours.astype(np.float64) - theirs))) if len(ours) else 0.0
        return {"max_abs_difference": worst, "ok": worst <= TOLERANCE}
    differ = int(np.sum(np.any((ours != theirs).reshape(len(ours), -1), axis=1)))
    return {"differing_actions": differ, "ok": differ == 0}


def export_policy(agent: Agent, folder: Path, fmt: str) -> dict[str, Any]:
    """Write ``folder``/policy.onnx or policy.pt and ``export.json``; check the file against
    mentor's actions on 1,000 observations (ConfigError, the file removed, if they differ).
    Returns what ``export.json`` holds."""
    check_format(fmt)
    refuse_unsupported(agent)
    module = DeployedPolicy(agent).eval().cpu()
    obs = sample_observations(agent)
    example = torch.as_tensor(obs[:2])
    path = folder / FILES[fmt]
    (write_onnx if fmt == "onnx" else write_torchscript)(module, example, path)
    check = agreement(agent, mentor_actions(agent, obs), run_file(fmt, path, obs))
    if not check["ok"]:
        path.unlink()
        raise ConfigError(
            f"export --format {fmt}: the written policy's actions differ from mentor's on "
            f"{CHECKED_OBSERVATIONS} observations ({check}); nothing kept"
        )
    info = {
        "format": fmt,
        "file": path.name,
        "input": input_spec(agent),
        "output": {"name": "action", "action_space": space_to_json(agent.action_space)},
        "deterministic": True,
        "checked": {"observations": CHECKED_OBSERVATIONS, **check},
    }
    write_json(folder / "export.json", info)
    return info
