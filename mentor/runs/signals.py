"""Ctrl-C and SIGTERM during training.

The first SIGINT or SIGTERM asks the loop to stop: the current update finishes, a checkpoint is
written, the manifest records the signal, and ``mentor resume RUN`` continues exactly. A second one
stops at once (``KeyboardInterrupt``): checkpoints are written atomically, so the last complete one
is intact whatever was being written at that moment.

The handlers are installed from the start of ``mentor.train`` / ``mentor.resume`` (before the
env checks and the run folder), not only around the loop: a signal that comes while the envs
are made is kept, and the loop stops at its first boundary. Entering an active ``GracefulStop``
again (the session does, around its loop) keeps the handlers and the request already made.

Handlers can only be installed from the main thread; elsewhere (a training run started in a
worker thread) signals keep their usual behaviour.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """``with GracefulStop() as stop:`` ... ``if stop.requested: ...``"""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}
        self._depth = 0

    def __enter__(self) -> GracefulStop:
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            raise KeyboardInterrupt(f"second {name}: stopping at once")
        self.requested = name
        print(
            f"\n{name}: finishing this update, then saving a checkpoint "
            f"({name} again stops at once)",
            file=sys.stderr,
            flush=True,
        )
