"""Private by construction: under umask 022 every folder the companion keeps is 0700 and every
file it writes 0600; an older install is repaired; links are not followed; a read-only data
folder can still be listed and exported."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG
from voice_companion.atomic import write_atomic
from voice_companion.audio.echo import save_measurements
from voice_companion.config import CareConfig
from voice_companion.dialogue.care import Care
from voice_companion.memory.store import MemoryDb
from voice_companion.private import SymlinkRefusedError, repair
from voice_companion.trace import Tracer


def _umask_022() -> None:
    os.umask(0o022)


class Home:
    """A user's home under ``tmp``: config, data, cache and runtime folders of its own."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "home"
        self.config = self.root / ".config"
        self.data = self.root / ".local" / "share"
        self.cache = self.root / ".cache"
        self.runtime = tmp / "run"
        self.runtime.mkdir(mode=0o700)
        self.data_dir = self.data / "voice-companion"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
        env.update(
            HOME=str(self.root),
            XDG_CONFIG_HOME=str(self.config),
            XDG_DATA_HOME=str(self.data),
            XDG_CACHE_HOME=str(self.cache),
            XDG_RUNTIME_DIR=str(self.runtime),
        )
        return env

    @property
    def companion_dirs(self) -> list[Path]:
        return [
            self.data_dir,
            self.config / "voice-companion",
            self.cache / "voice-companion",
        ]

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            preexec_fn=_umask_022,
        )


def _walk(folder: Path) -> Iterator[Path]:
    yield folder
    yield from sorted(folder.rglob("*"))


def _modes(folders: list[Path]) -> dict[str, str]:
    """Every folder and file under ``folders`` whose mode is not 0700 (folders) / 0600."""
    wrong = {}
    for folder in folders:
        for path in _walk(folder):
            st = path.lstat()
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if stat.S_IMODE(st.st_mode) != want:
                wrong[str(path)] = f"{stat.S_IMODE(st.st_mode):04o}"
    return wrong


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.models
def test_every_folder_is_0700_and_every_file_0600_under_umask_022(
    tmp_path: Path, jfk_path: Path
) -> None:
    home = Home(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    # A recording answered, with its trace and its voice.
    run = home.cli(
        "run",
        "--input",
        str(jfk_path),
        "--output",
        str(out / "reply.wav"),
        "--trace",
        str(out / "trace.jsonl"),
    )
    assert run.returncode == 0, run.stderr
    # A persona made, and chosen.
    made = home.cli("persona", "create", "--name", "Wren", "--personality", "dry", "--use")
    assert made.returncode == 0, made.stderr
    # A text chat, looked at while it runs: SQLite's -wal and -shm exist only then.
    chat = subprocess.Popen(
        [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG), "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=home.env,
        preexec_fn=_umask_022,
    )
    try:
        assert chat.stdin is not None and chat.stdout is not None
        chat.stdin.write("My sister is called Juniper.\n")
        chat.stdin.flush()
        assert chat.stdout.readline().strip()  # the reply: the turn is in memory.db
        live = {p.name for p in home.data_dir.iterdir()}
        assert {"memory.db", "memory.db-wal", "memory.db-shm"} <= live, live
        assert _modes(home.companion_dirs) == {}
    finally:
        _, err = chat.communicate(timeout=120)
    assert chat.returncode == 0, err
    exported = home.cli("memory", "export", str(out / "memory.json"))
    assert exported.returncode == 0, exported.stderr

    assert (home.config / "voice-companion" / "personas" / "wren.toml").is_file()
    assert (home.data_dir / "persona").is_file()  # the choice
    assert list((home.cache / "voice-companion" / "models").glob("*.gguf"))
    assert _modes([*home.companion_dirs, out / "reply.wav", out / "trace.jsonl"]) == {}
    assert _mode(out / "memory.json") == 0o600
    assert not (home.cache / "Microsoft").exists()


def test_modes_are_explicit_not_left_to_the_umask(tmp_path: Path) -> None:
    # The same, in this process under umask 022 (library use: the CLI's umask is not set).
    old = os.umask(0o022)
    try:
        data = tmp_path / "data"
        db = MemoryDb(data / "memory.db")
        with db.transaction() as conn:
            conn.execute("CREATE TABLE probe (x)")
        tracer = Tracer(tmp_path / "trace.jsonl")
        tracer.emit("start")
        tracer.close()
        write_atomic(tmp_path / "export.json", b"{}")
        care = Care(CareConfig(), data / "care")
        assert care.crisis_reply("I want to kill myself")  # written down in care.log
        care.disclosed("robin")
        save_measurements(data / "echo.json", [0.1])
        assert {p.name for p in data.iterdir()} >= {"memory.db-wal", "memory.db-shm", "echo.json"}
        assert {p.name for p in (data / "care").iterdir()} == {"care.log", "disclosed"}
        assert _modes([data]) == {}
        db.close()
        assert _mode(tmp_path / "trace.jsonl") == 0o600
        assert _mode(tmp_path / "export.json") == 0o600
    finally:
        os.umask(old)


def test_an_older_install_is_repaired_at_start_with_one_line(tmp_path: Path) -> None:
    home = Home(tmp_path)
    for folder in home.companion_dirs:
        folder.mkdir(parents=True)
    personas = home.config / "voice-companion" / "personas"
    personas.mkdir()
    (personas / "old.toml").write_text('name = "Old"\n')
    db = sqlite3.connect(home.data_dir / "memory.db")
    db.execute("CREATE TABLE leftover (x)")
    db.close()
    (home.data_dir / "care.log").write_text("2026-01-01T00:00:00 crisis resources given\n")
    for path in [*home.companion_dirs, personas]:
        path.chmod(0o755)
    for path in (personas / "old.toml", home.data_dir / "memory.db", home.data_dir / "care.log"):
        path.chmod(0o644)

    first = home.cli("memory", "stats")
    assert first.returncode == 0, first.stderr
    said = [line for line in first.stderr.splitlines() if "private" in line]
    assert len(said) == 1, first.stderr
    assert "memory.db" in said[0]
    assert _modes(home.companion_dirs) == {}
    again = home.cli("memory", "stats")
    assert "private" not in again.stderr  # said once: nothing left to repair


def test_repair_takes_only_other_users_bits_and_follows_no_link(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    script = folder / "tool"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (folder / "link").symlink_to(outside)
    changed = repair([folder])
    assert set(changed) == {folder, script}
    assert _mode(script) == 0o700  # the owner keeps what it had
    assert _mode(outside) == 0o644  # the link's target is not the companion's


def test_a_data_folder_moved_elsewhere_and_linked_is_made_private_too(tmp_path: Path) -> None:
    real = tmp_path / "other-disk" / "voice-companion"
    real.mkdir(parents=True)
    real.chmod(0o755)
    (real / "memory.db").write_bytes(b"")
    (real / "memory.db").chmod(0o644)
    link = tmp_path / "data"
    link.symlink_to(real)
    assert len(repair([link])) == 2
    assert _modes([real]) == {}


# -- links and files that are not files -----------------------------------------------------


def test_trace_does_not_follow_a_symbolic_link(tmp_path: Path, jfk_path: Path) -> None:
    home = Home(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "trace.jsonl"
    link.symlink_to(victim)
    result = home.cli(
        "run", "--input", str(jfk_path), "--output", str(tmp_path / "o.wav"), "--trace", str(link)
    )
    assert result.returncode == 2
    assert "symbolic link" in _one_line(result.stderr)
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()


@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_trace_into_a_missing_folder_or_at_a_folder_is_one_line(
    tmp_path: Path, jfk_path: Path, where: str
) -> None:
    home = Home(tmp_path)
    trace = tmp_path / "nowhere" / "trace.jsonl" if where == "missing folder" else tmp_path
    result = home.cli(
        "run", "--input", str(jfk_path), "--output", str(tmp_path / "o.wav"), "--trace", str(trace)
    )
    assert result.returncode == 2
    assert "--trace" in _one_line(result.stderr)


@pytest.mark.models
def test_export_to_a_symbolic_link_is_refused_and_the_link_kept(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert home.cli("chat", stdin="I live in Lisbon.\n").returncode == 0
    target = tmp_path / "elsewhere.json"
    target.write_text("keep me\n")
    link = tmp_path / "memory.json"
    link.symlink_to(target)
    result = home.cli("memory", "export", str(link))
    assert result.returncode == 1
    assert "symbolic link" in _one_line(result.stderr)
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == "keep me\n"


def test_an_atomic_write_refuses_a_link(tmp_path: Path) -> None:
    # The mechanism under export, persona files, WAV outputs, echo.json and the persona choice.
    target = tmp_path / "target"
    target.write_bytes(b"kept")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SymlinkRefusedError, match="symbolic link"):
        write_atomic(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]  # no leftovers


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "huge"])
def test_a_config_that_is_not_a_small_regular_file_is_refused_at_once(
    tmp_path: Path, kind: str
) -> None:
    config = tmp_path / "companion.toml"
    if kind == "/dev/zero":
        config.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(config)
    else:
        config.write_text("# padding\n" * 200_000)  # 2 MB of comments
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    result = subprocess.run(
        [sys.executable, "-m", "voice_companion", "--config", str(config), "memory", "stats"],
        capture_output=True,
        text=True,
        timeout=60,  # before: /dev/zero was read forever
        env=env,
    )
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "config file" in line and str(config) in line


# -- a read-only data folder ----------------------------------------------------------------


def _read_only_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind -o ro / /mnt 2>/dev/null || exit 3"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def _in_read_only_mount(
    home: Home, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # Root writes through chmod 0500, so the data folder is made read-only the way a read-only
    # disk is: a read-only bind mount over it, in a mount namespace of this command alone.
    folder = str(home.data_dir)
    command = [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG), *args]
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", folder, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=home.env,
        preexec_fn=_umask_022,
    )


@pytest.mark.models
@pytest.mark.skipif(not _read_only_mount_works(), reason="needs unshare -m and mount")
@pytest.mark.parametrize("writer_open", [False, True])
def test_list_and_export_work_on_a_read_only_data_folder(tmp_path: Path, writer_open: bool) -> None:
    home = Home(tmp_path)
    told = home.cli("chat", stdin="My dog is called Biscuit.\n")
    assert told.returncode == 0, told.stderr
    writer = None
    if writer_open:
        # Another process holds memory.db with turns still in its -wal (a running daemon).
        writer = sqlite3.connect(home.data_dir / "memory.db", isolation_level=None)
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute(
            "INSERT INTO turns (conversation_id, at, ts, speaker, text, source_id) "
            "SELECT conversation_id, at, ts, speaker, 'and a cat called Pickle', 'x:9' "
            "FROM turns LIMIT 1"
        )
        assert (home.data_dir / "memory.db-wal").stat().st_size > 0
    try:
        listed = _in_read_only_mount(home, "memory", "list", "--turns")
        out = tmp_path / "memory.json"
        exported = _in_read_only_mount(home, "memory", "export", str(out))
    finally:
        if writer is not None:
            writer.close()
    assert listed.returncode == 0, listed.stderr
    assert "Biscuit" in listed.stdout
    assert exported.returncode == 0, exported.stderr
    texts = [t["text"] for t in json.loads(out.read_text())["turns"]]
    assert any("Biscuit" in t for t in texts)
    assert writer_open == any("Pickle" in t for t in texts)
    # A write there is a one-line error, not a traceback.
    forgot = _in_read_only_mount(home, "memory", "forget", "--match", "Biscuit", "--yes")
    assert forgot.returncode != 0
    _one_line(forgot.stderr)
