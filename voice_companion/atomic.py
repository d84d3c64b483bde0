"""Files that appear complete or not at all: written to a temporary name beside the target,
synced, then renamed over it. Readers (and a crash) never see half a file."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from voice_companion.errors import SymlinkRefusedError
from voice_companion.private import FILE_MODE


@contextmanager
def atomic_file(path: Path, mode: int = FILE_MODE) -> Iterator[BinaryIO]:
    """A binary file to write; it replaces ``path`` when the block ends without an error.

    The file is private (0600) unless ``mode`` says otherwise, whatever the umask. A symbolic
    link at ``path`` is refused (``SymlinkRefusedError``): renaming over it would silently
    turn the user's link into a file, and writing through it would follow a link that someone
    else may have planted. A character device or a fifo (``/dev/stdout``, a named pipe, even
    through a link) is written into as the stream it is. Raises ``OSError`` for the caller to
    word; the temporary file never outlives a failure.
    """
    if _is_device_or_pipe(path):
        # /dev/null, /dev/stdout, a fifo: renaming over it would put a regular file in its
        # place (as root, /dev/null itself); what is written there is a stream anyway.
        with open(path, "wb") as stream:
            yield stream
        return
    if path.is_symlink():
        raise SymlinkRefusedError(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_device_or_pipe(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (the usual case), or not reachable: the rename will tell
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    with atomic_file(path, mode) as out:
        out.write(data)
