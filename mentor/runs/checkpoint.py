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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mentor.errors import CheckpointError

# 1: mentor 0.1.0, agents only. 2: the whole training state under meta["state"] (resumable).
FORMAT_VERSION = 2
RESUMABLE_FROM = 2
META = "meta.json"


def save(path: Path, components: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> None:
    """Write a checkpoint folder atomically (replacing an older one at ``path``). On an OSError
    (a full disk, an unwritable folder) the partial copy is removed and the error raised: the
    previous checkpoint at ``path`` is untouched."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        _write(tmp, components, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():  # rename the old one aside first: os.replace cannot replace a folder
        old = path.with_name(f".old-{path.name}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write(tmp: Path, components: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> None:
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    checksums = {}
    for name, tensors in components.items():
        file = tmp / f"{name}.safetensors"
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(file))
        # safetensors creates its files 0600: give them the mode any other file gets, so that
        # another user or a service account can load a deployed agent.
        os.chmod(file, 0o666 & ~_umask())
        checksums[file.name] = _sha256(file)
    meta = {"format_version": FORMAT_VERSION, **meta, "checksums": checksums}
    (tmp / META).write_text(json.dumps(meta, indent=2))
    for file in tmp.iterdir():
        _fsync(file)


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


@dataclass
class ResumePoint:
    """The checkpoint a resumed run continues from, and the newer ones passed over (and why)."""

    folder: Path
    components: dict[str, dict[str, torch.Tensor]]
    meta: dict[str, Any]
    skipped: list[str]

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def newest_intact(run_dir: Path) -> ResumePoint:
    """The newest periodic or final checkpoint that loads and verifies. A truncated or corrupted
    one is passed over, named with its problem. (best/ is not a candidate: it may be older than
    others and leaves the replay buffer out.)"""
    candidates = []
    for folder in [*latest(run_dir), run_dir / "final"]:
        folder = _moved_aside(folder) or folder
        if not folder.exists():
            continue
        try:
            step = int(json.loads((folder / META).read_text())["step"])
        except (OSError, ValueError, KeyError, TypeError):
            step = int(folder.name[5:]) if folder.name.startswith("step_") else -1
        candidates.append((step, folder.name == "final", folder))
    skipped = []
    for _, _, folder in sorted(candidates, key=lambda c: (c[0], c[1]), reverse=True):
        try:
            components, meta = load(folder)
        except CheckpointError as exc:
            skipped.append(f"{folder.name}: {exc}")
            continue
        return ResumePoint(folder, components, meta, skipped)
    if skipped:
        raise CheckpointError(
            f"run folder '{run_dir}' has no intact checkpoint to resume from: " + "; ".join(skipped)
        )
    raise CheckpointError(
        f"run folder '{run_dir}' has no checkpoint to resume from yet (set "
        "checkpoints.every_steps to write them during training)"
    )


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    """The process's umask (read without changing it where /proc says it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(file: Path) -> None:
    with open(file, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
