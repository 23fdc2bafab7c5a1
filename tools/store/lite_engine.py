"""Many processes, one Milvus Lite engine per file: find the engine that serves a Lite file, or start it, and hold a
lease on it (Linux and macOS; the locks and sockets are in `locks`).

Milvus Lite 2.5.1 runs its engine as a separate program (`milvus_lite/lib/milvus DB unix:SOCKET LEVEL LOCKFILE`)
that serves gRPC on a Unix socket, and exits as soon as it can take a POSIX write lock on LOCKFILE. pymilvus starts
one per process and ties it to that process; here it is shared instead, with no owner among the clients:

- Every process of ours using the file holds a lease: a write lock on one byte of `.NAME.db.lease` (its slot), for
  as long as it uses the file. The engine is started with the lease as its LOCKFILE, so it serves while any process
  holds a slot and exits by itself when the last one is gone, however it went (kill -9 included).
- `.NAME.db.engine.lock` is an flock that the engine holds for its whole life (the starter hands it its open file).
  Only the process that takes it may start an engine, and it can be taken only while no engine of ours is alive:
  there is never a second engine on one file, and a new one starts only once the old one is gone.
- The engine that serves is found by its socket, `/tmp/mlite-UID/<hash of the file's path>.sock` (a 0700 folder:
  short, as Unix socket paths end at 104-108 bytes, and the same for every engine on the file): under a lease, an
  engine that accepts a connection there is the one serving, and the socket tells its pid. `.NAME.db.engine` records
  its pid, start time and starter: a cache for people and logs.
- Every process of ours also holds a read lock on milvus-lite's own `.NAME.db.lock` while it holds its lease, so a
  plain `MilvusClient("NAME.db")` in another program fails rather than starting a second engine, and one that holds
  the file makes this module refuse it with a clear error.
- The engine runs in its own session with stdin closed and its output in `.NAME.db.engine.log`: it never writes on
  a stdio server's protocol pipe and never gets a terminal's Ctrl-C.

When the file's folder cannot be written (a read-only mount), the lease, lock, record and log live in
`/tmp/mlite-UID/` instead, named by the hash of the file's path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from tools.errors import UserError
from tools.store import locks

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # the most one process waits for an engine to be ready (its own or another's)
FOREIGN_GRACE_S = 1.0  # another program's hold on the file is waited for this long before the file is refused
EXIT_WAIT_S = 2.0  # the last process to leave waits this long, at most, for the engine to exit
LOG_MAX_BYTES = 1 << 20  # the engine log is started afresh past this size
DISCARD_WAIT_S = 5.0  # the most one waits for a discarded engine to exit
WRITE_WAIT_S = 300.0  # the most one write waits for the others (a batch takes seconds)
POLL_S = 0.01

# gRPC keeps a failed connection in reconnect backoff (1 s, then longer) and shares it between the channels of a
# process, so a new client would fail for about a second after an engine restart; an engine restarts in tens of ms.
GRPC_OPTIONS: dict[str, Any] = {
    "grpc.initial_reconnect_backoff_ms": 20,
    "grpc.min_reconnect_backoff_ms": 20,
    "grpc.max_reconnect_backoff_ms": 500,
    "grpc.use_local_subchannel_pool": 1,
}


@dataclass(frozen=True)
class EngineStatus:
    """The engine serving a Lite file, as this process sees it."""

    pid: int
    socket: str
    started_here: bool  # this process started this engine (else it joined one another process started)
    processes: int | None  # processes holding a lease on it, this one included (None when it cannot be told)


@dataclass(frozen=True)
class LiteFiles:
    """Where everything about one Lite file lives."""

    db: Path
    lease: Path
    engine_lock: Path
    write_lock: Path
    record: Path
    log: Path
    stock_lock: Path | None  # milvus-lite's own lock file, read-locked by every process of ours (None in a read-only folder)
    socket: Path

    @classmethod
    def of(cls, db: Path) -> LiteFiles:
        key = hashlib.sha256(str(db).encode()).hexdigest()[:16]
        if os.access(db.parent, os.W_OK):
            base, stock = db.parent / f".{db.name}", db.parent / f".{db.name}.lock"
        else:
            base, stock = locks.runtime_dir() / f"{key}.{db.name}", None
        return cls(
            db=db,
            lease=Path(f"{base}.lease"),
            engine_lock=Path(f"{base}.engine.lock"),
            write_lock=Path(f"{base}.write.lock"),
            record=Path(f"{base}.engine"),
            log=Path(f"{base}.engine.log"),
            stock_lock=stock,
            socket=locks.runtime_dir() / f"{key}.sock",
        )


class LiteEngine:
    """This process's hold on the engine of one Lite file; one per process and file (`for_file`)."""

    _all: ClassVar[dict[Path, LiteEngine]] = {}
    _all_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_file(cls, db: Path) -> LiteEngine:
        db = db.resolve()
        with cls._all_lock:
            if db not in cls._all:
                cls._all[db] = cls(db)
            return cls._all[db]

    def __init__(self, db: Path, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.files = LiteFiles.of(db)
        self.start_timeout_s = start_timeout_s
        self._lock = threading.RLock()
        self._users = 0  # connections of this process using the engine
        # The lease and stock lock files stay open for the process's life: closing any descriptor of a file drops
        # every POSIX lock the process holds on it.
        self._lease_fd: int | None = None
        self._stock_fd: int | None = None
        self._slot: int | None = None  # this process's lease slot, while held
        self._pid: int | None = None  # the engine last found or started
        self._started: set[int] = set()  # engines this process started

    @property
    def pid(self) -> int | None:
        """The engine this process used last."""
        return self._pid

    # the lease

    def acquire(self) -> None:
        """One more user in this process; the lease itself is taken by `ensure`."""
        with self._lock:
            self._users += 1

    def release(self) -> None:
        """One user fewer; the last one drops the lease, and if no process holds one any more, waits (briefly)
        for the engine to exit, so that whatever runs next finds the file free."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users or self._slot is None or self._lease_fd is None:
                return
            locks.drop_slot(self._lease_fd, self._slot)
            self._slot = None
            pid, self._pid = self._pid, None
            if pid is not None and locks.slots_held(self._lease_fd) == 0:
                deadline = time.monotonic() + EXIT_WAIT_S
                while not locks.flock_free(self.files.engine_lock) and time.monotonic() < deadline:
                    time.sleep(POLL_S)
            if self._stock_fd is not None:
                locks.unlock(self._stock_fd)  # only once the engine is gone, so no plain client starts beside it

    def _take_lease(self, deadline: float) -> None:
        if self._slot is not None:
            return
        if self._lease_fd is None:
            self._lease_fd = locks.open_lock(self.files.lease, self.files.db)
        if self.files.stock_lock is not None and self._stock_fd is None:
            self._stock_fd = locks.open_lock(self.files.stock_lock, self.files.db)
        foreign_since: float | None = None
        while self._stock_fd is not None and not locks.read_lock(self._stock_fd):
            foreign_since = foreign_since or time.monotonic()
            if time.monotonic() - foreign_since > FOREIGN_GRACE_S:
                holder = locks.lock_holder(self._stock_fd)
                raise _foreign(self.files.db, holder[2] if holder else None)
            time.sleep(POLL_S)
        # The only refusal comes in the instant an exiting engine holds the write lock: wait it out.
        while (slot := locks.take_slot(self._lease_fd)) is None:
            if time.monotonic() > deadline:
                if self._stock_fd is not None:
                    locks.unlock(self._stock_fd)
                raise UserError(f"Could not take a lease on {self.files.lease} in {self.start_timeout_s:g} s")
            time.sleep(POLL_S)
        self._slot = slot

    # finding or starting the engine

    def ensure(self) -> EngineStatus:
        """The engine serving the file, started here if none is; this process holds a lease on it from now on."""
        deadline = time.monotonic() + self.start_timeout_s
        with self._lock:
            locks.private_dir(locks.runtime_dir())
            self._take_lease(deadline)
            previous = self._pid
            while True:
                pid = locks.peer_pid(self.files.socket)
                if pid is not None:
                    self._pid = pid
                    if pid != previous:
                        self._log_join(pid, previous)
                    return self._status(pid)
                fd = locks.open_lock(self.files.engine_lock, self.files.db)
                try:
                    if locks.flock_nb(fd):  # no engine of ours is alive: start one
                        pid = self._start(fd, deadline)
                        self._pid = pid
                        self._log_start(pid, previous)
                        return self._status(pid)
                finally:
                    os.close(fd)  # a started engine holds the lock through its own copy
                if time.monotonic() > deadline:  # an engine lives, but does not answer on its socket
                    raise UserError(
                        f"The Milvus Lite engine for {self.files.db} holds {self.files.engine_lock} but does not accept "
                        f"connections on {self.files.socket}; stop it, use another MILVUS_URI file, or run a Milvus server"
                    )
                time.sleep(POLL_S * 2)

    # writes

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the file's write lock: one write at a time among every process of ours (and every thread: each
        call opens the lock file anew, and flock excludes other open files)."""
        fd = locks.open_lock(self.files.write_lock, self.files.db)
        try:
            deadline = time.monotonic() + WRITE_WAIT_S
            while not locks.flock_nb(fd):
                if time.monotonic() > deadline:
                    raise UserError(
                        f"Another process has been writing to the Milvus Lite file {self.files.db} for "
                        f"{WRITE_WAIT_S:g} s; try again when it is done"
                    )
                time.sleep(POLL_S)
            yield
        finally:
            os.close(fd)

    def discard(self, pid: int | None, reason: str) -> None:
        """Stop the engine `pid`: its memory holds writes its file does not. Every process's next call finds it gone
        and one of them starts a new engine, which reads the file as it is."""
        with self._lock:
            pid = pid if pid is not None else self._pid
            if pid is None or locks.peer_pid(self.files.socket) != pid:
                return  # gone already (another call, or process, stopped it)
            log.warning("stopping the Milvus Lite engine for %s (pid %d): %s", self.files.db, pid, reason)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + DISCARD_WAIT_S
            while locks.peer_pid(self.files.socket) == pid and time.monotonic() < deadline:
                time.sleep(POLL_S)

    def status(self) -> EngineStatus | None:
        """The engine this process uses now, without starting one; None before the first `ensure`."""
        with self._lock:
            if self._pid is None or self._slot is None:
                return None
            pid = locks.peer_pid(self.files.socket)
            return None if pid is None else self._status(pid)

    def _processes(self) -> int | None:
        return None if self._lease_fd is None else locks.slots_held(self._lease_fd) + (self._slot is not None)

    def _status(self, pid: int) -> EngineStatus:
        return EngineStatus(
            pid=pid, socket=str(self.files.socket), started_here=pid in self._started, processes=self._processes()
        )

    def _start(self, engine_lock: int, deadline: float) -> int:
        """Start an engine; called holding the engine lock, which the engine keeps for its life."""
        binary = _engine_binary()
        locks.private_dir(locks.runtime_dir(), writable=True)  # for the engine's socket
        try:
            os.unlink(self.files.socket)  # left by an engine that was killed: none is alive now
        except FileNotFoundError:
            pass
        except (IsADirectoryError, PermissionError) as exc:  # a folder in the socket's place: an empty one goes
            if not self.files.socket.is_dir():
                raise locks.runtime_dir_error(exc) from exc
            try:
                os.rmdir(self.files.socket)
            except OSError:
                raise UserError(
                    f"{self.files.socket} is a folder, where the Milvus Lite engine for {self.files.db} serves its "
                    "socket: move it away (it is not empty, so it was left as it is)"
                ) from None
        except OSError as exc:
            raise locks.runtime_dir_error(exc) from exc
        with contextlib.suppress(OSError):
            if self.files.log.stat().st_size > LOG_MAX_BYTES:
                self.files.log.unlink()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLOG_")}
        for name in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
            env[name] = f"{binary.parent}:{os.environ.get(name, '')}".rstrip(":")
        env["GLOG_logtostderr"] = "1"  # into the engine log, not glog files piling up in /tmp
        env["GLOG_minloglevel"] = "1"  # warnings and errors (the level argument is ignored with a lock file)
        argv = [str(binary), str(self.files.db), f"unix:{self.files.socket}", "ERROR", str(self.files.lease)]
        with self._open_log() as out:
            process = subprocess.Popen(
                argv,
                cwd=self.files.db.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                pass_fds=(engine_lock,),
                start_new_session=True,
            )
        self._started.add(process.pid)
        # Reap it if it exits while this process lives (after that, init does).
        threading.Thread(target=process.wait, name=f"milvus-lite-{process.pid}", daemon=True).start()
        record = {"pid": process.pid, "socket": str(self.files.socket), "db": str(self.files.db), "started": time.time()}
        self._write_record({**record, "starter": os.getpid()})
        while locks.peer_pid(self.files.socket) != process.pid:
            if process.poll() is not None:
                raise UserError(
                    f"The Milvus Lite engine for {self.files.db} exited at start (code {process.returncode}); "
                    f"its log {self.files.log} ends: {self._log_tail()}"
                )
            if time.monotonic() > deadline:
                process.kill()
                raise UserError(f"The Milvus Lite engine for {self.files.db} was not ready in time; see {self.files.log}")
            time.sleep(POLL_S)
        return process.pid

    def _open_log(self) -> IO[bytes]:
        """The engine's log, to append to; where it cannot be written, nowhere (and a warning)."""
        try:
            return open(self.files.log, "ab")
        except OSError as exc:
            log.warning(
                "cannot write the Milvus Lite engine log %s (%s): the engine runs without one, and a write it fails "
                "to store is noticed by the file's state alone",
                self.files.log,
                exc.strerror or exc,
            )
            return open(os.devnull, "ab")

    def _write_record(self, record: dict[str, Any]) -> None:
        """The record is a cache for people and logs: where it cannot be written (a folder turned read-only, a full
        disk), the engine serves all the same."""
        temp = self.files.record.with_name(f"{self.files.record.name}.{os.getpid()}")
        try:
            temp.write_text(json.dumps(record))
            os.replace(temp, self.files.record)
        except OSError as exc:
            log.warning("cannot write the Milvus Lite engine record %s: %s", self.files.record, exc.strerror or exc)
            with contextlib.suppress(OSError):
                temp.unlink()

    def read_record(self) -> dict[str, Any] | None:
        """The last engine start as recorded (a cache: may be stale)."""
        try:
            record = json.loads(self.files.record.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _log_tail(self) -> str:
        try:
            return self.files.log.read_bytes()[-600:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _log_start(self, pid: int, previous: int | None) -> None:
        if previous is None:
            log.info("started the Milvus Lite engine for %s (pid %d, %s)", self.files.db, pid, self.files.socket)
        else:
            log.warning("the Milvus Lite engine for %s (pid %d) is gone; started one (pid %d)", self.files.db, previous, pid)

    def _log_join(self, pid: int, previous: int | None) -> None:
        record = self.read_record() or {}
        by = f", started by pid {record['starter']}" if record.get("pid") == pid and "starter" in record else ""
        if previous is None:
            log.info(
                "joined the Milvus Lite engine for %s (pid %d%s; %s processes share it)",
                self.files.db,
                pid,
                by,
                self._processes(),
            )
        else:
            log.warning(
                "the Milvus Lite engine for %s (pid %d) is gone; joined the new one (pid %d%s)", self.files.db, previous, pid, by
            )


def _foreign(db: Path, pid: int | None) -> UserError:
    """Another program holds milvus-lite's own lock on the file: a plain client, or its engine."""
    who = f" (pid {pid})" if pid else ""
    return UserError(
        f"The Milvus Lite file {db} is already open in another process{who} that does not share it (a plain milvus-lite "
        "client, or an older version of this server). Stop that process, use another MILVUS_URI file, or run a Milvus server "
        "and point every process at it (MILVUS_URI=http://127.0.0.1:19530)"
    )


def _engine_binary() -> Path:
    # Found without importing milvus_lite, whose __init__ imports pkg_resources (about 0.2 s).
    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("milvus-lite is not installed: pip install milvus-lite==2.5.1")
    return Path(next(iter(spec.submodule_search_locations))) / "lib" / "milvus"
