"""Console progress: one line per thing that happens, stamped with the time since the run began."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._quiet = quiet
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.lines: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def say(self, stage: str, message: str) -> None:
        line = f"[{self.elapsed():6.1f}s] [{stage}] {message}"
        with self._lock:
            self.lines.append(line)
            if not self._quiet:
                print(line, file=self._stream, flush=True)

    def plain(self, text: str) -> None:
        with self._lock:
            self.lines.extend(text.splitlines())
            if not self._quiet:
                print(text, file=self._stream, flush=True)

    def always(self, text: str, stream: TextIO | None = None) -> None:
        """Printed even with --quiet: the summary, and errors (those to stderr)."""
        with self._lock:
            self.lines.extend(text.splitlines())
            print(text, file=stream or self._stream, flush=True)
