"""Encryption at rest: real SQLCipher files on disk, the real CLI in subprocesses."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG
from voice_companion.config import MemoryConfig
from voice_companion.dialogue.history import Turn
from voice_companion.errors import MemoryKeyError
from voice_companion.memory.encryption import (
    ENV_PASSPHRASE,
    PLAINTEXT_HEADER,
    KeySources,
    open_memory_db,
)
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.store import MemoryDb

VOICE_COMPANION = Path(sys.executable).with_name("voice-companion")
SECRET = "Ana is getting married in June"
TURNS = (
    ("user", f"My sister {SECRET}."),
    ("assistant", "How exciting! Tell me more."),
    ("user", "I moved to Berlin last spring."),
)
KEY = "correct horse 'battery' staple"


def fixed_clock() -> Iterator[datetime]:
    at = datetime(2026, 5, 3, 10, 0).astimezone()
    while True:
        at += timedelta(seconds=1)
        yield at


def seed(data_dir: Path, key: str | None) -> None:
    """The same three turns, at the same times, encrypted under ``key`` or in plaintext."""
    config = MemoryConfig(encrypt=key is not None, dense=False)
    sources = KeySources(env={ENV_PASSPHRASE: key or ""}, interactive=False)
    ticks = fixed_clock()
    memory = LongTermMemory(
        open_memory_db(data_dir, config, sources), config, clock=lambda: next(ticks)
    )
    for speaker, text in TURNS:
        memory.record(Turn(speaker, text), "conv1")
    memory.wait_idle()
    memory.close()


def on_disk(data_dir: Path) -> bytes:
    """Every byte of memory.db and its companions (-wal, -shm, journals)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("memory.db*")))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(tmp_path, *args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(tmp_path, env),
    )


def command(tmp_path: Path, *args: str) -> list[str]:
    return [str(VOICE_COMPANION), "--config", str(SHIPPED_CONFIG), "--data-dir",
            str(tmp_path / "data"), *args]  # fmt: skip


def environment(tmp_path: Path, extra: dict[str, str] | None) -> dict[str, str]:
    drop = ("VOICE_COMPANION_", "CREDENTIALS_DIRECTORY", "PYTHON_KEYRING_BACKEND")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    # The machine's own keyring stays out of it: a backend that holds nothing.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    env["VOICE_COMPANION_MEMORY_DENSE"] = "false"  # no embedding model to load
    env.update(extra or {})
    return env


ENCRYPTED = {"VOICE_COMPANION_MEMORY_ENCRYPT": "true"}
WITH_KEY = {**ENCRYPTED, ENV_PASSPHRASE: KEY}


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_encrypted_file_hides_the_header_and_the_words(tmp_path: Path) -> None:
    seed(tmp_path / "plain", None)
    assert SECRET.encode() in on_disk(tmp_path / "plain")  # the check below can fail
    config = MemoryConfig(encrypt=True, dense=False)
    sources = KeySources(env={ENV_PASSPHRASE: KEY}, interactive=False)
    db = open_memory_db(tmp_path, config, sources)
    memory = LongTermMemory(db, config)
    try:
        for speaker, text in TURNS:
            memory.record(Turn(speaker, text), "conv1")
        memory.wait_idle()
        wal = tmp_path / "memory.db-wal"
        assert wal.stat().st_size > 0  # the turns are in the log now, not yet in the file
        assert (tmp_path / "memory.db").read_bytes()[:16] != PLAINTEXT_HEADER
        assert SECRET.encode() not in on_disk(tmp_path)
        assert b"Berlin" not in on_disk(tmp_path)
        # Full-text search (FTS5) and every PRAGMA of the store work under SQLCipher.
        hits = db.search_text("married", 5)
        assert [db.turn(i).text for i, _ in hits] == [TURNS[0][1]]
        with db.reading() as conn:
            pragmas = {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "secure_delete", "foreign_keys")
            }
            assert conn.execute("PRAGMA cipher_version").fetchone()[0].startswith("4.")
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 2,
            "secure_delete": 1,
            "foreign_keys": 1,
        }
        assert [t.text for t in memory.db.turns()] == [t for _, t in TURNS]
    finally:
        memory.close()
    reopened = open_memory_db(tmp_path, config, sources)
    assert reopened.count_turns() == 3
    reopened.close()


def test_wrong_key_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    seed(tmp_path / "data", KEY)
    path = tmp_path / "data" / "memory.db"
    before = digest(path)
    result = cli(tmp_path, "memory", "list", env={**ENCRYPTED, ENV_PASSPHRASE: "not it"})
    line = one_line_error(result)
    assert "wrong" in line and f"${ENV_PASSPHRASE}" in line
    assert digest(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["memory.db"]
    # In-process, the same refusal is the one exception the CLI turns into that line.
    with pytest.raises(MemoryKeyError, match="wrong"):
        open_memory_db(
            path.parent,
            MemoryConfig(encrypt=True),
            KeySources(env={ENV_PASSPHRASE: KEY + "x"}, interactive=False),
        )


@pytest.mark.models
def test_no_key_refuses_to_start_and_creates_nothing(tmp_path: Path) -> None:
    result = cli(tmp_path, "memory", "list", env=ENCRYPTED)
    line = one_line_error(result)
    assert "no key was found" in line and "voice-companion memory set-key" in line
    # The conversation itself (what the daemon runs) refuses too, before any reply.
    chat = cli(tmp_path, "chat", env=ENCRYPTED, stdin="hello\n")
    assert "no key was found" in one_line_error(chat)
    assert chat.stdout == ""
    assert not (tmp_path / "data" / "memory.db").exists()


def test_plaintext_and_encryption_setting_must_agree(tmp_path: Path) -> None:
    seed(tmp_path / "data", None)
    path = tmp_path / "data" / "memory.db"
    before = digest(path)
    line = one_line_error(cli(tmp_path, "memory", "list", env=WITH_KEY))
    assert "not encrypted" in line and "`voice-companion memory encrypt`" in line
    assert digest(path) == before and path.read_bytes()[:16] == PLAINTEXT_HEADER

    seed(tmp_path / "other" / "data", KEY)
    line = one_line_error(cli(tmp_path / "other", "memory", "stats"))
    assert "is encrypted" in line and "memory.encrypt = true" in line


def test_memory_encrypt_converts_in_place_and_export_still_matches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed(data, None)
    plain_export = tmp_path / "plain.json"
    assert cli(tmp_path, "memory", "export", str(plain_export)).returncode == 0

    done = cli(tmp_path, "memory", "encrypt", "--json", env=WITH_KEY)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["turns"] == 3
    assert sorted(p.name for p in data.iterdir()) == ["memory.db"]  # no copy, -wal or -shm
    assert (data / "memory.db").read_bytes()[:16] != PLAINTEXT_HEADER
    assert SECRET.encode() not in on_disk(data)

    encrypted_export = tmp_path / "encrypted.json"
    exported = cli(tmp_path, "memory", "export", str(encrypted_export), env=WITH_KEY)
    assert exported.returncode == 0, exported.stderr
    assert encrypted_export.read_text() == plain_export.read_text()
    listing = json.loads(cli(tmp_path, "memory", "list", "--json", env=WITH_KEY).stdout)
    assert [t["text"] for t in listing["turns"]] == [t for _, t in TURNS]
    found = cli(tmp_path, "memory", "search", "wedding married", "--mode", "bm25", "--json",
                env=WITH_KEY)  # fmt: skip
    assert json.loads(found.stdout)[0]["text"] == TURNS[0][1]
    # Running it again is a one-line no-op, not a second encryption.
    assert "already encrypted" in one_line_error(cli(tmp_path, "memory", "encrypt", env=WITH_KEY))


def test_memory_encrypt_refuses_while_the_companion_has_the_file_open(tmp_path: Path) -> None:
    seed(tmp_path / "data", None)
    holder = MemoryDb(tmp_path / "data" / "memory.db")  # as the running daemon would
    try:
        line = one_line_error(cli(tmp_path, "memory", "encrypt", env=WITH_KEY))
        assert "in use" in line and "stop the companion" in line
        assert holder.count_turns() == 3
    finally:
        holder.close()
    assert (tmp_path / "data" / "memory.db").read_bytes()[:16] == PLAINTEXT_HEADER
    assert not (tmp_path / "data" / "memory.db.encrypting").exists()


def in_terminal(tmp_path: Path, env: dict[str, str], *args: str, typed: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its controlling terminal and type ``typed``."""
    leader, follower = pty.openpty()

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        command(tmp_path, *args),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment(tmp_path, env),
        preexec_fn=take_terminal,
    )
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + 60
        lines, sent = typed.splitlines(), 0
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes when the process exits
                break
            if not chunk:
                break
            output += chunk
            while sent < len(lines) and output.count(b"assphrase") > sent:  # one line a prompt
                os.write(leader, lines[sent].encode() + b"\n")
                sent += 1
        code = process.wait(timeout=30)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return code, output.decode(errors="replace")


def test_keyring_source_with_set_key(tmp_path: Path) -> None:
    keyring_env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    code, shown = in_terminal(tmp_path, keyring_env, "memory", "set-key", typed=f"{KEY}\n{KEY}\n")
    assert code == 0, shown
    assert "stored the memory passphrase" in shown and KEY not in shown  # not echoed
    store = tmp_path / "xdg-data" / "python_keyring" / "keyring_pass.cfg"
    assert "[voice_2Dcompanion]" in store.read_text()  # keyrings.alt escapes the "-"

    export = tmp_path / "plain.json"
    seed(tmp_path / "plain" / "data", None)
    assert cli(tmp_path / "plain", "memory", "export", str(export)).returncode == 0
    from_keyring = {**keyring_env, **ENCRYPTED, "VOICE_COMPANION_MEMORY_KEY_SOURCE": "keyring"}
    imported = cli(tmp_path, "memory", "import", str(export), env=from_keyring)
    assert imported.returncode == 0, imported.stderr
    data = tmp_path / "data"
    assert (data / "memory.db").read_bytes()[:16] != PLAINTEXT_HEADER
    assert SECRET.encode() not in on_disk(data)
    listing = cli(tmp_path, "memory", "list", "--turns", "--json", env=from_keyring)
    assert [t["text"] for t in json.loads(listing.stdout)["turns"]] == [t for _, t in TURNS]
    # The key the keyring holds is the passphrase that was typed.
    direct = open_memory_db(
        data, MemoryConfig(encrypt=True), KeySources(env={ENV_PASSPHRASE: KEY}, interactive=False)
    )
    assert direct.count_turns() == 3
    direct.close()

    store.unlink()
    line = one_line_error(cli(tmp_path, "memory", "list", env=from_keyring))
    assert "none in the OS keyring" in line and "memory set-key" in line


def test_systemd_credential_source(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "memory-key").write_text(KEY + "\n")  # as `echo ... | systemd-creds` leaves it
    by_unit = {**ENCRYPTED, "CREDENTIALS_DIRECTORY": str(credentials)}
    export = tmp_path / "plain.json"
    seed(tmp_path / "plain" / "data", None)
    assert cli(tmp_path / "plain", "memory", "export", str(export)).returncode == 0
    imported = cli(tmp_path, "memory", "import", str(export), env=by_unit)  # auto finds it
    assert imported.returncode == 0, imported.stderr
    stats = json.loads(cli(tmp_path, "memory", "stats", "--json", env=by_unit).stdout)
    assert stats["turns"] == 3
    assert SECRET.encode() not in on_disk(tmp_path / "data")
    direct = open_memory_db(
        tmp_path / "data",
        MemoryConfig(encrypt=True),
        KeySources(env={ENV_PASSPHRASE: KEY}, interactive=False),
    )
    assert direct.count_turns() == 3
    direct.close()


def test_prompt_source_asks_twice_to_encrypt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed(data, None)
    path = data / "memory.db"
    before = digest(path)
    no_key = one_line_error(cli(tmp_path, "memory", "encrypt", env=ENCRYPTED))
    assert "memory encrypt needs a key but no key was found" in no_key
    assert digest(path) == before

    prompted = {**ENCRYPTED, "VOICE_COMPANION_MEMORY_KEY_SOURCE": "prompt"}
    code, shown = in_terminal(tmp_path, prompted, "memory", "encrypt", typed="one\ntwo\n")
    assert code == 1 and "the two passphrases differ" in shown, shown
    assert digest(path) == before

    code, shown = in_terminal(tmp_path, prompted, "memory", "encrypt", typed=f"{KEY}\n{KEY}\n")
    assert code == 0 and "no plaintext copy is left" in shown, shown
    assert SECRET.encode() not in on_disk(data)
    stats = json.loads(cli(tmp_path, "memory", "stats", "--json", env=WITH_KEY).stdout)
    assert stats["turns"] == 3
