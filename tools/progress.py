"""A long ingest says how far it is: a log line at a steady interval (files, chunks, chunks/s, time left), for
the places that show no progress bar (a server's stderr read by a desktop client's log, a CI job, a file)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tools import defaults

log = logging.getLogger("tools.ingest")


class ProgressLog:
    """Logs `update`s at most once per `interval` seconds, the first after `interval` seconds, so that a short
    ingest logs nothing; `finish` logs the totals when anything was logged before."""

    def __init__(
        self,
        total: int,
        what: str = "ingest",
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.what, self.clock = total, what, clock
        self.interval = defaults.PROGRESS_LOG_S if interval is None else interval
        self.started = self.last = clock()
        self.lines = 0

    def update(self, files: int, chunks: int) -> None:
        now = self.clock()
        if now - self.last < self.interval:
            return
        self.last = now
        self.lines += 1
        elapsed = now - self.started
        left = elapsed / files * (self.total - files) if files else None
        log.info(
            "%s: %d/%d files, %d chunks, %.1f chunks/s, %s",
            self.what, files, self.total, chunks, chunks / elapsed if elapsed else 0.0,
            f"about {_duration(left)} left" if left is not None else "time left unknown",
        )  # fmt: skip

    def finish(self, files: int, chunks: int) -> None:
        if self.lines:
            elapsed = self.clock() - self.started
            log.info("%s: done, %d files, %d chunks in %s", self.what, files, chunks, _duration(elapsed))


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
