"""A damaged memory.db: refused at start in one line (nothing more written into it, a copy
kept), and ``memory recover`` saves every row that can still be read into a new file.

The damage is real: a leaf page of the ``turns`` table in the middle of a real database file,
its header and cell pointers overwritten, as bit rot or a torn write would leave it. The
companion is the real CLI in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voice_companion.memory.store import MemoryDb, NewTurn

TURNS = 600
WAIT_S = 60.0


def _text(n: int) -> str:
    return f"turn {n}: we walked along the river to the market and bought pears"


def _seed(path: Path) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with MemoryDb(path) as db:
        db.ensure_conversation("c1", at)
        ids = db.add_turns(
            NewTurn("c1", at + timedelta(seconds=n), "user", _text(n), f"c1:{n}")
            for n in range(TURNS)
        )
        db.add_fact("name", "name", "Alex", at, [ids[0]], "rules")
        db.add_fact("like", "like:pears", "pears", at, [ids[-1]], "rules")


def _damage(path: Path) -> int:
    """Overwrite the header and cell pointers of a middle leaf page of ``turns``; the number
    of rows that page held."""
    conn = sqlite3.connect(path)
    try:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = conn.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = 'turns' AND pagetype = 'leaf'"
            " ORDER BY pageno"
        ).fetchall()
    finally:
        conn.close()
    page, cells = pages[len(pages) // 2]
    with path.open("r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(bytes((n * 37 + 11) % 256 for n in range(96)))
    return int(cells)


def _cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "companion.toml"
    config.write_text(
        '[llm]\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "x"\n'
        "[memory]\ndense = false\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "voice_companion", "--config", str(config),
         "--data-dir", str(tmp_path / "data"), *args],
        input=stdin, capture_output=True, text=True, timeout=WAIT_S, check=False,
    )  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "data" / "memory.db"
    path.parent.mkdir()
    _seed(path)
    return path, _damage(path)


def test_a_damaged_file_is_refused_in_one_line_and_kept(
    tmp_path: Path, damaged: tuple[Path, int]
) -> None:
    path, _ = damaged
    before = _digest(path)
    done = _cli(tmp_path, "chat", stdin="hello there\n")
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "is damaged" in line and "voice-companion memory recover" in line
    assert "Traceback" not in done.stderr
    assert _digest(path) == before  # nothing was written into it
    [copy] = path.parent.glob("memory.db.corrupt-????-??-??")
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert copy.read_bytes() == path.read_bytes()
    # Every other command refuses it the same way, before touching it.
    listed = _cli(tmp_path, "memory", "list")
    assert listed.returncode == 1 and "memory recover" in listed.stderr
    assert _digest(path) == before


def test_memory_recover_saves_every_readable_turn(
    tmp_path: Path, damaged: tuple[Path, int]
) -> None:
    path, on_the_page = damaged
    done = _cli(tmp_path, "memory", "recover", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["damaged"] and report["unreadable"] >= 1
    assert report["turns"] == TURNS - on_the_page  # all but the damaged page's rows
    with MemoryDb(path) as db:  # passes its check now
        turns = db.turns()
        assert len(turns) == report["turns"]
        # What was saved is what was said, with its id and receipt.
        assert all(t.text == _text(int(t.source_id.split(":")[1])) for t in turns)
        assert all(t.id == int(t.source_id.split(":")[1]) + 1 for t in turns)
        assert {f.value for f in db.facts()} == {"Alex", "pears"}
        found = db.search_text("pears", 5)
        assert found and all(tid in {t.id for t in turns} for tid, _ in found)
    listed = _cli(tmp_path, "memory", "list", "--turns", "--limit", "1")
    assert listed.returncode == 0 and _text(TURNS - 1) in listed.stdout
    [copy] = path.parent.glob("memory.db.corrupt-????-??-??")
    assert str(copy) == report["copy"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the new file is as private


def test_memory_recover_leaves_an_intact_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "data" / "memory.db"
    path.parent.mkdir()
    _seed(path)
    before = _digest(path)
    done = _cli(tmp_path, "memory", "recover")
    assert done.returncode == 0
    assert "nothing to recover" in done.stdout
    assert _digest(path) == before
    assert list(path.parent.glob("memory.db.corrupt-????-??-??")) == []


def test_an_encrypted_memory_is_recovered_encrypted(tmp_path: Path) -> None:
    from voice_companion.config import MemoryConfig
    from voice_companion.errors import MemoryCorruptError
    from voice_companion.memory.encryption import (
        ENV_PASSPHRASE,
        KeySources,
        memory_connector,
        open_memory_db,
    )
    from voice_companion.memory.recover import recover

    config = MemoryConfig(encrypt=True, dense=False)
    sources = KeySources(env={ENV_PASSPHRASE: "a long enough passphrase"}, interactive=False)
    connect = memory_connector(config, sources)
    data = tmp_path / "data"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with open_memory_db(data, config, sources) as db:
        db.ensure_conversation("c1", at)
        db.add_turns(
            NewTurn("c1", at + timedelta(seconds=n), "user", _text(n), f"c1:{n}")
            for n in range(TURNS)
        )
    # SQLCipher has no dbstat: a page in the middle of the file, whichever table it holds.
    page_size = 4096
    size = (data / "memory.db").stat().st_size
    middle = (size // page_size // 2) * page_size
    with (data / "memory.db").open("r+b") as f:  # one flipped byte fails the page's HMAC
        f.seek(middle + page_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x40]))
    with pytest.raises(MemoryCorruptError, match="memory recover"):
        open_memory_db(data, config, sources)
    done = recover(data, connect)
    assert done.damaged and TURNS - 40 <= done.turns <= TURNS  # at most one page's rows
    assert not (data / "memory.db").read_bytes().startswith(b"SQLite format 3")
    with open_memory_db(data, config, sources) as db:  # passes its check
        assert len(db.turns()) == done.turns
        assert all(t.text == _text(int(t.source_id.split(":")[1])) for t in db.turns())


def test_damage_found_while_open_stops_writes_and_keeps_the_words(tmp_path: Path) -> None:
    """Damage that appears after the check at open (or that it cannot see): the write that
    meets it is journalled instead, nothing more goes into the file, the status says so, and
    after `memory recover` the next open writes the words into the recovered file."""
    from voice_companion.memory.recover import recover
    from voice_companion.memory.store import connect_plain

    path = tmp_path / "data" / "memory.db"
    path.parent.mkdir()
    _seed(path)
    conn = sqlite3.connect(path)
    try:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        # The rightmost leaf of turns: where the next turn goes.
        [(page,)] = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'turns' AND pagetype = 'leaf'"
            " ORDER BY path DESC LIMIT 1"
        ).fetchall()
    finally:
        conn.close()
    db = MemoryDb(path, check=False)  # opened before the damage
    try:
        with path.open("r+b") as f:
            f.seek((page - 1) * page_size)
            f.write(bytes((n * 37 + 11) % 256 for n in range(96)))
        at = datetime(2026, 2, 1, tzinfo=UTC)
        first = db.add_turn(NewTurn("c1", at, "user", "said after the damage", "c1:a"))
        assert first.id < 0  # kept, not failed
        state = db.saving.as_dict()
        assert state["saved"] is False and "memory recover" in str(state["problem"])
        assert state["journalled"] == 1
        before = _digest(path)
        db.add_turn(NewTurn("c1", at, "user", "and more after it", "c1:b"))
        assert db.queued_writes == 2
    finally:
        db.close()  # waits a while, then leaves them in the journal
    assert _digest(path) == before  # nothing more written into the damaged file
    assert list(path.parent.glob("memory.journal-*"))
    done = recover(path.parent, connect_plain)
    assert done.damaged
    with MemoryDb(path) as recovered:
        texts = [t.text for t in recovered.turns()]
    assert texts[-2:] == ["said after the damage", "and more after it"]
    assert len(texts) == done.turns + 2
    assert list(path.parent.glob("memory.journal-*")) == []
