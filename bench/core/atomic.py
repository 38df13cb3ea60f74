"""Writing files and directories so that a reader never sees a half-written one.

Everything is written under a temporary name in the same directory, flushed to disk, and renamed
into place; a rename within one filesystem is atomic, so an interrupted write (Ctrl-C, kill -9, a
power cut) leaves only a temporary that readers ignore (names starting with "." are skipped by the
cache and by pyarrow), never a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_dir(target: Path):
    """Yields a temporary directory that becomes `target` on success (kept if `target` appeared meanwhile)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        for path in tmp.rglob("*"):
            if path.is_file():
                _fsync(path)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
            shutil.rmtree(tmp)  # someone else built the same content-addressed entry first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync(target.parent)


def _fsync(path: Path) -> None:
    """Flushes a file's data (or a directory's entries, i.e. a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass
    finally:
        os.close(fd)


class LockedError(RuntimeError):
    """Another process holds the lock."""


@contextlib.contextmanager
def exclusive_lock(path: Path, holder: str):
    """Holds an exclusive advisory lock on `path` (created if missing) for the block; raises
    LockedError at once, naming `holder`, when another process holds it. The kernel drops the lock
    when the process dies, so a killed run never leaves a stale lock behind."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{holder} is in use by another process (lock {path}); wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_temporaries(directory: Path) -> list[Path]:
    """Deletes what interrupted atomic writes left in `directory` (call only while holding its lock)."""
    leftovers = sorted(directory.glob(".*.tmp-*"))
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return leftovers


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(target: Path):
    """Yields a temporary path that replaces `target` on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; readers expect what open() would give
        _fsync(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync(target.parent)
