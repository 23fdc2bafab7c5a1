"""Watching Milvus Lite engines from the outside, for the tests that start, share and kill them."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

from tests.conftest import until


def engines(db: Path) -> list[int]:
    """Live milvus-lite engines serving `db`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if len(argv) > 1 and argv[0].endswith(b"/milvus") and argv[1] == str(db).encode() and state not in "ZX":
            found.append(int(entry))
    return found


def no_engine_left(db: Path, timeout: float = 10) -> None:
    until(lambda: not engines(db), timeout, f"every engine on {db} exits (left: {engines(db)})")


class Namespace:
    """A mount namespace held open by a `sleep` (ours), set up by `script`; processes enter it with `prefix`."""

    def __init__(self, script: str) -> None:
        self.process = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{script} && echo ready && exec sleep 900"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""  # "ready", or nothing when the script failed
        if line.strip() != "ready":
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            assert self.process.stderr is not None
            raise OSError(self.process.stderr.read().strip()[:300] or f"exit code {self.process.returncode}")
        self.prefix = ["nsenter", "-t", str(self.process.pid), "-m", "--"]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=60)

    def close(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
