"""Forgetting reaches everything: the file, the history and caches of every running process,
care.log; topics are matched the same way everywhere, and only what is about them goes.

Real SQLite files on disk; the "running process" is a real ``voice-companion chat`` process
whose model is the scripted OpenAI-compatible server process (tests/engines/openai_server.py),
which records the prompts it is sent: what the model really got is what is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.engines.openai_server import received_prompts as prompts
from voice_companion.bench.crash import _Chat
from voice_companion.config import CareConfig, MemoryConfig
from voice_companion.dialogue.care import Care, read_care_log
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.engines.embedder import Embedder
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.seam import NoMemory
from voice_companion.memory.store import MemoryDb
from voice_companion.memory.topic import Topic
from voice_companion.persona.values import Persona

REPO = Path(__file__).resolve().parents[2]
BISCUIT = "My dog Biscuit loves the beach, I work at Acme, and I really love jazz."
PASSPORT = "Fudgeworth Cornelius is what his passport says."


def raw_files(db_path: Path) -> bytes:
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def dialogue(memory: Any) -> Dialogue:
    return Dialogue(Persona(name="Robin"), memory, 8, 2000, "conv-forget")


def forget_about(d: Dialogue, topic: str) -> str:
    d.record_user(f"Forget about {topic}")
    asked = d.command_reply(f"Forget about {topic}") or ""
    d.record_reply(asked, False)
    d.record_user("yes")
    return d.command_reply("yes") or ""


def test_one_matcher_words_in_any_order() -> None:
    topic = Topic.of("Cornelius Fudgeworth")
    assert topic.matches(PASSPORT)
    assert not topic.matches("Cornelius called.")
    assert Topic.of("biscuit").matches("Biscuit's bowl") and Topic.of("cat").matches("Cats!")
    assert not Topic.of("cat").matches("a category")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (BISCUIT, "I work at Acme, and I really love jazz."),
        ("I met Tom. It rained, but I love jazz.", "It rained, but I love jazz."),
        ("Tom, my ex, called; I cried.", "I cried."),  # the appositive goes with Tom
        ("Tom is so tall and I like tea.", "I like tea."),
        ("Tom called me.", ""),  # nothing else said: the whole turn goes
        ("Tom and I.", ""),  # nothing of substance left
        ("Cornelius is tall, and Fudgeworth is his name.", ""),  # the words span clauses
    ],
)
def test_redact_keeps_only_what_is_not_about_the_topic(text: str, kept: str) -> None:
    topic = Topic.of("Biscuit") if "Biscuit" in text else Topic.of("Tom")
    if "Cornelius" in text:
        topic = Topic.of("Cornelius Fudgeworth")
    assert topic.redact(text) == kept


@pytest.mark.parametrize("stored", [True, False], ids=["memory.db", "no-memory"])
def test_forget_about_matches_the_history_as_the_database(tmp_path: Path, stored: bool) -> None:
    memory: Any = (
        LongTermMemory(MemoryDb(tmp_path / "memory.db"), MemoryConfig(dense=False))
        if stored
        else NoMemory()
    )
    d = dialogue(memory)
    d.record_exchange(PASSPORT, "A grand name.", False)
    d.record_exchange("I had soup.", "Tasty.", False)
    assert forget_about(d, "Cornelius Fudgeworth").startswith("Done.")
    assert not any("Fudgeworth" in t.text for t in d.history.recent())
    assert "Fudgeworth" not in json.dumps([m.content for m in d.messages_for("Hello")])
    if stored:
        assert all("Fudgeworth" not in t.text for t in memory.db.turns())
        assert b"Fudgeworth" not in raw_files(memory.db.path)
        memory.close()


def test_forget_about_takes_only_what_is_about_the_topic(tmp_path: Path) -> None:
    memory = LongTermMemory(MemoryDb(tmp_path / "memory.db"), MemoryConfig(dense=False))
    d = dialogue(memory)
    d.record_exchange(BISCUIT, "Lovely!", False)
    d.record_exchange("Biscuit is a beagle.", "Cute.", False)
    # FACTS.md: "I work at Acme" is the workplace; "Biscuit is a beagle" also says what he is.
    assert {f.key for f in memory.db.facts()} == {
        "relation:dog",
        "trait:dog",
        "taste:jazz",
        "workplace",
    }
    d.record_user("Forget about Biscuit")
    # The true count: one turn goes, one is rewritten, two facts go (his name, his breed).
    assert d.command_reply("Forget about Biscuit") == (
        "I remember 4 things about Biscuit. Shall I forget it all, for good?"
    )
    d.record_user("yes")
    d.command_reply("yes")
    rewritten = "I work at Acme, and I really love jazz."
    facts = memory.db.facts()
    assert {f.key for f in facts} == {"taste:jazz", "workplace"}, "facts about other things went"
    for fact in facts:
        assert [memory.db.turn(t).text for t in fact.source_turn_ids] == [rewritten]
    assert [t.text for t in d.history.recent()] == [rewritten, "Lovely!", "Cute."]
    assert memory.db.search_text('"biscuit"', 5) == [] and memory.db.search_text('"beach"', 5) == []
    assert memory.db.search_text('"acme"', 5)
    raw = raw_files(memory.db.path)
    assert b"Biscuit" not in raw and b"beagle" not in raw and b"beach" not in raw
    memory.close()


def test_another_process_forgetting_reaches_this_dialogue_and_its_vectors(
    tmp_path: Path, embedder: Embedder
) -> None:
    memory = LongTermMemory(MemoryDb(tmp_path / "memory.db"), MemoryConfig(), embedder=embedder)
    d = dialogue(memory)
    d.record_exchange(PASSPORT, "A grand name.", False)
    d.record_exchange(BISCUIT, "Lovely!", False)
    memory.wait_idle()
    assert memory.search("passport names", 3, "dense")  # the vectors are in memory now
    cached = memory.retriever.cached_turn_ids()
    assert len(cached) == 4
    # Another process (the CLI) forgets, and rewrites the Biscuit turn.
    other = LongTermMemory(MemoryDb(tmp_path / "memory.db"), MemoryConfig(dense=False))
    passport_id = other.db.matching_turn_ids("Fudgeworth")[0]
    other.forget_topic(other.topic_matches("Fudgeworth"))
    other.forget_topic(other.topic_matches("Biscuit"))
    other.close()
    prompt = json.dumps([m.content for m in d.messages_for("Tell me about names")])
    assert "Fudgeworth" not in prompt and "Biscuit" not in prompt
    assert "I work at Acme, and I really love jazz." in prompt
    assert passport_id not in memory.retriever.cached_turn_ids()
    memory.close()


def test_care_log_keeps_the_count_not_the_moment(tmp_path: Path) -> None:
    care = Care(CareConfig(region="GB"), tmp_path, local_now=lambda: datetime(2026, 5, 3, 23, 41))
    assert care.crisis_reply("I want to die")
    assert care.crisis_reply("I want to kill myself")
    text = (tmp_path / "care.log").read_text()
    assert text == "crisis resources given (GB): 2\n"
    assert "2026" not in text and "23:41" not in text
    # A log written before counts were kept loses its moments at the next write.
    (tmp_path / "care.log").write_text(
        "2026-05-01T10:00:00 crisis resources given (GB)\n"
        "2026-05-02T11:00:00 crisis resources given (GB)\n"
    )
    assert care.crisis_reply("I want to die")
    assert read_care_log(tmp_path / "care.log") == {"crisis resources given (GB)": 3}
    assert "2026" not in (tmp_path / "care.log").read_text()


# -- a running chat process, and the CLI from another process -----------------------------


def test_memory_forget_from_the_cli_reaches_a_running_chat(
    tmp_path: Path, recording_server: str
) -> None:
    config = tmp_path / "companion.toml"
    config.write_text(
        f'[llm]\nbackend = "openai"\nbase_url = "{recording_server}/v1"\nmodel = "scripted"\n'
        "[memory]\ndense = false\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "runtime")  # no daemon to tell here
    base = [sys.executable, "-m", "voice_companion", "--config", str(config)]
    base += ["--data-dir", str(tmp_path / "data")]
    chat = _Chat([*base, "-q", "chat", "--json"], tmp_path / "chat-stderr.log")
    try:
        for line in (PASSPORT, BISCUIT):
            assert chat.send(line)
            assert chat.reply(time.monotonic() + 60) is not None, "the chat did not answer"
        assert "Fudgeworth" in json.dumps(prompts(recording_server)[-1])
        forgot = subprocess.run(
            [*base, "memory", "forget", "--match", "Cornelius Fudgeworth", "--yes"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert forgot.returncode == 0, forgot.stderr
        assert "forgot 1 turn(s) and 0 fact(s)" in forgot.stdout
        assert chat.send("Tell me something nice.")  # to the model (not a memory shortcut)
        assert chat.reply(time.monotonic() + 60) is not None
    finally:
        chat.end()
    last = json.dumps(prompts(recording_server)[-1])
    assert "Fudgeworth" not in last, "the running chat still sent the forgotten turn"
    assert "Biscuit" in last  # the rest of the conversation is still there
    assert b"Fudgeworth" not in raw_files(tmp_path / "data" / "memory.db")


def test_forgetting_a_topic_in_an_encrypted_memory(tmp_path: Path) -> None:
    from voice_companion.memory.encryption import ENV_PASSPHRASE, KeySources, open_memory_db

    config = MemoryConfig(encrypt=True, dense=False)
    sources = KeySources(env={ENV_PASSPHRASE: "a long passphrase"}, interactive=False)
    memory = LongTermMemory(open_memory_db(tmp_path, config, sources), config)
    d = dialogue(memory)
    d.record_exchange(BISCUIT, "Lovely!", False)
    assert forget_about(d, "Biscuit").startswith("Done.")
    assert [t.text for t in memory.db.turns()] == [
        "I work at Acme, and I really love jazz.",
        "Lovely!",
    ]
    assert {f.key for f in memory.db.facts()} == {"taste:jazz", "workplace"}
    memory.close()


@pytest.mark.models  # MiniLM indexes the turns in the background
def test_the_session_drops_forgotten_words_from_its_trace_and_history(tmp_path: Path) -> None:
    from tests.conftest import shipped_config
    from tests.fakes import NullSynth, ScriptedTranscriber, SlowScriptedModel
    from tests.harness import converse
    from voice_companion import app
    from voice_companion.audio.chunk import AudioChunk
    from voice_companion.events import UtteranceEnded
    from voice_companion.runtime.session import Engines

    config = shipped_config(tmp_path)
    model = SlowScriptedModel(["A grand name."], 0.0)
    engines = Engines(ScriptedTranscriber(PASSPORT), model, NullSynth())
    dialogue_ = app.build_dialogue(config)
    said = UtteranceEnded(AudioChunk.silence(1.0, 16_000), 0.0, 1.0, 1.6)
    try:
        talk = converse(config, engines, dialogue=dialogue_, events=[said], end_s=3.0, timeout_s=60)
        session, tracer = talk.session, talk.tracer
        assert "Fudgeworth" in json.dumps(tracer.events)
        # Another process (the CLI) forgets it; the daemon is told.
        other = LongTermMemory.open(config.data_dir, MemoryConfig(dense=False))
        other.forget_topic(other.topic_matches("Fudgeworth"))
        other.close()
        assert session.forgotten_elsewhere()
        assert "Fudgeworth" not in json.dumps(tracer.events)
        assert not any("Fudgeworth" in t.text for t in dialogue_.history.recent())
        assert not session.forgotten_elsewhere()  # nothing new since
    finally:
        dialogue_.close()
