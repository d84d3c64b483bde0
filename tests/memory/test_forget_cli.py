"""`memory forget` shows what will go and tells a running companion; `memory import` adds
nothing twice, brings nothing forgotten back and refuses ids that are not ids."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHIPPED_CONFIG
from tests.memory.conftest import LOCOMO_MINI
from tests.memory.test_cli_memory import one_line_error
from voice_companion.config import MemoryConfig
from voice_companion.control.server import ControlServer
from voice_companion.dialogue.history import Turn
from voice_companion.events import Command, MemoryForgotten
from voice_companion.memory.longterm import LongTermMemory


def cli(
    tmp_path: Path, *args: str, stdin: str = "", runtime_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    # Where a running companion's control socket would be: none, unless the test has one.
    env["XDG_RUNTIME_DIR"] = str(runtime_dir or tmp_path / "runtime")
    command = [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG)]
    return subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data"), *args],
        input=stdin, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def seed(tmp_path: Path) -> None:
    m = LongTermMemory.open(tmp_path / "data", MemoryConfig(dense=False))
    m.record(Turn("user", "My sister Ana is getting married in June."), "conv1")
    m.record(Turn("assistant", "How exciting!\x1b[2J Tell me more."), "conv1")
    m.record(Turn("user", "Ana's fiance is from Oslo, and I really love jazz."), "conv1")
    m.close()


def stats(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads(cli(tmp_path, "memory", "stats", "--json").stdout))


def test_forget_lists_what_goes_before_asking_and_says_the_true_count(tmp_path: Path) -> None:
    seed(tmp_path)
    asked = cli(tmp_path, "memory", "forget", "1", "2", stdin="n\n")
    assert asked.returncode == 1
    assert "My sister Ana is getting married in June." in asked.stderr
    assert "How exciting!\\u001b[2J Tell me more." in asked.stderr  # shown, not obeyed
    assert "\x1b" not in asked.stderr + asked.stdout
    assert "your sister is Ana" in asked.stderr  # the fact that goes with turn 1
    # Turn 1 gives two facts: the sister's name and her wedding (in June).
    assert "Forget 2 turn(s) and 2 fact(s) for good?" in asked.stderr
    # A topic: the turn that also said something else is shown as it will be kept.
    asked = cli(tmp_path, "memory", "forget", "--match", "Ana", stdin="n\n")
    assert "becomes: I really love jazz." in asked.stderr
    assert "Forget 1 turn(s), part of 1 more, and 2 fact(s) for good?" in asked.stderr
    done = cli(tmp_path, "memory", "forget", "--match", "Ana", "--yes")
    assert done.returncode == 0, done.stderr
    assert "forgot 1 turn(s), rewrote 1 turn(s) and 2 fact(s)" in done.stdout
    listing = json.loads(cli(tmp_path, "memory", "list", "--json").stdout)
    assert [t["text"] for t in listing["turns"]] == [
        "How exciting!\x1b[2J Tell me more.",
        "I really love jazz.",
    ]
    assert [f["key"] for f in listing["facts"]] == ["taste:jazz"]
    raw = (tmp_path / "data" / "memory.db").read_bytes()
    assert b"Ana" not in raw and b"Oslo" not in raw


@pytest.mark.models  # MiniLM indexes the import
def test_import_twice_adds_nothing_and_brings_nothing_forgotten_back(tmp_path: Path) -> None:
    seed(tmp_path)
    export = tmp_path / "export.json"
    assert cli(tmp_path, "memory", "export", str(export)).returncode == 0
    before = stats(tmp_path)
    again = cli(tmp_path, "memory", "import", str(export))
    assert again.returncode == 0, again.stderr
    assert "imported 0 turns and 0 facts" in again.stdout
    after = stats(tmp_path)
    assert (after["turns"], after["facts"]) == (before["turns"], before["facts"])
    # Forgotten after the export: the export cannot bring it back, in whole or in part.
    assert cli(tmp_path, "memory", "forget", "1", "--match", "Oslo", "--yes").returncode == 0
    back = cli(tmp_path, "memory", "import", str(export))
    assert back.returncode == 0, back.stderr
    texts = [
        t["text"] for t in json.loads(cli(tmp_path, "memory", "list", "--json").stdout)["turns"]
    ]
    assert not any("Ana" in t or "Oslo" in t for t in texts), texts
    assert stats(tmp_path)["facts"] == 1
    # Into a fresh memory, the same export is restored whole, ids kept.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert cli(fresh, "memory", "import", str(export)).returncode == 0
    assert stats(fresh)["turns"] == 3


def test_import_refuses_an_id_that_is_not_a_positive_whole_number(tmp_path: Path) -> None:
    seed(tmp_path)
    export = tmp_path / "export.json"
    assert cli(tmp_path, "memory", "export", str(export)).returncode == 0
    data = json.loads(export.read_text())
    for bad in (-5, 0, "3", 2.5, True):
        data["turns"][1]["id"] = bad  # the reply: no fact names it
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps(data))
        fresh = tmp_path / f"fresh-{bad}"
        fresh.mkdir()
        line = one_line_error(cli(fresh, "memory", "import", str(broken)), 1)
        assert "not a positive whole number" in line, line
        assert stats(fresh)["turns"] == 0


def test_memory_forget_tells_a_running_companion(tmp_path: Path) -> None:
    seed(tmp_path)
    runtime = Path(tempfile.mkdtemp(prefix="vcf-"))  # a unix socket path is short
    received: list[Command] = []

    async def handle(command: Command) -> dict[str, Any]:
        received.append(command)
        return {}

    async def scenario() -> None:
        async with ControlServer(runtime / "voice-companion" / "control.sock", handle):
            args = ("memory", "forget", "--match", "Oslo", "--yes")
            done = await asyncio.wait_for(
                asyncio.to_thread(cli, tmp_path, *args, runtime_dir=runtime), 120
            )
            assert done.returncode == 0, done.stderr

    asyncio.run(scenario())
    assert received == [MemoryForgotten()]


@pytest.mark.models  # MiniLM indexes the import
def test_a_locomo_file_imported_twice_adds_nothing(tmp_path: Path) -> None:
    first = cli(tmp_path, "memory", "import", "--format", "locomo", str(LOCOMO_MINI))
    assert first.returncode == 0, first.stderr
    turns = stats(tmp_path)["turns"]
    again = cli(tmp_path, "memory", "import", "--format", "locomo", str(LOCOMO_MINI))
    assert again.returncode == 0, again.stderr
    assert "imported 0 turns" in again.stdout and stats(tmp_path)["turns"] == turns


def test_the_forgotten_command_on_the_wire() -> None:
    from voice_companion.control.protocol import encode_line, parse_request, to_request

    assert parse_request(b'{"cmd": "forgotten"}\n') == MemoryForgotten()
    assert parse_request(encode_line(to_request(MemoryForgotten()))) == MemoryForgotten()
