"""The journal of queued memory writes: on disk before the turn is handed back, private,
encrypted with memory.db's key, erased when a queued turn is forgotten, never written twice.

The lock on memory.db is a real second SQLite connection (``BEGIN EXCLUSIVE``); crashes are
real ``os._exit``/SIGKILL of a real subprocess at the moment under test.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from voice_companion.config import MemoryConfig
from voice_companion.memory.encryption import ENV_PASSPHRASE, KeySources, open_memory_db
from voice_companion.memory.journal import Journal
from voice_companion.memory.store import MemoryDb, NewTurn, connect_plain

WAIT_S = 30.0
SECRET = "zanzibar"


def _at() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@contextmanager
def locked(path: Path) -> Iterator[sqlite3.Connection]:
    """memory.db held by another connection until the block ends."""
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield locker
    finally:
        if locker.in_transaction:
            locker.execute("COMMIT")
        locker.close()


def journals(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("memory.journal-*") if not p.name.endswith("-journal"))


def on_disk(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def _seed(path: Path) -> None:
    with MemoryDb(path) as setup:
        setup.ensure_conversation("c1", _at())


def test_a_queued_turn_is_on_disk_privately_before_it_is_handed_back(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    _seed(path)
    with locked(path):
        db = MemoryDb(path, busy_timeout_ms=100)
        try:
            queued = db.add_turn(NewTurn("c1", _at(), "user", f"my code is {SECRET}", "c1:1"))
            assert queued.id < 0
            [journal] = journals(tmp_path)
            assert stat.S_IMODE(journal.stat().st_mode) == 0o600
            assert SECRET.encode() in journal.read_bytes()  # the test can fail: it is there
            assert db.saving.as_dict() == {
                "saved": False,
                "queued": 1,
                "journalled": 1,
                "problem": "held by another program",
            }
        finally:
            db._closed = True  # left as a crash leaves it: no waiting, no clean-up
            db._conn.close()
    # Its process "ended": the journal's lock is free, the next open writes it in.
    for held in db._journals():
        held.close(delete=False)
    with MemoryDb(path) as after:
        assert [t.text for t in after.turns()] == [f"my code is {SECRET}"]
        assert after.saving.saved
    assert journals(tmp_path) == []


def test_forgetting_a_queued_turn_erases_it_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    _seed(path)
    with locked(path):
        db = MemoryDb(path, busy_timeout_ms=100)
        secret = db.add_turn(NewTurn("c1", _at(), "user", f"my code is {SECRET}", "c1:1"))
        db.add_fact("code", "code", SECRET, _at(), [secret.id], "rules")
        kept = db.add_turn(NewTurn("c1", _at(), "user", "the weather is fine", "c1:2"))
        assert SECRET.encode() in on_disk(tmp_path)
        db.forget([secret.id])
        assert db.queued_writes == 1 and kept.id < 0
        # Gone from every file in the folder: journal, its rollback journal, free pages.
        assert SECRET.encode() not in on_disk(tmp_path)
        assert b"weather" in on_disk(tmp_path)
    db.close()  # the lock has ended: the queue lands
    with MemoryDb(path) as after:
        assert [t.text for t in after.turns()] == ["the weather is fine"]
        assert after.facts() == []
    assert journals(tmp_path) == []


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime, UTC
    from pathlib import Path
    from voice_companion.memory import journal
    from voice_companion.memory.store import MemoryDb, NewTurn

    def crash(self, *args, **kwargs):
        os._exit(9)  # memory.db has the write; its journal still does too

    db = MemoryDb(Path(sys.argv[1]), busy_timeout_ms=100)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for n in (1, 2, 3):
        db.add_turn(NewTurn("c1", at, "user", f"turn {n}", f"c1:{n}"))
    journal.Journal.remove = crash
    journal.Journal.close = crash
    print(db.queued_writes, flush=True)
    sys.stdin.readline()  # the lock is released: the writer thread writes turn 1, then dies
    db._writer.join(30)
    """
)


def test_a_crash_between_memory_db_and_the_journal_writes_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    _seed(path)
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_AFTER_COMMIT, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    with locked(path):
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "3"
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.wait(WAIT_S) == 9
    proc.stdin.close()
    proc.stdout.close()
    conn = sqlite3.connect(path)
    try:
        before = [r[0] for r in conn.execute("SELECT text FROM turns ORDER BY id")]
    finally:
        conn.close()
    assert before == ["turn 1"]  # the crash landed between the two files
    assert len(journals(tmp_path)) == 1
    with MemoryDb(path) as after:
        assert [t.text for t in after.turns()] == ["turn 1", "turn 2", "turn 3"]


APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from voice_companion.memory.journal import Journal
    from voice_companion.memory.store import connect_plain

    journal = Journal.create(Path(sys.argv[1]) / "memory.db", connect_plain)
    n = 0
    while True:
        n += 1
        journal.append({"op": "add_turn", "args": {"n": n, "pad": "x" * (n % 700)}})
        print(n, flush=True)
    """
)


def test_kill_9_while_journalling_leaves_a_readable_journal_with_every_confirmed_entry(
    tmp_path: Path,
) -> None:
    for run in range(12):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(folder)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        confirmed = 0
        for _ in range(5 + 7 * run):
            confirmed = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT_S)
        # It went on appending until the signal landed: what it printed after the line read
        # above was confirmed too.
        confirmed = max([confirmed, *(int(line) for line in proc.stdout.read().split())])
        proc.stdout.close()
        [path] = journals(folder)
        adopted = Journal.adopt(path, connect_plain)
        assert adopted is not None
        try:
            seen = [e.payload["args"]["n"] for e in adopted.entries()]
        finally:
            adopted.close(delete=False)
        assert seen[:confirmed] == list(range(1, confirmed + 1))
        assert len(seen) in (confirmed, confirmed + 1)  # at most the one it was writing


def test_a_running_process_journal_is_left_to_it(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    _seed(path)
    with locked(path):
        first = MemoryDb(path, busy_timeout_ms=100)
        first.add_turn(NewTurn("c1", _at(), "user", "said to the first", "c1:1"))
        second = MemoryDb(path, busy_timeout_ms=100)  # its journal's owner is alive
        assert second.queued_writes == 0
        second.close()
    first.close()
    with MemoryDb(path) as after:
        assert [t.text for t in after.turns()] == ["said to the first"]


def test_the_journal_of_an_encrypted_memory_is_encrypted(tmp_path: Path) -> None:
    config = MemoryConfig(encrypt=True, dense=False, busy_timeout_ms=100)
    sources = KeySources(env={ENV_PASSPHRASE: "a long enough passphrase"}, interactive=False)
    with open_memory_db(tmp_path, config, sources) as setup:
        setup.ensure_conversation("c1", _at())
    with open_memory_db(tmp_path, config, sources) as locker, locker.transaction():
        db = open_memory_db(tmp_path, config, sources)
        db.add_turn(NewTurn("c1", _at(), "user", f"my code is {SECRET}", "c1:1"))
        [journal] = journals(tmp_path)
        raw = journal.read_bytes()
        assert raw and SECRET.encode() not in raw and not raw.startswith(b"SQLite format 3")
    db.close()
    with open_memory_db(tmp_path, config, sources) as after:
        assert [t.text for t in after.turns()] == [f"my code is {SECRET}"]


def test_a_journal_this_version_cannot_read_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    _seed(path)
    odd = Journal.create(path, connect_plain)
    odd.append({"op": "add_turn", "args": {"turn": {"$": "NewTurn", "text": "half a turn"}}})
    odd.close(delete=False)
    with MemoryDb(path) as db:  # opens, writes what it can, and says why not the rest
        assert db.queued_writes == 0
        db.add_turn(NewTurn("c1", _at(), "user", "still remembered", "c1:1"))
    assert journals(tmp_path) == [odd.path]  # kept for a version that can read it
