"""Private by construction: the companion's folders are 0700 and every file it writes 0600.

Modes are set explicitly (``os.open`` with a mode, ``fchmod``), not left to the umask; the
command line also sets the umask to 0077 so that files third-party code creates (SQLite's -wal
and -shm, llama.cpp's model copy) are private too. Files a user names are opened without
following a symbolic link someone could have planted there. Installs from before this was so
are repaired at start (``repair``), with one line in the log.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

from voice_companion.errors import NotRegularFileError, SymlinkRefusedError

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077
_OTHERS = 0o077
"""Group and other permission bits: what ``tighten`` takes away (the owner's bits stay)."""
_REPAIR_DEPTH = 2
"""How deep ``repair`` looks: a folder, its files and its sub-folders' files (personas/,
models/). Not further: ``--data-dir`` may name a folder that holds other things too."""


def set_umask() -> None:
    """Files and folders made by anything in this process are private (the entry points)."""
    os.umask(UMASK)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter: missing folders (parents too) are made
    0700, and an existing one of ours loses its group and other bits. Raises ``OSError`` when
    it cannot be made; one that exists but cannot be tightened (a read-only file system, not
    ours) is used as it is, with a warning."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        else:
            os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask
    if not missing:
        try:
            tighten(path.resolve())  # a data folder the user moved and linked to is still theirs
        except OSError as exc:
            log.warning("cannot make %s private: %s", path, exc.strerror or exc)
    return path


def tighten(path: Path) -> bool:
    """Take the group and other bits off ``path`` (not following a link); True if it had any.
    Raises ``OSError`` (the file is gone, not ours, on a read-only file system)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & _OTHERS:
        return False
    os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS, follow_symlinks=False)
    return True


def tighten_existing(*paths: Path) -> None:
    """``tighten`` those of ``paths`` that exist (missing ones are fine)."""
    for path in paths:
        try:
            tighten(path)
        except FileNotFoundError:
            continue


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` a file to write, 0600, without following a symbolic link (one there gives
    ``SymlinkRefusedError``); an existing file is made 0600 too. Returns the descriptor."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise SymlinkRefusedError(path) from None
        raise
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & _OTHERS:
            os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


@contextmanager
def private_text(path: Path, mode: Literal["w", "a"] = "w") -> Iterator[IO[str]]:
    """A private text file (UTF-8) to write (``"w"``) or append to (``"a"``)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    with os.fdopen(open_private(path, flags), mode, encoding="utf-8") as f:
        yield f


def create_private(path: Path) -> bool:
    """Create ``path`` empty and 0600 if it does not exist (so that a library that creates it
    otherwise, SQLite, finds it private); True if it was made. Refuses a symbolic link."""
    try:
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        if os.path.islink(path):
            raise SymlinkRefusedError(path) from None
        return False
    os.close(fd)
    return True


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; a device (``/dev/zero``), pipe,
    socket or folder, or a bigger file, raises ``NotRegularFileError`` (or
    ``IsADirectoryError``) without being read. A symbolic link to a regular file is fine."""
    # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > max_bytes:
            raise NotRegularFileError(
                errno.EFBIG, f"larger than {max_bytes:,} bytes ({st.st_size:,})", str(path)
            )
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 16):
            total += len(chunk)
            if total > max_bytes:  # it grew while being read
                raise NotRegularFileError(
                    errno.EFBIG, f"larger than {max_bytes:,} bytes", str(path)
                )
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def writable_dir(path: Path) -> bool:
    """Whether files can be made in ``path`` (``os.access``: a read-only mount says no even to
    root)."""
    return os.access(path, os.W_OK | os.X_OK)


def companion_dirs(data_dir: Path) -> list[Path]:
    """Every folder the companion keeps things in: data, configuration, cache and runtime."""
    from voice_companion.config import default_cache_dir, default_config_path

    dirs = [data_dir, default_config_path().parent, default_cache_dir()]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        dirs.append(Path(runtime) / "voice-companion")
    return dirs


def repair(folders: Iterable[Path]) -> list[Path]:
    """Take group and other bits off these folders and what is in them (two levels deep, links
    not followed), logging one line when anything changed; returns what changed. What cannot
    be changed is left, and said in the same line."""
    changed: list[Path] = []
    failed: list[str] = []
    for folder in folders:
        # The folders themselves may be links (moved to another disk); nothing inside is
        # followed.
        for path in _walk(folder.resolve(), _REPAIR_DEPTH):
            try:
                if tighten(path):
                    changed.append(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed.append(f"{path} ({exc.strerror or exc})")
    if changed:
        shown = ", ".join(str(p) for p in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        log.warning(
            "made %d file(s) and folder(s) private (other users could read them): %s%s",
            len(changed),
            shown,
            more,
        )
    if failed:
        log.warning("cannot make these private: %s", ", ".join(failed[:5]))
    return changed


def _walk(folder: Path, depth: int) -> Iterator[Path]:
    try:
        st = os.lstat(folder)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    yield folder
    if depth <= 0:
        return
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path, depth - 1)
        elif entry.is_file(follow_symlinks=False):
            yield path
