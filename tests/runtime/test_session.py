"""The orchestrator with real engines: a recording answered end to end, failures apologised
for, and barge-in (with a scripted slow model, beside the real-model tests)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import JFK_TEXT, shipped_config, word_error_rate, words
from tests.fakes import PacedSink, ScriptedTranscriber, SlowScriptedModel
from tests.harness import Conversation, converse
from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.decode import read_audio
from voice_companion.engines.llm_openai import OpenAiChatModel
from voice_companion.events import SpeechStarted, UtteranceEnded
from voice_companion.runtime import runner
from voice_companion.runtime.session import Engines, State

ONE_TURN = {
    "VOICE_COMPANION_VAD_ADAPTIVE_END_SILENCE": "false",
    "VOICE_COMPANION_VAD_END_SILENCE_MS": "1300",
}
"""End-of-speech settings under which JFK's 1.1 s pauses do not end his turn. Read faster
than real time, a recording gives the companion no moment to back off in (see
test_in_real_time_a_reply_to_a_pause_backs_off_and_all_is_answered_as_one)."""


def answer(
    engines: Engines,
    recording: AudioChunk,
    tmp_path: Path,
    realtime: bool = False,
    one_turn: bool = True,
    **env: str,
) -> tuple[list[dict[str, object]], Path]:
    config = shipped_config(tmp_path, **{**(ONE_TURN if one_turn else {}), **env})
    out, trace = tmp_path / "out.wav", tmp_path / "trace.jsonl"
    asyncio.run(
        asyncio.wait_for(
            runner.run_recording(config, engines, recording, out, realtime, trace_path=trace),
            timeout=180,
        )
    )
    import json

    return [json.loads(line) for line in trace.read_text().splitlines()], out


def by_name(events: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in events if e["event"] == name]


def test_a_recording_is_heard_answered_and_spoken(
    engines: Engines, jfk_path: Path, tmp_path: Path
) -> None:
    events, out = answer(engines, read_audio(jfk_path), tmp_path)
    names = [e["event"] for e in events]
    for earlier, later in [
        ("speech_start", "speech_end"),
        ("speech_end", "transcript"),
        ("transcript", "first_audio"),
        ("first_audio", "turn_end"),
    ]:
        assert names.index(earlier) < names.index(later)
    transcript = str(by_name(events, "transcript")[0]["text"])
    assert word_error_rate(JFK_TEXT, transcript) <= 0.10
    reply = str(by_name(events, "reply")[0]["text"])
    assert words(reply)
    end = by_name(events, "turn_end")[0]
    for stage in (
        "endpoint_wait_s",
        "stt_s",
        "llm_first_token_s",
        "tts_first_s",
        "response_latency_s",
    ):
        assert isinstance(end[stage], float) and end[stage] >= 0
    # The reply is audible: whisper hears back most of what the companion said.
    spoken = engines.transcriber.transcribe(read_audio(out)).text
    heard = set(words(spoken))
    assert len([w for w in words(reply) if w in heard]) >= 0.5 * len(words(reply))


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_gets_an_apology_not_silence(
    engines: Engines, jfk_path: Path, tmp_path: Path
) -> None:
    model = OpenAiChatModel(f"http://127.0.0.1:{dead_port()}/v1", "m", None, 1.0, 2.0, 50, 0.5)
    events, out = answer(dataclasses.replace(engines, model=model), read_audio(jfk_path), tmp_path)
    reply = str(by_name(events, "reply")[0]["text"])
    assert reply == shipped_config(tmp_path).llm.apology
    assert "sorry" in engines.transcriber.transcribe(read_audio(out)).text.lower()


def test_in_real_time_a_reply_to_a_pause_backs_off_and_all_is_answered_as_one(
    engines: Engines, jfk_path: Path, tmp_path: Path
) -> None:
    # Shipped turn-taking: "And so my fellow Americans." sounds complete, so a reply is
    # prepared for the 1.1 s pause after it (and may start playing). JFK goes on: the reply
    # is dropped (backed off from, if it had begun) and the whole speech answered once.
    events, _ = answer(
        engines,
        read_audio(jfk_path),
        tmp_path,
        realtime=True,
        one_turn=False,
        VOICE_COMPANION_LLM_MAX_REPLY_TOKENS="24",
    )
    transcripts = [str(e["text"]) for e in by_name(events, "transcript")]
    assert transcripts[0].startswith("And so my fellow Americans")
    assert word_error_rate(transcripts[0], JFK_TEXT) > 0.5  # the first phrase alone
    assert by_name(events, "turn_abandoned")
    assert word_error_rate(JFK_TEXT, transcripts[-1]) <= 0.10  # "ask not" included
    (reply,) = by_name(events, "reply")
    assert not reply["interrupted"] and words(str(reply["text"]))
    assert len(by_name(events, "turn_end")) == 1


def test_a_hanging_server_is_bounded_by_the_read_timeout(
    engines: Engines, jfk_path: Path, tmp_path: Path
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    port = listener.getsockname()[1]
    model = OpenAiChatModel(f"http://127.0.0.1:{port}/v1", "m", None, 1.0, 30.0, 50, 0.5)
    try:
        events, _ = answer(
            dataclasses.replace(engines, model=model),
            read_audio(jfk_path),
            tmp_path,
            VOICE_COMPANION_LLM_READ_TIMEOUT_S="1.5",
        )
    finally:
        listener.close()
        for conn in held:
            conn.close()
    # the session's own bound (1.5 s) wins over the client's longer read timeout (30 s)
    assert by_name(events, "reply")[0]["text"] == shipped_config(tmp_path).llm.apology
    end = by_name(events, "turn_end")[0]
    assert isinstance(end["llm_first_token_s"], type(None))
    assert float(str(end["turn_s"])) < 25


def test_speech_with_no_words_gets_didnt_catch_that(engines: Engines, tmp_path: Path) -> None:
    config = shipped_config(tmp_path)
    silence = AudioChunk.silence(1.0, 16_000)
    talk = converse(
        config, engines, events=[UtteranceEnded(silence, 0.0, 1.0, 1.6)], end_s=2.0, timeout_s=60
    )
    assert talk.named("reply")[0]["text"] == config.dialogue.not_heard
    assert talk.sink.chunks


def test_barge_in_cancels_the_turn_and_history_keeps_what_was_heard(
    engines: Engines, tmp_path: Path
) -> None:
    config = shipped_config(tmp_path)
    scripted = SlowScriptedModel(
        [f"This is sentence number {n} of a long story." for n in range(1, 200)], 0.02
    )
    parts = dataclasses.replace(
        engines, transcriber=ScriptedTranscriber("Tell me a long story."), model=scripted
    )
    speech = AudioChunk.silence(1.0, 16_000)

    async def script(talk: Conversation) -> None:
        await talk.send(UtteranceEnded(speech, 0.0, 1.0, 1.6))
        await talk.until(lambda: len(talk.sink.chunks) >= 6)  # three sentences, their pauses
        assert talk.session.state is State.SPEAKING
        await talk.send(SpeechStarted(5.0))
        await talk.turns_ended(1)

    talk = converse(config, parts, script=script, end_s=6.0, sink=PacedSink(), barge_in=True)
    sink, tracer, dialogue, session = talk.sink, talk.tracer, talk.dialogue, talk.session
    reply = by_name(tracer.events, "reply")[-1]
    assert reply["interrupted"] is True
    heard = str(reply["text"])
    assert heard.startswith("This is sentence number 1 of a long story.")
    assert "sentence number 199" not in heard
    assert sink.flushes == 1
    assert scripted.ended.wait(5), "the model was not told to stop"
    assert scripted.yielded < len(scripted.words)
    assert session.state is State.IDLE
    last = dialogue.history.recent(1)[0]
    assert last.interrupted and last.text == heard


@pytest.fixture(autouse=True)
def _model_threads_end() -> Iterator[None]:
    """Every turn's model thread ends soon after the turn: none is left running."""
    yield
    deadline = time.monotonic() + 10
    while [t for t in threading.enumerate() if t.name == "llm-stream"]:
        assert time.monotonic() < deadline, "a model thread outlived its turn"
        time.sleep(0.05)
