"""The run folder: one self-describing directory per training run.

runs/<name>/
  experiment.yaml   the resolved experiment (every default filled in)
  manifest.json     versions, seed, git commit, host, start, stop, stop reason
  metrics.csv       training metrics, one row per update
  validation.csv    one row per validation
  tb/               TensorBoard events
  checkpoints/      step_<N>/ (the latest few) and best/ (best on validation)
  final/            the agent when training stopped
  evaluation.json   the final evaluation
  report/           learning curve and summary (``mentor report``)
  .lock             held by the process training in the folder (``mentor train``/``resume``)
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mentor.errors import ConfigError
from mentor.runs.signals import GracefulStop


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("mentor", "torch", "gymnasium", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "unknown"
    return out


def git_commit() -> str | None:
    """The commit of the working directory's repository, when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Hooks:
    """What a caller adds to a run's training session (see ``mentor.runs.stopping``)."""

    stop_rules: list[Callable[[Any], str | None]] = field(default_factory=list)
    on_update: list[Callable[[Any], None]] = field(default_factory=list)
    on_validation: list[Callable[[Any], None]] = field(default_factory=list)


class RunFolder:
    """Creates the folder (never silently over another run) and keeps its manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: dict[str, Any] = {}
        # Ctrl-C and SIGTERM: entered by whoever trains in the folder, checked by the session.
        self.signals = GracefulStop()
        # A caller's stop rules and listeners (mentor.train(..., stop_rules=...)): the session
        # of whichever method trains here adds them to its own.
        self.hooks = Hooks()
        self._lock: Any = None

    @classmethod
    def create(cls, output_dir: str | Path, name: str, overwrite: bool = False) -> RunFolder:
        """``output_dir/name``; when it exists: replaced if ``overwrite``, else ``name_2``, ...
        The folder is locked until ``release`` (or the process ends)."""
        base = Path(output_dir)
        path = base / name
        if path.exists() and overwrite:
            if (path / ".lock").exists():
                cls(path).lock()  # a run training there now is not replaced under it
            if not (path / "manifest.json").exists():
                raise ConfigError(f"refusing to overwrite '{path}': it is not a mentor run folder")
            shutil.rmtree(path)
        suffix = 2
        while path.exists():
            path = base / f"{name}_{suffix}"
            suffix += 1
        try:
            (path / "checkpoints").mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(f"cannot create run folder '{path}': {exc.strerror}") from None
        run = cls(path)
        run.lock()
        return run

    def lock(self) -> None:
        """Hold the folder's lock: one process trains in a run folder at a time (two writers
        would interleave metrics.csv rows and TensorBoard files). A second one gets an error
        naming the holder. The lock goes with ``release`` or with the process."""
        file = open(self.path / ".lock", "a+")  # noqa: SIM115 (held open while training)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise ConfigError(
                f"run folder '{self.path}' is in use by {holder}; wait for it to end, or train "
                "under another name (--name)"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"process {os.getpid()} ({' '.join(['mentor', *sys.argv[1:3]])})")
        file.flush()
        self._lock = file

    def release(self) -> None:
        """Let another process train in the folder (``mentor resume``)."""
        if self._lock is not None:
            self._lock.truncate(0)  # no holder named once it is free
            self._lock.close()
            self._lock = None

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder, to resume."""
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"'{path}' is not a mentor run folder (no manifest.json); give the folder "
                "'mentor train' wrote, such as runs/NAME"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"'{path / 'manifest.json'}' cannot be read ({exc})") from None
        run = cls(path)
        run.manifest = manifest
        probe = path / ".write-test"
        try:  # a resume must be able to write its checkpoints: find out now, not after training
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot write in run folder '{path}': {exc.strerror}") from None
        run.lock()
        return run

    def record_resume(self, record: dict[str, Any]) -> None:
        """A resumed run: the stop record is cleared and the resume listed with where from."""
        resumes = [*self.manifest.get("resumes", []), {"at": now(), **record}]
        self.update(resumes=resumes, stop=None, stop_reason=None)

    def start(self, experiment_yaml: str, info: dict[str, Any]) -> None:
        (self.path / "experiment.yaml").write_text(experiment_yaml)
        self.manifest = {
            **info,
            "versions": versions(),
            "git_commit": git_commit(),
            "host": platform.node(),
            "platform": platform.platform(),
            "start": now(),
            "stop": None,
            "stop_reason": None,
            "_started": time.time(),
        }
        self.save_manifest()

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.save_manifest()

    def finish(self, stop_reason: str, **fields: Any) -> None:
        self.update(stop=now(), stop_reason=stop_reason, **fields)

    def save_manifest(self) -> None:
        write_json(
            self.path / "manifest.json", {k: v for k, v in self.manifest.items() if k[0] != "_"}
        )
