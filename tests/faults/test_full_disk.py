"""The disk fills mid-session (a real full filesystem: a small tmpfs mounted for the test as
the data folder). Every turn is still answered, the words wait in the process until there is
room, and then land in memory.db in order. Needs permission to mount (root); skipped, and so
not counted as passing, without it. tests/memory/test_full.py covers the same path with
SQLite's page limit, everywhere.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import WAIT_S, chat_process, say, stored_turns


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
            capture_output=True, text=True, timeout=WAIT_S, check=False,
        )  # fmt: skip
    except OSError as exc:
        pytest.skip(f"cannot mount a small filesystem: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], timeout=WAIT_S, check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_mid_session_answers_and_keeps_the_words(
    tmp_path: Path, small_disk: Path
) -> None:
    data = small_disk / "data"
    with chat_process(tmp_path, data) as (proc, lines):
        first = say(proc, lines, "Hello there (run 0 turn 0)")
        filler = _fill(small_disk)
        said = [
            "My sister Ana lives in Porto (run 1 turn 1)",
            "The train was late (run 1 turn 2)",
        ]
        replies = [say(proc, lines, text) for text in said]  # answered, disk full
        assert all(f"(run 1 turn {n})" in r for n, r in ((1, replies[0]), (2, replies[1])))
        assert len(stored_turns(data / "memory.db")) == 2  # the test can fail: nothing fitted
        os.unlink(filler)  # room again: the writer thread lands the queue on its own
        deadline = time.monotonic() + WAIT_S
        while len(stored_turns(data / "memory.db")) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        expected = [("user", "Hello there (run 0 turn 0)"), ("assistant", first)]
        for text, reply in zip(said, replies, strict=True):
            expected += [("user", text), ("assistant", reply)]
        assert stored_turns(data / "memory.db") == expected
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.close()
        assert proc.wait(WAIT_S) == 0
        stderr = proc.stderr.read()
        assert "memory is not being saved" in stderr and "the disk is full" in stderr
        assert "Traceback" not in stderr and "a turn failed" not in stderr
