"""Care: crisis resources that do not depend on the model, the AI disclosure on first use,
a break after long use, quiet hours."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime
from datetime import time as clock_time
from pathlib import Path

import pytest

from tests.conftest import REPO, SHIPPED_CONFIG, shipped_config
from voice_companion import app
from voice_companion.audio.sinks import MemorySink
from voice_companion.config import CareConfig
from voice_companion.dialogue.care import (
    CRISIS_LINES,
    INTERNATIONAL_LINE,
    Care,
    QuietHours,
    crisis_line,
    is_crisis,
)
from voice_companion.errors import ConfigError
from voice_companion.events import InputEnded
from voice_companion.session import Engines, Session
from voice_companion.trace import Tracer, TraceRecorder

CRISIS = [
    "I want to kill myself",
    "honestly I've been thinking about suicide",
    "I don't want to live anymore",
    "sometimes I think everyone would be better off without me",
    "I've been cutting myself again",
    "I just want to die",
    "I feel suicidal tonight",
    "I have no reason to live",
    "I'm going to end my life",
]
NOT_CRISIS = [
    "this traffic is killing me",
    "I'd die for a slice of pizza",
    "I'm going to die of embarrassment",
    "my phone died again",
    "I killed it at the presentation today",
    "the plants in my garden are dying",
]


@pytest.mark.parametrize("text", CRISIS)
def test_talk_of_self_harm_is_recognised(text: str) -> None:
    assert is_crisis(text)


@pytest.mark.parametrize("text", NOT_CRISIS)
def test_everyday_figures_of_speech_are_not(text: str) -> None:
    assert not is_crisis(text)


def test_the_crisis_line_follows_the_region_and_the_users_own_words() -> None:
    assert crisis_line(CareConfig(region="gb"), {}) == CRISIS_LINES["GB"]
    assert "988" in crisis_line(CareConfig(), {"LANG": "en_US.UTF-8"})
    assert crisis_line(CareConfig(), {"LANG": "C.UTF-8"}) == INTERNATIONAL_LINE
    assert crisis_line(CareConfig(region="ZZ"), {}) == INTERNATIONAL_LINE
    own = CareConfig(crisis_line="Call my sister Ana on 555 0100.")
    assert crisis_line(own, {"LANG": "en_GB.UTF-8"}) == "Call my sister Ana on 555 0100."


def test_a_user_in_crisis_gets_help_without_the_model_and_it_is_logged_privately(
    tmp_path: Path,
) -> None:
    """The real CLI chat with the bundled model: the crisis reply is fixed text with the
    resources, the model is not asked, and the event is in a 0600 log without the words."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["LANG"] = "en_GB.UTF-8"
    lines = "I got a new bike today\nI don't want to be alive anymore\n"
    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG),
         "--data-dir", str(tmp_path), "chat", "--json"],
        input=lines, capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line)["reply"] for line in done.stdout.splitlines()]
    assert len(replies) == 2
    assert "116 123" not in replies[0]
    assert "116 123" in replies[1] and "emergency" in replies[1]
    assert "I'm really glad you told me" in replies[1]
    log = tmp_path / "care.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "crisis resources given (GB)" in text and "alive" not in text
    # the user's words are remembered like any others
    with contextlib.closing(sqlite3.connect(tmp_path / "memory.db")) as db:
        texts = [row[0] for row in db.execute("SELECT text FROM turns")]
    assert any("alive anymore" in t for t in texts)


def test_a_break_is_suggested_once_after_long_continuous_use() -> None:
    now = [0.0]
    care = Care(CareConfig(break_after_min=120), Path("/nonexistent"), monotonic=lambda: now[0])
    said = []
    for minute in range(0, 300, 5):  # a turn every 5 minutes for 5 hours
        now[0] = minute * 60.0
        said.append(care.break_reminder())
    reminders = [s for s in said if s]
    assert len(reminders) == 1 and "break" in reminders[0]
    assert said.index(reminders[0]) == 24  # at 120 minutes
    now[0] += 20 * 60  # a 20-minute pause starts a new stretch
    assert care.break_reminder() is None
    off = Care(CareConfig(break_after_min=0), Path("/nonexistent"), monotonic=lambda: now[0])
    now[0] = 0
    off.break_reminder()
    now[0] = 10 * 3600
    assert off.break_reminder() is None


def test_quiet_hours() -> None:
    night = QuietHours.parse("22:30-07:00")
    assert night is not None
    assert night.contains(clock_time(23, 0)) and night.contains(clock_time(6, 59))
    assert not night.contains(clock_time(7, 0)) and not night.contains(clock_time(12, 0))
    day = QuietHours.parse("09:00-17:00")
    assert day is not None and day.contains(clock_time(9, 0)) and not day.contains(clock_time(17))
    always = QuietHours.parse("00:00-00:00")
    assert always is not None and always.contains(clock_time(12, 34))
    assert QuietHours.parse("") is None
    for bad in ("25:00-07:00", "10pm-7am", "22:30"):
        with pytest.raises(ConfigError, match=r"care\.quiet_hours"):
            QuietHours.parse(bad)
    with pytest.raises(ConfigError, match=r"care\.region"):
        shipped_config(Path("/tmp"), VOICE_COMPANION_CARE_REGION="Britain")


def _intro_session(engines: Engines, data: Path, hour: int) -> tuple[Session, Tracer]:
    config = shipped_config(data, VOICE_COMPANION_CARE_QUIET_HOURS="22:00-07:00")
    care = Care(config.care, data, local_now=lambda: datetime(2026, 11, 26, hour, 0))
    dialogue = app.build_dialogue(config, care=care)
    tracer = Tracer(recorder=TraceRecorder())
    return Session(config, engines, dialogue, MemorySink(), tracer), tracer


def _said(tracer: Tracer) -> list[str]:
    return [str(e["text"]) for e in tracer.events if e["event"] == "said"]


def test_the_ai_disclosure_is_said_the_first_time_only_in_the_personas_voice(
    engines: Engines, tmp_path: Path
) -> None:
    async def start_and_finish(session: Session) -> None:
        async def events():  # type: ignore[no-untyped-def]
            session.introduce()
            yield InputEnded(0.0)

        await session.run(events())

    first, tracer = _intro_session(engines, tmp_path, hour=12)
    asyncio.run(asyncio.wait_for(start_and_finish(first), 120))
    persona = first.persona
    said = _said(tracer)
    assert said and said[0].startswith(persona.ai_disclosure)
    assert persona.greeting_for() in said[0]
    assert (tmp_path / "disclosed").read_text().split() == [persona.key]

    second, tracer = _intro_session(engines, tmp_path, hour=12)
    asyncio.run(asyncio.wait_for(start_and_finish(second), 120))
    assert _said(tracer) == [persona.greeting_for(index=0)]

    # quiet hours: nothing at all unprompted
    quiet, tracer = _intro_session(engines, tmp_path, hour=23)
    asyncio.run(asyncio.wait_for(start_and_finish(quiet), 120))
    assert _said(tracer) == []
