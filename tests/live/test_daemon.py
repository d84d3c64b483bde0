"""The live daemon end to end: a real PulseAudio server whose microphone is a fifo we speak
into and whose speaker is a null sink we record. Everything in the companion is real."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import JFK_TEXT, word_error_rate, words
from tests.live.conftest import RunningDaemon, start
from tests.live.pulse import PulseRig, heard_text, read_raw
from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.decode import read_audio

pytestmark = pytest.mark.timeout(300)


def test_spoken_to_it_answers_aloud(
    hands_free: RunningDaemon,
    jfk_path: Path,
    tmp_path: Path,
    engines,  # type: ignore[no-untyped-def]
) -> None:
    daemon, rig = hands_free, hands_free.rig
    recording = tmp_path / "speaker.raw"
    recorder = rig.record(recording)
    try:
        rig.say(read_audio(jfk_path))
        end = daemon.wait_for(lambda: daemon.events("turn_end"), 90, "the reply")[0]
        time.sleep(1.0)
    finally:
        recorder.terminate()
        recorder.wait(10)
    transcript = daemon.events("transcript")[-1]["text"]
    assert word_error_rate(JFK_TEXT, transcript) <= 0.10
    # Answered once, as a whole.
    (reply_event,) = daemon.events("reply")
    reply = reply_event["text"]
    assert words(reply)
    heard = set(words(heard_text(engines.transcriber, read_raw(recording))))
    assert len([w for w in words(reply) if w in heard]) >= 0.4 * len(words(reply))
    # It measured how its voice comes back through the microphone (not at all, here) and
    # keeps that for its next start.
    echo = json.loads((daemon.trace.parent / "data" / "echo.json").read_text())["coupling"]
    assert echo and min(echo) < 0.05
    status = daemon.send("status")
    assert status["turns"] >= 1
    assert status["last_turn"]["response_latency_s"] == pytest.approx(
        end["response_latency_s"], abs=1e-3
    )
    print(
        f"\nlive: ready after {daemon.ready_s:.2f} s; end of speech to first reply audio "
        f"{end['response_latency_s']:.3f} s; replies dropped as he went on: "
        f"{len(daemon.events('turn_abandoned'))}; stages {end}"
    )


def test_speech_during_a_reply_stops_it_and_only_the_heard_part_is_kept(
    hands_free: RunningDaemon, phrases: dict[str, AudioChunk]
) -> None:
    daemon, rig = hands_free, hands_free.rig
    for _attempt in range(3):  # the model sometimes answers in two words
        daemon.wait_for(lambda: daemon.send("status")["state"] == "idle", 60, "idle")
        before = len(daemon.events("first_audio"))
        rig.say(phrases["weather"])
        daemon.wait_for(lambda n=before: len(daemon.events("first_audio")) > n, 60, "the reply")
        # Past dialogue.resume_ms (2 s) since the user stopped, which the reply began at
        # least 0.4 s after: speaking now interrupts it instead of going on with the question.
        time.sleep(1.7)
        if daemon.send("status")["state"] == "speaking":
            break
    else:
        pytest.fail("three replies in a row were too short to interrupt")
    onset = rig.say(phrases["stop"]) - phrases["stop"].duration_s
    stopped = daemon.wait_for(lambda: daemon.events("interrupted"), 30, "the interruption")[-1]
    reaction_ms = (daemon.clock_of(stopped) - onset) * 1000
    reply = daemon.wait_for(
        lambda: [r for r in daemon.events("reply") if r["interrupted"]], 30, "the cut reply"
    )[-1]
    assert reply["text"], "something was heard before the interruption"
    assert 0 < reaction_ms < 2000
    print(
        f"\nbarge-in: playback stopped {reaction_ms:.0f} ms after the speech began; "
        f"heard {len(reply['text'])} characters of the reply"
    )


def test_the_microphone_can_vanish_and_come_back(
    hands_free: RunningDaemon, phrases: dict[str, AudioChunk]
) -> None:
    daemon, rig = hands_free, hands_free.rig
    daemon.wait_for(lambda: daemon.send("status")["state"] == "idle", 60, "idle")
    rig.unload_mic()
    try:
        time.sleep(4.0)  # longer than audio.stall_s
        assert daemon.send("status")["state"] == "idle"
    finally:
        rig.load_mic()
    time.sleep(1.0)
    count = len(daemon.events("transcript"))
    rig.say(phrases["hello"])
    # "Hello there." may be transcribed alone first, in the pause, and dropped as it goes on.
    daemon.wait_for(
        lambda: any(
            "how are you" in event["text"].lower() for event in daemon.events("transcript")[count:]
        ),
        60,
        "hearing again",
    )


def test_push_to_talk_hold_and_toggle_and_mute(
    rig: PulseRig, tmp_path: Path, phrases: dict[str, AudioChunk]
) -> None:
    daemon = start(rig, tmp_path, VOICE_COMPANION_AUDIO_MODE="push_to_talk")
    try:
        # Without a press nothing is heard.
        rig.say(phrases["hello"])
        time.sleep(phrases["hello"].duration_s + 1.5)
        assert not daemon.events("transcript")
        # Hold: press ... release is one utterance.
        daemon.send("ptt", action="press")
        time.sleep(rig.say(phrases["hello"]) - time.monotonic() + 0.3)
        daemon.send("ptt", action="release")
        daemon.wait_for(lambda: daemon.events("transcript"), 60, "the held utterance")
        assert "how are you" in daemon.events("transcript")[-1]["text"].lower()
        daemon.wait_for(lambda: daemon.send("status")["state"] == "idle", 60, "idle")
        # Toggle twice.
        assert daemon.send("ptt", action="toggle")["pressed"] is True
        time.sleep(rig.say(phrases["weather"]) - time.monotonic() + 0.3)
        assert daemon.send("ptt", action="toggle")["pressed"] is False
        daemon.wait_for(lambda: len(daemon.events("transcript")) >= 2, 60, "the toggled one")
        assert "weather" in daemon.events("transcript")[-1]["text"].lower()
        daemon.wait_for(lambda: daemon.send("status")["state"] == "idle", 60, "idle")
        # Muted: not one frame reaches speech detection, a press does nothing.
        daemon.send("mute")
        heard = daemon.send("status")["frames_heard"]
        daemon.send("ptt", action="press")
        time.sleep(rig.say(phrases["hello"]) - time.monotonic() + 0.5)
        daemon.send("ptt", action="release")
        time.sleep(1.0)
        status = daemon.send("status")
        assert status["mode"] == "muted"
        assert status["frames_heard"] == heard
        assert len(daemon.events("transcript")) == 2
        assert daemon.send("unmute")["mode"] == "push_to_talk"
        # `say` speaks now; `stop` silences it.
        spoken = len(daemon.events("first_audio"))
        daemon.send("say", text="This is a test of speaking on request. " * 6)
        daemon.wait_for(lambda: len(daemon.events("first_audio")) > spoken, 30, "speaking")
        time.sleep(1.5)
        daemon.send("stop")
        said = daemon.wait_for(lambda: daemon.events("said"), 30, "the announcement")[-1]
        assert said["text"].startswith("This is a test")
        assert len(said["text"]) < len("This is a test of speaking on request. " * 6)
    finally:
        assert daemon.stop() == 0


def test_ready_watchdog_and_sigterm(rig: PulseRig, tmp_path: Path) -> None:
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(0.2)
    messages: list[tuple[float, str]] = []

    def drain(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                messages.append((time.monotonic(), listener.recv(4096).decode()))

    daemon = start(rig, tmp_path, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="2000000")
    try:
        drain(3.0)
        assert any("READY=1" in m for _, m in messages)
        assert any("WATCHDOG=1" in m for _, m in messages), "no watchdog"
        # Without audio the watchdog is still fed (tests/service/test_watchdog.py).
        rig.pause_feed()  # the microphone delivers nothing
        try:
            drain(2.0)
            messages.clear()
            drain(3.0)
            assert any("WATCHDOG=1" in m for _, m in messages), "no watchdog without audio"
        finally:
            rig.resume_feed()
        daemon.wait_for(
            lambda: "listening" in daemon.send("status")["microphone"], 60, "the microphone again"
        )
        sent = time.monotonic()
        daemon.process.terminate()
        code = daemon.process.wait(5)
        assert code == 0
        print(
            f"\nSIGTERM to exit: {time.monotonic() - sent:.2f} s; ready after "
            f"{daemon.ready_s:.2f} s"
        )
        drain(0.5)
        assert any("STOPPING=1" in m for _, m in messages)
    finally:
        daemon.stop()
        listener.close()
