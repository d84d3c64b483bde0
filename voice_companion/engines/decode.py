"""Read any audio file PyAV can decode as one mono int16 chunk, or a piece at a time
(``AudioStream``: memory stays bounded however long the recording); write WAV files safely."""

from __future__ import annotations

import logging
import wave
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from voice_companion.atomic import atomic_file
from voice_companion.audio.chunk import PCM, STT_RATE_HZ, AudioChunk
from voice_companion.errors import AudioError, AudioFileError

log = logging.getLogger(__name__)

_MIN_BUFFER_SAMPLES = 1 << 16
_MAX_PREALLOC_S = 3 * 3600
"""Cap on the duration a header may make us reserve up front (streamed WAVs claim ~13 h)."""


def read_audio(path: Path, rate_hz: int = STT_RATE_HZ, max_s: float | None = None) -> AudioChunk:
    """Decode ``path`` (WAV, FLAC, MP3, OGG, ...; any rate and channel count) to mono int16.

    Raises ``AudioFileError`` with one line when the file is missing, not audio or empty, or
    lasts longer than ``max_s`` seconds (decoding stops there: memory stays bounded).
    """
    container = _open(path, rate_hz)
    try:
        samples = _decode_stream(container, rate_hz, path, max_s)
    finally:
        container.close()
    if len(samples) == 0:
        raise AudioFileError(f"{path} holds no audio")
    return AudioChunk(samples, rate_hz)


class AudioStream:
    """A recording decoded to mono int16 at ``rate_hz`` a piece (about ``piece_s``) at a
    time each time it is iterated, so that an hour of audio costs no more memory than a
    minute. Checked when made: ``AudioFileError`` in one line, as ``read_audio`` would say,
    when the file is missing, not audio or holds no audio."""

    def __init__(self, path: Path, rate_hz: int = STT_RATE_HZ, piece_s: float = 10.0) -> None:
        self.path, self.rate_hz = path, rate_hz
        self._piece = max(1, round(piece_s * rate_hz))
        container = _open(path, rate_hz)
        try:
            stream = container.streams.audio[0]
            # How long the file says it is (0 when it does not say): for the log only.
            self.duration_s = _header_duration_s(container, stream)
        finally:
            container.close()
        first = self.pieces()
        try:
            if next(first, None) is None:  # decodes the first piece only
                raise AudioFileError(f"{path} holds no audio")
        finally:
            first.close()

    def __iter__(self) -> Iterator[AudioChunk]:
        return self.pieces()

    def pieces(self) -> Generator[AudioChunk, None, None]:
        """The recording from its start, a piece at a time (the file is open meanwhile)."""
        import av

        path, rate = self.path, self.rate_hz
        container = _open(path, rate)
        pending: list[Any] = []
        held = 0
        decoded = 0
        try:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames, None)
                    pieces = resampler.resample(frame)
                except av.error.FFmpegError as exc:
                    if decoded + held == 0:
                        raise AudioFileError(
                            f"{path} is not an audio file PyAV can decode"
                        ) from exc
                    log.warning("%s: decoding stopped early (%s); using what decoded", path, exc)
                    break
                except (ValueError, OSError) as exc:
                    raise AudioFileError(f"{path} could not be decoded: {exc}") from exc
                for piece in pieces:
                    samples = piece.to_ndarray().reshape(-1)
                    pending.append(samples)
                    held += len(samples)
                if held >= self._piece or (frame is None and held):
                    joined = np.concatenate(pending)
                    pending, held = [], 0
                    decoded += len(joined)
                    yield AudioChunk(joined, rate)
                if frame is None:
                    break
        finally:
            container.close()
        if held:
            yield AudioChunk(np.concatenate(pending), rate)


def _open(path: Path, rate_hz: int) -> Any:
    """The PyAV container of an audio file; ``AudioFileError`` in one line if it is not one."""
    if rate_hz <= 0:
        raise AudioError(f"cannot decode to a rate of {rate_hz} Hz")
    if not path.exists():
        raise AudioFileError(f"no such file: {path}")
    if path.is_dir():
        raise AudioFileError(f"{path} is a directory, not an audio file")
    try:
        if path.stat().st_size == 0:
            raise AudioFileError(f"{path} holds no audio (the file is empty)")
    except OSError as exc:
        raise AudioFileError(f"cannot read {path}: {exc.strerror or exc}") from exc

    import av

    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise AudioFileError(f"{path} is not an audio file PyAV can decode") from exc
    except OSError as exc:
        raise AudioFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not container.streams.audio:
        container.close()
        raise AudioFileError(f"{path} is not an audio file PyAV can decode (no audio stream)")
    return container


def _decode_stream(container: Any, rate_hz: int, path: Path, max_s: float | None) -> PCM:
    import av

    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_hz)
    limit = None if max_s is None else round(max_s * rate_hz)
    # One growing output buffer sized from the container's duration estimate: decoded frames
    # are copied in once, instead of keeping a list of pieces and concatenating (2x memory).
    estimate = _estimated_samples(container, stream, rate_hz)
    buffer = np.empty(estimate if limit is None else min(estimate, limit + 1), dtype=np.int16)
    filled = 0

    def append(frames: list[Any]) -> None:
        nonlocal buffer, filled
        for frame in frames:
            piece = frame.to_ndarray().reshape(-1)
            needed = filled + len(piece)
            if limit is not None and needed > limit:
                assert max_s is not None
                raise AudioFileError(
                    f"{path} is longer than {_duration_text(max_s)}, the longest recording "
                    f"taken here; cut it into parts, for example with sox: "
                    f"sox {path.name} part.wav trim 0 {max_s:g} : newfile : restart"
                )
            if needed > len(buffer):
                grown = np.empty(max(needed, len(buffer) * 3 // 2), dtype=np.int16)
                grown[:filled] = buffer[:filled]
                buffer = grown
            buffer[filled:needed] = piece
            filled = needed

    try:
        for frame in container.decode(stream):
            append(resampler.resample(frame))
        append(resampler.resample(None))  # flush what the resampler still holds
    except av.error.FFmpegError as exc:
        if filled == 0:
            raise AudioFileError(f"{path} is not an audio file PyAV can decode") from exc
        # A damaged tail is common in recordings cut short; keep what decoded.
        log.warning(
            "%s: decoding stopped early (%s); using the first %d samples", path, exc, filled
        )
    except (ValueError, OSError) as exc:
        raise AudioFileError(f"{path} could not be decoded: {exc}") from exc
    # Copy only when the estimate overshot a lot, so a view does not pin a big buffer.
    if filled < len(buffer) // 2:
        return buffer[:filled].copy()
    return buffer[:filled]


def _duration_text(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"


def _header_duration_s(container: Any, stream: Any) -> float:
    """How long the file says it is (0 when it does not say)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # av.time_base: microseconds
    return 0.0


def _estimated_samples(container: Any, stream: Any, rate_hz: int) -> int:
    seconds = min(_header_duration_s(container, stream), _MAX_PREALLOC_S)
    # A little headroom for resampler tails and inexact headers.
    return max(_MIN_BUFFER_SAMPLES, int(seconds * rate_hz * 1.01) + rate_hz // 10)


def write_wav(path: Path, chunk: AudioChunk) -> None:
    """Write ``chunk`` as a 16-bit mono WAV, atomically: readers never see a partial file."""
    try:
        with atomic_file(path) as raw, wave.open(raw, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(chunk.rate_hz)
            # A little-endian array view, not .tobytes(): no second copy of a long recording.
            wav.writeframes(np.ascontiguousarray(chunk.samples, dtype="<i2").data)
    except OSError as exc:
        raise AudioError(f"cannot write {path}: {exc.strerror or exc}") from exc
