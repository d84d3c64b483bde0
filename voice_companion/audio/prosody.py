"""How an utterance was spoken: speaking rate, loudness and pitch, from the audio and its words.

numpy only, a few milliseconds for a few seconds of speech. The audio is cut into 20 ms
frames (10 ms hop); a frame is speech when its level is well above the utterance's own noise
floor and not far below its loudest frame, so a gain change moves the loudness figure by the
gain and nothing else.

- ``rate_sps``: syllables of the transcript per second of speaking time (speech frames, plus
  the gaps between them up to ``BRIDGE_S`` each: the breaks inside and between words count,
  the rest of a longer pause does not).
- ``loudness_dbfs``: RMS level over the speech frames, dB relative to int16 full scale.
- ``pitch_hz``: median fundamental frequency over the clearly periodic speech frames, by
  normalised autocorrelation in 60-400 Hz (40 ms windows); None when too few frames are
  periodic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from voice_companion.audio.chunk import AudioChunk

FRAME_S: Final = 0.02
HOP_S: Final = 0.01
PITCH_WINDOW_S: Final = 0.04
MIN_PITCH_HZ: Final = 60.0
MAX_PITCH_HZ: Final = 400.0
BRIDGE_S: Final = 0.25
"""Of each gap between speech frames, up to this much counts as speaking time."""
FLOOR_MARGIN_DB: Final = 12.0
"""A speech frame is at least this far above the noise floor (the quietest tenth of frames)."""
RANGE_DB: Final = 35.0
"""... and no more than this far below the loudest frame."""
PERIODIC: Final = 0.6
"""A frame has a pitch when its normalised autocorrelation peak reaches this."""
MIN_PITCHED_FRAMES: Final = 5
MIN_SPEECH_S: Final = 0.2
FULL_SCALE: Final = 32768.0


@dataclass(frozen=True)
class Prosody:
    """How one utterance was spoken; each figure is None when it cannot be measured."""

    speech_s: float
    """Speaking time, seconds (speech frames and the short gaps between them)."""
    rate_sps: float | None
    """Syllables per second of speaking time."""
    loudness_dbfs: float | None
    pitch_hz: float | None


def measure(audio: AudioChunk, transcript: str) -> Prosody:
    """The prosody of ``audio``, whose words are ``transcript``."""
    rate_hz = audio.rate_hz
    x = audio.samples.astype(np.float64) / FULL_SCALE
    frame, hop = round(FRAME_S * rate_hz), round(HOP_S * rate_hz)
    if len(x) < frame:
        return Prosody(0.0, None, None, None)
    frames = _frames(x, frame, hop)
    power = np.mean(frames * frames, axis=1)
    level_db = 10 * np.log10(power + 1e-12)
    floor_db = float(np.percentile(level_db, 10))
    threshold_db = max(floor_db + FLOOR_MARGIN_DB, float(level_db.max()) - RANGE_DB)
    speech = level_db >= threshold_db
    speech_s = _speaking_time_s(speech, hop / rate_hz, frame / rate_hz)
    if not speech.any() or speech_s < MIN_SPEECH_S:
        return Prosody(speech_s, None, None, None)
    loudness_dbfs = 10 * math.log10(float(np.mean(power[speech])) + 1e-12)
    syllables = count_syllables(transcript)
    rate_sps = syllables / speech_s if syllables else None
    return Prosody(
        speech_s=round(speech_s, 3),
        rate_sps=None if rate_sps is None else round(rate_sps, 3),
        loudness_dbfs=round(loudness_dbfs, 2),
        pitch_hz=_median_pitch_hz(x, speech, hop, rate_hz),
    )


def count_syllables(text: str) -> int:
    """English syllables, by vowel groups per word (a silent final "e" dropped): good to a
    syllable or so per sentence, which is all a rate needs. Digits count one per digit."""
    total = 0
    for word in re.findall(r"[a-z']+|\d", text.lower()):
        if word.isdigit():
            total += 1
            continue
        word = word.replace("'", "")
        groups = len(re.findall(r"[aeiouy]+", word))
        if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and groups > 1:
            groups -= 1
        total += max(groups, 1) if word else 0
    return total


def _frames(x: npt.NDArray[np.float64], size: int, hop: int) -> npt.NDArray[np.float64]:
    count = 1 + (len(x) - size) // hop
    view = np.lib.stride_tricks.sliding_window_view(x, size)[::hop]
    return view[:count]


def _speaking_time_s(speech: npt.NDArray[np.bool_], hop_s: float, frame_s: float) -> float:
    where = np.flatnonzero(speech)
    if len(where) == 0:
        return 0.0
    gaps = np.diff(where) - 1
    bridge = round(BRIDGE_S / hop_s)
    # Speech frames, plus the gaps between them up to ``BRIDGE_S`` each (the rest of a long
    # gap is a pause, not speaking), plus one frame's length at the end.
    covered = len(where) + int(np.minimum(gaps, bridge).sum())
    return covered * hop_s + (frame_s - hop_s)


def _median_pitch_hz(
    x: npt.NDArray[np.float64], speech: npt.NDArray[np.bool_], hop: int, rate_hz: int
) -> float | None:
    # Voice pitch lies far below 2 kHz: halve the rate (after a low-pass), and look at
    # every other speech frame (20 ms apart), to spend a quarter of the work.
    factor = 2 if rate_hz >= 16_000 else 1
    if factor > 1:
        x = np.convolve(x, _HALF_BAND, mode="same")[::factor]
        rate_hz //= factor
        hop //= factor
    window = round(PITCH_WINDOW_S * rate_hz)
    starts = np.flatnonzero(speech)[::2] * hop
    starts = starts[starts + window <= len(x)]
    if len(starts) < MIN_PITCHED_FRAMES:
        return None
    frames = x[starts[:, None] + np.arange(window)[None, :]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    taper = np.hanning(window)
    size = 1 << (2 * window - 1).bit_length()
    spectrum = np.fft.rfft(frames * taper[None, :], size, axis=1)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, size, axis=1)[:, :window]
    # Normalised by the taper's own autocorrelation, so longer lags are not penalised.
    tacf = np.fft.irfft(np.abs(np.fft.rfft(taper, size)) ** 2, size)[:window]
    acf = acf / np.maximum(tacf[None, :], 1e-9 * tacf[0])
    lo, hi = int(rate_hz / MAX_PITCH_HZ), min(int(rate_hz / MIN_PITCH_HZ), window - 2)
    norm = acf[:, lo - 1 : hi + 2] / np.maximum(acf[:, :1], 1e-12)
    inner = norm[:, 1:-1]
    peak = inner.max(axis=1)
    # The shortest lag nearly as strong as the best: multiples of the period score as high.
    best = np.argmax(inner >= 0.9 * peak[:, None], axis=1)
    periodic = peak >= PERIODIC
    if int(periodic.sum()) < MIN_PITCHED_FRAMES:
        return None
    rows, at = np.flatnonzero(periodic), best[periodic] + 1
    a, b, c = norm[rows, at - 1], norm[rows, at], norm[rows, at + 1]
    denom = a - 2 * b + c
    safe = np.where(denom == 0, 1.0, denom)
    offset = np.where(denom == 0, 0.0, np.clip(0.5 * (a - c) / safe, -0.5, 0.5))
    hz = rate_hz / (at - 1 + lo + offset)
    return round(float(np.median(hz)), 1)


def _half_band(taps: int = 31) -> npt.NDArray[np.float64]:
    """A windowed-sinc low-pass at a quarter of the rate (before dropping every other sample)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(n / 2) * np.hamming(taps)
    return np.asarray(h / h.sum(), dtype=np.float64)


_HALF_BAND: Final = _half_band()
