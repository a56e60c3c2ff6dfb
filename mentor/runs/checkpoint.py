"""Checkpoints: a folder of safetensors files (tensors) and one JSON file (everything else).

    <checkpoint>/
      meta.json            format version, method, spaces, counters, RNG states, checksums
      model.safetensors    the agent's parameters and buffers (incl. normalization statistics)
      <other>.safetensors  optimizer state, reward statistics, torch RNG state, ...

Nothing here unpickles: loading a checkpoint never runs code from the file. A folder is written
to a hidden temporary sibling, flushed, and renamed into place, so a crash mid-write leaves the
previous checkpoint as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mentor.errors import CheckpointError

FORMAT_VERSION = 1
META = "meta.json"


def save(path: Path, components: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> None:
    """Write a checkpoint folder atomically (replacing an older one at ``path``)."""
    tmp = path.with_name(f".tmp-{path.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    checksums = {}
    for name, tensors in components.items():
        file = tmp / f"{name}.safetensors"
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(file))
        checksums[file.name] = _sha256(file)
    meta = {"format_version": FORMAT_VERSION, **meta, "checksums": checksums}
    (tmp / META).write_text(json.dumps(meta, indent=2))
    for file in tmp.iterdir():
        _fsync(file)
    if path.exists():  # rename the old one aside first: os.replace cannot replace a folder
        old = path.with_name(f".old-{path.name}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


def load(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read and verify a checkpoint folder: (components, meta). Raises CheckpointError."""
    path = _moved_aside(Path(path)) or Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if not (path / META).is_file():
        raise CheckpointError(
            f"'{path}' is not a mentor checkpoint: no {META} (give a run folder or a checkpoint "
            "folder such as runs/NAME/final)"
        )
    try:
        meta = json.loads((path / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"'{path / META}' is not valid JSON ({exc})") from None
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has checkpoint format {version!r}; this mentor reads up to "
            f"{FORMAT_VERSION}: upgrade with 'pip install -U mentor'"
        )
    components = {}
    for name, expected in meta.get("checksums", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint '{path}' is missing its file '{name}'")
        if _sha256(file) != expected:
            raise CheckpointError(f"checkpoint file '{file}' is corrupted (checksum mismatch)")
        try:
            components[name.removesuffix(".safetensors")] = load_file(str(file))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"checkpoint file '{file}' cannot be read ({exc})") from None
    return components, meta


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from a run folder (best, else final, else the latest) or itself."""
    path = Path(path)
    if (path / META).is_file():
        return path
    if moved := _moved_aside(path):
        return moved
    if not path.exists():
        raise CheckpointError(f"'{path}' does not exist")
    if not (path / "manifest.json").is_file():
        raise CheckpointError(
            f"'{path}' is neither a mentor run folder nor a checkpoint folder (no manifest.json "
            f"or {META})"
        )
    for candidate in (path / "checkpoints" / "best", path / "final", *latest(path)):
        candidate = _moved_aside(candidate) or candidate
        if (candidate / META).is_file():
            return candidate
    raise CheckpointError(f"run folder '{path}' has no checkpoint yet")


def _moved_aside(path: Path) -> Path | None:
    """The previous checkpoint, when a save was killed between its two renames: ``path`` is gone
    and the old folder waits at ``.old-<name>`` (the new one at ``.tmp-<name>`` may be partial)."""
    old = path.with_name(f".old-{path.name}")
    return old if not path.exists() and (old / META).is_file() else None


def latest(run_dir: Path) -> list[Path]:
    """Periodic checkpoints of a run, newest first."""
    folder = run_dir / "checkpoints"
    return sorted(folder.glob("step_*"), reverse=True) if folder.is_dir() else []


def prune(run_dir: Path, keep_last: int) -> None:
    for old in latest(run_dir)[keep_last:]:
        shutil.rmtree(old, ignore_errors=True)


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """An optimizer's state as flat tensors plus its param groups as JSON-ready data."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(file: Path) -> None:
    with open(file, "rb") as f:
        os.fsync(f.fileno())
