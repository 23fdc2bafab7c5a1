"""Many processes, one Milvus Lite engine per file: find the engine that serves a Lite file, or start it, and
hold a lease on it (Linux).

Milvus Lite 2.5.1 runs its engine as a separate program (`milvus_lite/lib/milvus DB unix:SOCKET LEVEL LOCKFILE`)
that serves gRPC on a Unix socket, and exits as soon as it can take a write lock on LOCKFILE. pymilvus starts one
per process and ties it to that process; here it is shared instead, with no owner among the clients:

- Every process of ours using the file holds a lease: an OFD read lock on `.NAME.db.lease`, one per process, for
  as long as it uses the file. The engine is started with the lease as its LOCKFILE, so it serves while any
  process holds a lease and exits by itself when the last one is gone, however it went (kill -9 included).
- `.NAME.db.engine.lock` is an flock that the engine holds for its whole life (the starter hands it its open
  file). Only the process that takes it may start an engine, and it can be taken only while no engine of ours is
  alive: there is never a second engine on one file, and a new one starts only once the old one is gone.
- The engine that serves is found in /proc/locks (the process waiting for a write lock on the lease) and checked
  by its command line (this file, this lease) and by connecting to its socket. `.NAME.db.engine` records its pid,
  socket, start time and starter: a cache for people and logs, always checked against /proc.
- The socket is `/tmp/mlite-UID/<hash of the file's path>.sock` (a 0700 folder): short (Unix socket paths end at
  107 bytes), and the same for every engine on the file, so a restarted engine comes back at the same address.
- The engine also holds a write lock on milvus-lite's own `.NAME.db.lock`, so a plain `MilvusClient("NAME.db")` in
  another program fails rather than starting a second engine; an engine of such a program, found in /proc, makes
  this module refuse the file with a clear error.
- The engine runs in its own session with stdin closed and its output in `.NAME.db.engine.log`: it never writes
  on a stdio server's protocol pipe and never gets a terminal's Ctrl-C.

When the file's folder cannot be written (a read-only mount), the lease, lock, record and log live in
`/tmp/mlite-UID/` instead, named by the hash of the file's path.

Writes take turns: each holds an flock on `.NAME.db.write.lock` (`writing`). The engine applies an upsert as a
delete and an insert, so two processes upserting the same ids at once (two ingests of one folder) left both rows.

The engine acknowledges a write its file did not take (a read-only file, a full disk) and keeps it in memory, so
every process would go on seeing rows that a restart loses. Its log says so ("Insert data failed, errs: attempt to
write a readonly database"): `write_failures` reads what the log gained during a write, and `discard` stops an
engine whose memory no longer matches its file, so that the next call, in any process, starts one that reads it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from tools.errors import UserError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # the most one process waits for an engine to be ready (its own or another's)
FOREIGN_GRACE_S = 1.0  # another program's engine on the file is waited for this long before the file is refused
EXIT_WAIT_S = 2.0  # the last process to leave waits this long, at most, for the engine to exit
LOG_MAX_BYTES = 1 << 20  # the engine log is started afresh past this size
LOG_READ_MAX = 1 << 16  # the most of the log read after one write
DISCARD_WAIT_S = 5.0  # the most one waits for a discarded engine to exit
WRITE_WAIT_S = 300.0  # the most one write waits for the others (a batch takes seconds)
POLL_S = 0.01
# A glog error line of the engine about a write: "E20261201 07:53:36.255407 31879 collection_data.cpp:84]
# [SERVER][Insert][grpcpp_sync_ser][]Insert data failed, errs: attempt to write a readonly database"
_WRITE_FAILED = re.compile(
    r"^E\d{8} \S+\s+\d+ \S+\] (?:\[[^\]\n]*\])*(?P<message>[^\n]*?(?:(?:Insert|Delete|Create|Drop)\b[^\n]*failed|"
    r"readonly database|disk is full|disk I/O error)[^\n]*)$",
    re.MULTILINE,
)

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
    stock_lock: Path | None  # milvus-lite's own lock file, fenced by our engine (None in a read-only folder)
    socket: Path

    @classmethod
    def of(cls, db: Path) -> LiteFiles:
        key = hashlib.sha256(str(db).encode()).hexdigest()[:16]
        if os.access(db.parent, os.W_OK):
            base, stock = db.parent / f".{db.name}", db.parent / f".{db.name}.lock"
        else:
            base, stock = runtime_dir() / f"{key}.{db.name}", None
        return cls(
            db=db,
            lease=Path(f"{base}.lease"),
            engine_lock=Path(f"{base}.engine.lock"),
            write_lock=Path(f"{base}.write.lock"),
            record=Path(f"{base}.engine"),
            log=Path(f"{base}.engine.log"),
            stock_lock=stock,
            socket=runtime_dir() / f"{key}.sock",
        )


def runtime_dir() -> Path:
    """This user's folder for engine sockets (and lock files of read-only folders)."""
    return Path("/tmp") / f"mlite-{os.getuid()}"


def os_advice(exc: OSError) -> str:
    """What a person can do about a failed file operation, by its errno ("" when there is nothing to add)."""
    return {
        errno.EROFS: "its filesystem is mounted read-only",
        errno.EACCES: f"user {os.getuid()} may not write there: change the owner or mode",
        errno.EPERM: f"user {os.getuid()} may not write there: change the owner or mode",
        errno.ENOSPC: "the disk is full: free some space",
        errno.EDQUOT: "the disk quota is used up",
        errno.ENAMETOOLONG: "the path is too long: use a shorter MILVUS_URI",
    }.get(exc.errno or 0, "")


def file_error(action: str, exc: OSError, fix: str) -> UserError:
    """A failed file operation as a person reads it: what was done, to which file, why, what to change."""
    message = f"{action}: {exc.strerror or exc}"
    if exc.filename and str(exc.filename) not in action:
        message += f": {exc.filename}"
    if advice := os_advice(exc):
        message += f" ({advice})"
    return UserError(f"{message}; {fix}")


@dataclass(frozen=True)
class LogMark:
    """Where the engine log ended at some moment, and the engine this process used then."""

    inode: int
    size: int
    pid: int | None


class _Busy(Exception):
    """An engine of ours on this file is still on its way out: try again in a moment."""


class _Foreign(Exception):
    """Another program's engine serves the file, or holds its lock: refused, unless it goes within a moment (its
    program has just exited, and the engine follows it within tens of ms)."""


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
        self._lease: int | None = None  # the lease's file descriptor, while held
        self._pid: int | None = None  # the engine last found or started
        self._started: set[int] = set()  # engines this process started

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
            if self._users or self._lease is None:
                return
            os.close(self._lease)
            self._lease = None
            pid, self._pid = self._pid, None
        if pid is None:
            return
        deadline = time.monotonic() + EXIT_WAIT_S
        while _alive(pid) and lease_holders(self.files.lease) == 0 and time.monotonic() < deadline:
            time.sleep(POLL_S)

    def _take_lease(self, deadline: float) -> None:
        if self._lease is not None:
            return
        fd = self._open_lock(self.files.lease)
        # The only refusal comes in the instant an exiting engine holds the write lock: wait it out.
        while not _ofd_lock(fd, fcntl.F_RDLCK):
            if time.monotonic() > deadline:
                os.close(fd)
                raise UserError(f"Could not take a lease on {self.files.lease} in {self.start_timeout_s:g} s")
            time.sleep(POLL_S)
        self._lease = fd

    # finding or starting the engine

    def ensure(self) -> EngineStatus:
        """The engine serving the file, started here if none is; this process holds a lease on it from now on."""
        deadline = time.monotonic() + self.start_timeout_s
        with self._lock:
            _private_dir(runtime_dir())
            self._take_lease(deadline)
            previous = self._pid
            busy: list[int] = []
            foreign_since: float | None = None
            unreachable: tuple[int, str] | None = None
            while True:
                found, unreachable = self._serving()
                if found is not None:
                    pid, sock = found
                    self._pid = pid
                    if pid != previous:
                        self._log_join(pid, previous)
                    return self._status(pid, sock)
                fd = self._open_lock(self.files.engine_lock)
                try:
                    if _flock_nb(fd):
                        try:
                            pid = self._start(fd, deadline)
                        except _Busy as exc:
                            busy = exc.args[0]
                        except _Foreign as exc:
                            foreign_since = foreign_since or time.monotonic()
                            if time.monotonic() - foreign_since > FOREIGN_GRACE_S:
                                raise exc.args[0] from None
                        else:
                            self._pid = pid
                            self._log_start(pid, previous)
                            return self._status(pid, str(self.files.socket))
                finally:
                    os.close(fd)  # a started engine holds the lock through its own copy
                if time.monotonic() > deadline:
                    raise self._timeout(busy, unreachable)
                time.sleep(POLL_S * 2)

    def _open_lock(self, path: Path) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise file_error(
                f"Cannot open the lock file {path} of the Milvus Lite file {self.files.db}",
                exc,
                "every process sharing the file opens it to read and write; fix that, or use another MILVUS_URI",
            ) from exc

    # writes

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the file's write lock: one write at a time among every process of ours (and every thread: each
        call opens the lock file anew, and flock excludes other open files)."""
        fd = self._open_lock(self.files.write_lock)
        try:
            deadline = time.monotonic() + WRITE_WAIT_S
            while not _flock_nb(fd):
                if time.monotonic() > deadline:
                    raise UserError(
                        f"Another process has been writing to the Milvus Lite file {self.files.db} for "
                        f"{WRITE_WAIT_S:g} s; try again when it is done"
                    )
                time.sleep(POLL_S)
            yield
        finally:
            os.close(fd)

    def log_mark(self) -> LogMark | None:
        """Where the engine log ends now (None when it cannot be read)."""
        try:
            st = os.stat(self.files.log)
        except FileNotFoundError:
            return LogMark(0, 0, self._pid)  # whatever log there is afterwards is new
        except OSError:
            return None
        return LogMark(st.st_ino, st.st_size, self._pid)

    def write_failures(self, mark: LogMark | None) -> list[str]:
        """The engine's messages about writes that failed, logged since `mark` (by any process's write)."""
        if mark is None:
            return []
        try:
            with open(self.files.log, "rb") as f:
                st = os.fstat(f.fileno())
                start = mark.size if st.st_ino == mark.inode and st.st_size >= mark.size else 0  # else a new log
                f.seek(max(start, st.st_size - LOG_READ_MAX))
                text = f.read(LOG_READ_MAX).decode(errors="replace")
        except OSError:
            return []
        return list(dict.fromkeys(m.group("message").strip() for m in _WRITE_FAILED.finditer(text)))

    def discard(self, mark: LogMark | None, reason: str) -> None:
        """Stop the engine that served the file at `mark`: its memory holds writes its file does not. Every
        process's next call finds it gone and one of them starts a new engine, which reads the file as it is."""
        with self._lock:
            pid = mark.pid if mark is not None and mark.pid is not None else self._pid
            if pid is None or _cmdline(pid)[4:5] != [str(self.files.lease)]:
                return  # gone already (another call, or process, stopped it)
            log.warning("stopping the Milvus Lite engine for %s (pid %d): %s", self.files.db, pid, reason)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + DISCARD_WAIT_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(POLL_S)

    def status(self) -> EngineStatus | None:
        """The engine this process uses now, without starting one; None before the first `ensure`."""
        with self._lock:
            if self._pid is None or self._lease is None:
                return None
            found, _ = self._serving()
            if found is None:
                return None
            return self._status(*found)

    def _status(self, pid: int, sock: str) -> EngineStatus:
        holders = lease_holders(self.files.lease)
        return EngineStatus(pid=pid, socket=sock, started_here=pid in self._started, processes=holders or None)

    def _serving(self) -> tuple[tuple[int, str] | None, tuple[int, str] | None]:
        """(pid, socket) of the engine of ours serving the file and waiting on its lease, else None; and an engine
        that serves but whose socket refuses us, for the error message."""
        unreachable = None
        for pid in lease_waiters(self.files.lease):
            argv = _cmdline(pid)
            if len(argv) < 5 or argv[4] != str(self.files.lease) or not argv[2].startswith("unix:") or not _alive(pid):
                continue
            sock = argv[2].removeprefix("unix:")
            if _connects(sock):
                return (pid, sock), None
            unreachable = (pid, sock)
        return None, unreachable

    def _start(self, engine_lock: int, deadline: float) -> int:
        """Start an engine; called holding the engine lock, which the engine keeps for its life."""
        ours, foreign = self._engines_on_file()
        if foreign:
            raise _Foreign(_foreign(self.files.db, foreign))
        if ours:
            raise _Busy(ours)
        fence = self._fence()
        try:
            binary = _engine_binary()
            _private_dir(runtime_dir(), writable=True)  # for the engine's socket
            try:
                os.unlink(self.files.socket)  # left by an engine that was killed: none is alive now
            except FileNotFoundError:
                pass
            except (IsADirectoryError, PermissionError) as exc:  # a folder in the socket's place: an empty one goes
                if not self.files.socket.is_dir():
                    raise _runtime_dir_error(exc) from exc
                try:
                    os.rmdir(self.files.socket)
                except OSError:
                    raise UserError(
                        f"{self.files.socket} is a folder, where the Milvus Lite engine for {self.files.db} serves its "
                        "socket: move it away (it is not empty, so it was left as it is)"
                    ) from None
            except OSError as exc:
                raise _runtime_dir_error(exc) from exc
            with contextlib.suppress(OSError):
                if self.files.log.stat().st_size > LOG_MAX_BYTES:
                    self.files.log.unlink()
            env = {k: v for k, v in os.environ.items() if not k.startswith("GLOG_")}
            env["LD_LIBRARY_PATH"] = f"{binary.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}".rstrip(":")
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
                    pass_fds=(engine_lock,) if fence is None else (engine_lock, fence),
                    start_new_session=True,
                )
        finally:
            if fence is not None:
                os.close(fence)  # the engine holds the fence through its own copy
        self._started.add(process.pid)
        # Reap it if it exits while this process lives (after that, init does).
        threading.Thread(target=process.wait, name=f"milvus-lite-{process.pid}", daemon=True).start()
        record = {"pid": process.pid, "socket": str(self.files.socket), "db": str(self.files.db), "started": time.time()}
        self._write_record({**record, "starter": os.getpid()})
        while not (process.pid in lease_waiters(self.files.lease) and _connects(str(self.files.socket))):
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
                "to store is noticed only by its error",
                self.files.log,
                exc.strerror or exc,
            )
            return open(os.devnull, "ab")

    def _engines_on_file(self) -> tuple[list[int], list[int]]:
        """Live milvus-lite engines on this file: (ours, others'), from /proc."""
        ours: list[int] = []
        foreign: list[int] = []
        for pid in _pids():
            argv = _cmdline(pid)
            if len(argv) >= 3 and argv[0].endswith("/milvus") and _same_file(argv[1], self.files.db) and _alive(pid):
                (ours if argv[4:5] == [str(self.files.lease)] else foreign).append(pid)
        return ours, foreign

    def _fence(self) -> int | None:
        """milvus-lite's own lock file, write-locked for the engine to hold; refuses a file a plain client holds."""
        if self.files.stock_lock is None:
            return None
        fd = self._open_lock(self.files.stock_lock)
        if not _ofd_lock(fd, fcntl.F_WRLCK):
            holder = _lock_holder(fd)
            os.close(fd)
            raise _Foreign(_foreign(self.files.db, [holder] if holder and holder > 0 else [], engines=False))
        return fd

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
        holders = lease_holders(self.files.lease)
        if previous is None:
            log.info("joined the Milvus Lite engine for %s (pid %d%s; %d processes share it)", self.files.db, pid, by, holders)
        else:
            log.warning(
                "the Milvus Lite engine for %s (pid %d) is gone; joined the new one (pid %d%s)", self.files.db, previous, pid, by
            )

    def _timeout(self, busy: list[int], unreachable: tuple[int, str] | None) -> UserError:
        if unreachable is not None:
            pid, sock = unreachable
            return UserError(
                f"The Milvus Lite engine serving {self.files.db} (pid {pid}) does not accept connections on {sock}: "
                "is it another user's? Use another MILVUS_URI file, or run a Milvus server"
            )
        if busy:
            return UserError(f"The Milvus Lite engine for {self.files.db} (pid {busy[0]}) did not exit in time")
        return UserError(f"No Milvus Lite engine for {self.files.db} became ready in {self.start_timeout_s:g} s")


def _foreign(db: Path, pids: list[int], engines: bool = True) -> UserError:
    """`pids`: engines serving the file for another program (named by their parent), or holders of its lock."""
    names = []
    for pid in pids:
        parent = _parent(pid) if engines else None
        names.append(f"pid {parent}, engine pid {pid}" if parent not in (None, 1) else f"pid {pid}")
    who = f" ({'; '.join(names)})" if names else ""
    return UserError(
        f"The Milvus Lite file {db} is already open in another process{who} that does not share it (a plain milvus-lite "
        "client, or an older version of this server). Stop that process, use another MILVUS_URI file, or run a Milvus server "
        "and point every process at it (MILVUS_URI=http://127.0.0.1:19530)"
    )


# locks and /proc


def _flock_struct(kind: int) -> bytes:
    # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks), padding
    return struct.pack("hhqqixxxx", kind, os.SEEK_SET, 0, 0, 0)


def _ofd_lock(fd: int, kind: int) -> bool:
    """A non-blocking OFD lock: owned by the open file (not the process), kept by a child that inherits it."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(kind))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _lock_holder(fd: int) -> int | None:
    """The pid holding a lock that blocks a write lock on fd (-1 for an OFD lock), or None."""
    kind, _, _, _, pid = struct.unpack("hhqqixxxx", fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK)))
    return None if kind == fcntl.F_UNLCK else int(pid)


def _flock_nb(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _locks_on(path: Path) -> list[list[str]]:
    """The /proc/locks lines (split) about the file `path`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        lines = [line.split() for line in f]
    # "1: OFDLCK ADVISORY READ -1 fe:00:123 0 EOF", or a blocked request: "1: -> POSIX ADVISORY WRITE 42 fe:00:123 0 EOF"
    return [parts[1:] for parts in lines if key in parts]


def lease_waiters(lease: Path) -> list[int]:
    """Pids waiting for a write lock on the lease: live engines that serve while a lease is held."""
    return [int(p[4]) for p in _locks_on(lease) if p[:4] == ["->", "POSIX", "ADVISORY", "WRITE"]]


def lease_holders(lease: Path) -> int:
    """How many processes hold a lease (each holds one OFD read lock)."""
    return sum(1 for p in _locks_on(lease) if p[:3] == ["OFDLCK", "ADVISORY", "READ"])


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _alive(pid: int) -> bool:
    """Running (not a zombie or gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [arg.decode(errors="replace") for arg in f.read().split(b"\0") if arg]
    except OSError:
        return []


def _same_file(path: str, db: Path) -> bool:
    if path == str(db):
        return True
    try:
        return os.path.samefile(path, db)
    except OSError:
        return False


def _connects(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def _private_dir(path: Path, writable: bool = False) -> None:
    """Make sure `path` is a folder of this user's that no one else can enter (and, if asked, can write in)."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError as exc:
        raise _runtime_dir_error(exc) from exc
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise UserError(f"{path} must be a folder of user {os.getuid()} with mode 0700, for Milvus Lite's sockets")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise _runtime_dir_error(OSError(errno.EROFS if read_only_fs(path) else errno.EACCES, "", str(path)))


def read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _runtime_dir_error(exc: OSError) -> UserError:
    path = runtime_dir()
    why = exc.strerror or os.strerror(exc.errno or 0)
    return UserError(
        f"{path} cannot be written ({why}): Milvus Lite's engine serves on a socket there (and keeps the lock files "
        f"of stores in read-only folders there). Make {path.parent} writable for user {os.getuid()}, or run a Milvus "
        "server and point MILVUS_URI at it (http://127.0.0.1:19530)"
    )


def _engine_binary() -> Path:
    # Found without importing milvus_lite, whose __init__ imports pkg_resources (about 0.2 s).
    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("milvus-lite is not installed: pip install milvus-lite==2.5.1")
    return Path(next(iter(spec.submodule_search_locations))) / "lib" / "milvus"
