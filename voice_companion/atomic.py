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


@contextmanager
def atomic_file(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write; it replaces ``path`` when the block ends without an error.

    The file is created 0600 (``mkstemp``); ``mode`` sets other permissions. Raises ``OSError``
    for the caller to word; the temporary file never outlives a failure.
    """
    if _is_device_or_pipe(path):
        # /dev/null, /dev/stdout, a fifo: renaming over it would put a regular file in its
        # place (as root, /dev/null itself); what is written there is a stream anyway.
        with open(path, "wb") as stream:
            yield stream
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
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


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    with atomic_file(path, mode) as out:
        out.write(data)
