"""Listening modes and the echo guard, on real speech with the real VAD."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shipped_config
from voice_companion.app import FRAME_MS, build_listener
from voice_companion.audio.chunk import AudioChunk
from voice_companion.config import ListeningMode
from voice_companion.engines.decode import read_audio
from voice_companion.events import SpeechStarted, UtteranceEnded
from voice_companion.stages.listen import EchoGuard

RATE = 16_000
FRAME = RATE * FRAME_MS // 1000


def frames(chunk: AudioChunk) -> list[AudioChunk]:
    return [
        AudioChunk(chunk.samples[i : i + FRAME], RATE)
        for i in range(0, len(chunk) - FRAME + 1, FRAME)
    ]


def scaled(chunk: AudioChunk, gain: float) -> AudioChunk:
    return AudioChunk((chunk.samples.astype(np.float64) * gain).astype(np.int16), RATE)


def mixed(a: AudioChunk, b: AudioChunk) -> AudioChunk:
    n = min(len(a), len(b))
    total = a.samples[:n].astype(np.int32) + b.samples[:n].astype(np.int32)
    return AudioChunk(np.clip(total, -32768, 32767).astype(np.int16), RATE)


@pytest.fixture(scope="module")
def played() -> AudioChunk:
    """What the companion says through the speaker."""
    from voice_companion.engines import bundled
    from voice_companion.engines.resample import resample
    from voice_companion.engines.tts import PiperSynthesizer

    voice = PiperSynthesizer(bundled.piper_voice_path())
    speech = voice.synthesize(
        "Let me tell you a long story about the sea, the wind, and a lighthouse keeper "
        "who counted every ship that passed his window."
    )
    return resample(speech, RATE)


class Playback:
    """The speaker's level, frame by frame, as the speaker sink reports it."""

    def __init__(self, played: AudioChunk) -> None:
        self.levels = [f.rms() for f in frames(played)]
        self.index = -1

    def level(self) -> float:
        self.index += 1
        return self.levels[min(self.index, len(self.levels) - 1)]


def started(events: Sequence[object]) -> bool:
    return any(isinstance(e, SpeechStarted) for e in events)


@pytest.mark.models
def test_its_own_voice_does_not_interrupt_it_but_the_user_does(
    played: AudioChunk, jfk_path: Path, tmp_path: Path
) -> None:
    config = shipped_config(tmp_path)
    echo = scaled(played, 0.1)  # the microphone hears the speaker 20 dB down
    # Without the guard, the echo alone is taken for the user: the guard is needed.
    unguarded = build_listener(config, playing=lambda: True)
    assert started([e for f in frames(echo) for e in unguarded.push(f)])
    guard = EchoGuard(10.0, Playback(played).level)
    guarded = build_listener(config, guard=guard, playing=lambda: True)
    assert not started([e for f in frames(echo) for e in guarded.push(f)])
    assert guard.coupling == pytest.approx(0.1, rel=0.2)
    # The user talking over the reply is clearly louder than the echo: barge-in.
    guard = EchoGuard(10.0, Playback(played).level)
    guarded = build_listener(config, guard=guard, playing=lambda: True)
    over = mixed(read_audio(jfk_path), echo)
    assert started([e for f in frames(over) for e in guarded.push(f)])


@pytest.mark.models
def test_talking_over_the_start_of_a_reply_is_heard_and_not_learned_as_echo(
    played: AudioChunk, jfk_path: Path, tmp_path: Path
) -> None:
    config = shipped_config(tmp_path)
    echo = scaled(played, 0.1)
    playback = Playback(played)
    guard = EchoGuard(10.0, playback.level)
    playing = [False]
    listener = build_listener(config, guard=guard, playing=lambda: playing[0])
    silence = AudioChunk(np.zeros(RATE * 2, dtype=np.int16), RATE)
    jfk = read_audio(jfk_path)
    user = AudioChunk(jfk.samples[6 * FRAME :], RATE)  # speaks 150 ms into the reply

    def reply(microphone: AudioChunk) -> list[object]:
        """One reply played while the microphone hears ``microphone``, then 2 s of quiet."""
        playback.index = -1
        playing[0] = True
        events: list[object] = [e for f in frames(microphone) for e in listener.push(f)]
        playing[0] = False
        return events + [e for f in frames(silence) for e in listener.push(f)]

    assert not started(reply(echo))
    assert guard.coupling == pytest.approx(0.1, rel=0.2)
    # The user talks over the start of the next reply: heard, though the coupling is being
    # measured again (with the user's voice in it) ...
    assert started(reply(mixed(user, echo)))
    # ... and that measurement does not make the user's voice into "echo" from now on.
    assert guard.coupling == pytest.approx(0.1, rel=0.2)
    assert not started(reply(echo))
    assert started(reply(mixed(user, echo)))


@pytest.mark.models
def test_push_to_talk_and_mute(jfk_path: Path, tmp_path: Path) -> None:
    config = shipped_config(tmp_path)
    speech = frames(read_audio(jfk_path))
    listener = build_listener(config, mode=ListeningMode.PUSH_TO_TALK)
    assert not [e for f in speech[:100] for e in listener.push(f)]  # no press, nothing
    assert started(listener.press())
    for f in speech[100:200]:
        assert not listener.push(f)
    (ended,) = listener.release()
    assert isinstance(ended, UtteranceEnded)
    # the pre-roll before the press is kept: people start talking as they press
    assert ended.audio.duration_s == pytest.approx(
        100 * 0.03 + config.vad.preroll_ms / 1000, abs=0.031
    )
    muted = build_listener(config, mode=ListeningMode.MUTED)
    assert muted.press() == []
    assert not [e for f in speech for e in muted.push(f)]
    assert muted.frames_heard == 0
    assert muted.set_mode(ListeningMode.HANDS_FREE) == []
    events = [e for f in speech for e in muted.push(f)] + muted.finish()
    assert any(isinstance(e, UtteranceEnded) for e in events)


@pytest.mark.models
def test_the_first_reply_backs_off_for_a_user_who_was_already_talking(
    played: AudioChunk, jfk_path: Path, tmp_path: Path
) -> None:
    # The first reply after a start has no coupling measured yet, so its first 300 ms are
    # not listened to; but speech that began before it did is no echo of it.
    config = shipped_config(tmp_path)
    echo = scaled(played, 0.1)
    jfk = read_audio(jfk_path)
    plain = build_listener(config)
    confirmed = next(i for i, f in enumerate(frames(jfk)) if started(plain.push(f)))
    before = confirmed  # the user has begun, not yet been confirmed, when the reply begins
    guard = EchoGuard(10.0, Playback(played).level)
    playing = [False]
    listener = build_listener(config, guard=guard, playing=lambda: playing[0])
    events = [e for f in frames(jfk)[:before] for e in listener.push(f)]
    assert not started(events)  # not confirmed as speech yet
    playing[0] = True
    rest = AudioChunk(jfk.samples[before * FRAME :], RATE)
    events = [e for f in frames(mixed(rest, echo))[:20] for e in listener.push(f)]
    assert started(events)
    assert guard.coupling == 0.0  # nothing measured on the user's voice
    # The same user starting 150 ms after the reply began is not heard by a guard that has
    # measured nothing yet (a limit of measuring echo by level).
    guard = EchoGuard(10.0, Playback(played).level)
    playing[0] = True
    listener = build_listener(config, guard=guard, playing=lambda: playing[0])
    late = mixed(AudioChunk(jfk.samples[(confirmed - 7) * FRAME :], RATE), echo)  # voiced at 5
    assert not started([e for f in frames(late)[:10] for e in listener.push(f)])
    # After a restart the guard starts from the last run's measurements (audio/echo.py).
    saved: list[Sequence[float]] = []
    guard = EchoGuard(10.0, Playback(played).level, measured=[0.1], on_measured=saved.append)
    listener = build_listener(config, guard=guard, playing=lambda: playing[0])
    assert started([e for f in frames(late)[:10] for e in listener.push(f)])
    assert len(saved) == 1 and saved[0][0] == 0.1 and len(saved[0]) == 2


@pytest.mark.models
def test_the_echo_left_between_two_sentences_is_not_taken_for_the_user(
    played: AudioChunk, tmp_path: Path
) -> None:
    config = shipped_config(tmp_path)
    echo = frames(scaled(played, 0.1))
    playback = Playback(played)
    guard = EchoGuard(10.0, playback.level)
    playing = [True]
    listener = build_listener(config, guard=guard, playing=lambda: playing[0])
    events = [e for f in echo[:40] for e in listener.push(f)]
    playing[0] = False  # the first sentence has been handed over; its end still plays
    events += [e for f in echo[40:43] for e in listener.push(f)]
    playback.index += 3
    playing[0] = True
    events += [e for f in echo[43:] for e in listener.push(f)]
    assert not started(events)
