"""`voice-companion memory ...` as a user meets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG
from tests.memory.conftest import LOCOMO_MINI
from voice_companion.config import MemoryConfig
from voice_companion.dialogue.history import Turn
from voice_companion.memory.longterm import LongTermMemory


def cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    command = [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG)]
    return subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return lines[-1]


def seed(tmp_path: Path) -> None:
    m = LongTermMemory.open(tmp_path / "data", MemoryConfig())
    m.record(Turn("user", "My sister Ana is getting married in June.", duration_s=2.4), "conv1")
    m.record(Turn("assistant", "How exciting! Tell me more.", interrupted=True), "conv1")
    m.record(Turn("user", "I moved to Berlin.", duration_s=1.1), "conv1")
    m.record(Turn("user", "I now live in Lisbon."), "conv2")
    m.wait_idle()
    m.close()


@pytest.mark.models
def test_search_list_show_stats(tmp_path: Path) -> None:
    seed(tmp_path)
    result = cli(tmp_path, "memory", "search", "wedding plans", "--limit", "2", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert hits[0]["text"] == "My sister Ana is getting married in June."
    assert {"id", "date", "speaker", "score", "source_id"} <= hits[0].keys()
    assert hits[0]["source_id"] == "conv1:1" and hits[0]["duration_s"] == 2.4
    listing = json.loads(cli(tmp_path, "memory", "list", "--all", "--json").stdout)
    homes = [f for f in listing["facts"] if f["key"] == "home"]
    assert [(f["value"], f["valid_to"] is None) for f in homes] == [
        ("Berlin", False),
        ("Lisbon", True),
    ]
    assert listing["turns"][1]["interrupted"] is True
    shown = cli(tmp_path, "memory", "show", homes[0]["id"])
    assert "no longer valid since" in shown.stdout and "I moved to Berlin." in shown.stdout
    stats = json.loads(cli(tmp_path, "memory", "stats", "--json").stdout)
    assert stats["turns"] == 4 and stats["embedded_turns"] == 4 and stats["conversations"] == 2


@pytest.mark.models  # MiniLM indexes the turns in the background
def test_forget_asks_unless_yes_and_names_unknown_ids(tmp_path: Path) -> None:
    seed(tmp_path)
    refused = cli(tmp_path, "memory", "forget", "--match", "Ana", stdin="n\n")
    # Two facts from that turn: the sister's name and her wedding (in June).
    assert refused.returncode == 1 and "Forget 1 turn(s) and 2 fact(s)" in refused.stderr
    assert "nothing was forgotten" in refused.stderr
    done = cli(tmp_path, "memory", "forget", "--match", "Ana", stdin="yes\n")
    assert done.returncode == 0, done.stderr
    for name in ("memory.db", "memory.db-wal"):
        path = tmp_path / "data" / name
        assert not path.exists() or b"getting married" not in path.read_bytes()
    assert "no remembered turn has id 99" in one_line_error(
        cli(tmp_path, "memory", "forget", "99", "--yes"), 1
    )
    assert "not a memory id" in one_line_error(cli(tmp_path, "memory", "show", "x7"), 2)
    assert "f42" in one_line_error(cli(tmp_path, "memory", "show", "f42"), 1)


@pytest.mark.models
def test_export_import_export_is_identical(tmp_path: Path) -> None:
    seed(tmp_path)
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    assert cli(tmp_path, "memory", "export", str(first)).returncode == 0
    restored = tmp_path / "restored"
    restored.mkdir()
    result = cli(restored, "memory", "import", str(first))
    assert result.returncode == 0, result.stderr
    assert cli(restored, "memory", "export", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    data = json.loads(first.read_text())
    assert len(data["turns"]) == 4 and len(data["facts"]) == 4  # Ana, her wedding, 2 homes
    assert oct(first.stat().st_mode & 0o777) == "0o600"


def test_malformed_files_get_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON" in one_line_error(cli(tmp_path, "memory", "import", str(bad)), 1)
    bad.write_text('{"format": "voice-companion-memory", "version": 1, "turns": 3}')
    assert "must be a list" in one_line_error(cli(tmp_path, "memory", "import", str(bad)), 1)
    bad.write_text('[{"conversation": {"session_1": []}}]')
    message = one_line_error(cli(tmp_path, "memory", "import", "--format", "locomo", str(bad)), 1)
    assert "session_1_date_time" in message
    missing = tmp_path / "missing.json"
    assert "does not exist" in one_line_error(cli(tmp_path, "memory", "import", str(missing)), 1)


@pytest.mark.models
def test_locomo_import_keeps_dia_ids_and_session_dates(tmp_path: Path) -> None:
    result = cli(tmp_path, "memory", "import", "--format", "locomo", str(LOCOMO_MINI))
    assert result.returncode == 0, result.stderr
    hits = json.loads(
        cli(tmp_path, "memory", "search", "camping trip at the lake", "--json").stdout
    )
    assert hits[0]["source_id"] == "D1:2" and hits[0]["speaker"] == "Melanie"
    assert hits[0]["date"].startswith("2023-05-08T13:56")
