"""Locks, sockets and the per-user runtime folder that Lite files are shared through, with calls that exist on Linux
and macOS alike: flock and POSIX record locks, Unix sockets, no /proc.

Two kinds of lock, chosen for what each must do:
- flock (`flock_nb`) belongs to an open file: a child that inherits the descriptor holds it (the engine keeps the
  engine lock this way), and two descriptors of one process exclude each other (threads taking turns to write).
- POSIX record locks (`take_slot`, `read_lock`) belong to a process and are what milvus-lite's engine and a plain
  MilvusClient wait on and take. They are dropped when the process closes any descriptor of the file, so each lease
  file is opened once per process and kept open.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import struct
import sys
from pathlib import Path

from tools.errors import UserError

SLOTS = 4096  # the most processes that can hold a lease on one file at once
# struct flock: Linux (l_type, l_whence, l_start, l_len, l_pid, padding); macOS (l_start, l_len, l_pid, l_type, l_whence)
_LINUX = sys.platform.startswith("linux")
_FLOCK = "hhqqixxxx" if _LINUX else "qqihh"
# The peer of a Unix socket: SO_PEERCRED on Linux (pid, uid, gid); LOCAL_PEERPID on macOS (SOL_LOCAL 0, option 2).
_PEER = (socket.SOL_SOCKET, getattr(socket, "SO_PEERCRED", 17), 12) if _LINUX else (0, 2, 4)


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


def open_lock(path: Path, db: Path) -> int:
    """A lock file of the Lite file `db`, opened to read and write (made if need be)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise file_error(
            f"Cannot open the lock file {path} of the Milvus Lite file {db}",
            exc,
            "every process sharing the file opens it to read and write; fix that, or use another MILVUS_URI",
        ) from exc


def flock_nb(fd: int) -> bool:
    """Take an exclusive flock on `fd` if no other open file holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def flock_free(path: Path) -> bool:
    """No open file holds a flock on `path` (a missing file holds none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        return flock_nb(fd)
    finally:
        os.close(fd)  # releases the probe's own flock, and only that


def _record_lock(fd: int, kind: int, start: int = 0, length: int = 0) -> bool:
    """A non-blocking POSIX record lock (or unlock) of `length` bytes from `start` (0: to the end)."""
    try:
        fcntl.lockf(fd, kind | fcntl.LOCK_NB, length, start)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def take_slot(fd: int) -> int | None:
    """Write-lock the first free byte of a lease file: this process's lease. None while every slot is taken (or
    the engine, on its way out, holds the whole file)."""
    for slot in range(SLOTS):
        if _record_lock(fd, fcntl.LOCK_EX, slot, 1):
            return slot
    return None


def drop_slot(fd: int, slot: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, slot)


def read_lock(fd: int) -> bool:
    """A POSIX read lock on the whole file, if no process holds a write lock on it."""
    return _record_lock(fd, fcntl.LOCK_SH)


def unlock(fd: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN)


def lock_holder(fd: int, start: int = 0, length: int = 0) -> tuple[int, int, int] | None:
    """(start, length, pid) of a record lock another process holds that would block a write lock on these bytes."""
    fields = (fcntl.F_WRLCK, os.SEEK_SET, start, length, 0) if _LINUX else (start, length, 0, fcntl.F_WRLCK, os.SEEK_SET)
    answer = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(_FLOCK, *fields)))
    kind, got_start, got_length, pid = (
        (answer[0], answer[2], answer[3], answer[4]) if _LINUX else (answer[3], answer[0], answer[1], answer[2])
    )
    return None if kind == fcntl.F_UNLCK else (int(got_start), int(got_length), int(pid))


def slots_held(fd: int) -> int:
    """How many other processes hold a lease slot on this lease file."""
    count, slot = 0, 0
    while slot < SLOTS and (held := lock_holder(fd, slot, SLOTS - slot)) is not None:
        if held[1] == 0:  # the whole file: the engine, on its way out
            break
        if lock_holder(fd, slot, 1) is not None:
            count += 1
        slot += 1
    return count


def peer_pid(path: Path) -> int | None:
    """The pid of the process serving the Unix socket `path`, or None when none accepts a connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
            raw = s.getsockopt(*_PEER)
        except OSError:
            return None
    pid = int(struct.unpack("i", raw[:4])[0])
    return pid or None


def private_dir(path: Path, writable: bool = False) -> None:
    """Make sure `path` is a folder of this user's that no one else can enter (and, if asked, can write in)."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError as exc:
        raise runtime_dir_error(exc) from exc
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise UserError(f"{path} must be a folder of user {os.getuid()} with mode 0700, for Milvus Lite's sockets")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise runtime_dir_error(OSError(errno.EROFS if read_only_fs(path) else errno.EACCES, "", str(path)))


def read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def runtime_dir_error(exc: OSError) -> UserError:
    path = runtime_dir()
    why = exc.strerror or os.strerror(exc.errno or 0)
    return UserError(
        f"{path} cannot be written ({why}): Milvus Lite's engine serves on a socket there (and keeps the lock files "
        f"of stores in read-only folders there). Make {path.parent} writable for user {os.getuid()}, or run a Milvus "
        "server and point MILVUS_URI at it (http://127.0.0.1:19530)"
    )
