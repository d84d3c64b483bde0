"""Sound cards through PortAudio (sounddevice): list them, capture, play.

Devices are opened at a rate they support (their default rate) with one channel; resampling to
and from 16 kHz happens outside, in-process. Capture and playback run in PortAudio's callback
thread; this module hands blocks over without blocking that thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from voice_companion.audio.chunk import PCM
from voice_companion.errors import AudioDeviceError

log = logging.getLogger(__name__)

Direction = Literal["input", "output"]


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_rate_hz: int
    is_default_input: bool = False
    is_default_output: bool = False


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install libportaudio2 (make setup does)"
        ) from exc
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    sd = _sounddevice()
    try:
        raw = sd.query_devices()
        default_in, default_out = sd.default.device
    except Exception as exc:  # PortAudio errors have their own type
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from exc
    return [
        DeviceInfo(
            index=i,
            name=str(d["name"]),
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_rate_hz=int(d["default_samplerate"]),
            is_default_input=i == default_in,
            is_default_output=i == default_out,
        )
        for i, d in enumerate(raw)
    ]


def find_device(name: str, direction: Direction) -> DeviceInfo:
    """The device whose name contains ``name`` (case-insensitive); "" or "default" means the
    system default. Raises ``AudioDeviceError`` saying what exists."""
    devices = list_devices()
    usable = [
        d
        for d in devices
        if (d.max_input_channels if direction == "input" else d.max_output_channels) > 0
    ]
    if not usable:
        raise AudioDeviceError(
            f"this machine has no audio {direction} device; connect one, or start PulseAudio "
            "or PipeWire (`voice-companion devices` lists what is seen)"
        )
    wanted = name.strip().lower()
    if wanted in ("", "default"):
        for d in usable:
            if d.is_default_input if direction == "input" else d.is_default_output:
                return d
        named = [d for d in usable if d.name.lower() == "default"]
        return named[0] if named else usable[0]
    matches = [d for d in usable if wanted in d.name.lower()]
    if not matches:
        names = ", ".join(repr(d.name) for d in usable)
        raise AudioDeviceError(f"no audio {direction} device matches {name!r}; there are: {names}")
    return matches[0]


def _start(
    stream_type: Any, device: DeviceInfo, block_ms: int, callback: Any, direction: Direction
) -> Any:
    """Open and start a mono int16 PortAudio stream at the device's own rate."""
    rate_hz = device.default_rate_hz
    try:
        stream = stream_type(
            device=device.index,
            samplerate=rate_hz,
            channels=1,
            dtype="int16",
            blocksize=rate_hz * block_ms // 1000,
            callback=callback,
        )
        stream.start()
    except Exception as exc:  # PortAudio errors have their own type
        raise AudioDeviceError(f"cannot open {direction} device {device.name!r}: {exc}") from exc
    return stream


class CaptureStream:
    """Mono int16 capture; every block goes to ``deliver`` (called on PortAudio's thread)."""

    def __init__(self, device: DeviceInfo, deliver: Callable[[PCM], None], block_ms: int = 20):
        sd = _sounddevice()
        self.device = device
        self.rate_hz = device.default_rate_hz

        def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
            deliver(np.array(indata[:, 0], dtype=np.int16))

        self._stream = _start(sd.InputStream, device, block_ms, callback, "input")

    @property
    def active(self) -> bool:
        return bool(self._stream.active)

    def close(self) -> None:
        try:
            self._stream.close(ignore_errors=True)
        except Exception as exc:  # a vanished device may fail to close; nothing to save
            log.debug("closing the input stream failed: %s", exc)


class PlaybackStream:
    """Mono int16 playback from a queue that can be emptied at once (barge-in).

    ``enqueue`` adds samples and a callback run (on PortAudio's thread) when the last of them
    has been handed to the device; ``clear`` drops everything not yet played.
    """

    def __init__(self, device: DeviceInfo, block_ms: int = 20):
        sd = _sounddevice()
        self.device = device
        self.rate_hz = device.default_rate_hz
        self._lock = threading.Lock()
        self._queue: deque[tuple[PCM, Callable[[], None]]] = deque()
        self._offset = 0
        self.level_rms = 0.0
        """RMS of the block most recently played (int16 units), for the echo guard."""

        def callback(outdata: Any, frames: int, time: Any, status: Any) -> None:
            out = outdata[:, 0]
            filled = 0
            done: list[Callable[[], None]] = []
            with self._lock:
                while filled < frames and self._queue:
                    samples, on_done = self._queue[0]
                    take = min(frames - filled, len(samples) - self._offset)
                    out[filled : filled + take] = samples[self._offset : self._offset + take]
                    filled += take
                    self._offset += take
                    if self._offset >= len(samples):
                        self._queue.popleft()
                        self._offset = 0
                        done.append(on_done)
            out[filled:] = 0
            self.level_rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2))) if frames else 0.0
            for on_done in done:
                on_done()

        self._stream = _start(sd.OutputStream, device, block_ms, callback, "output")

    @property
    def playing(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def enqueue(self, samples: PCM, on_done: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append((samples, on_done))

    def clear(self) -> list[Callable[[], None]]:
        """Drop what is queued; returns the callbacks of the dropped chunks."""
        with self._lock:
            dropped = [on_done for _, on_done in self._queue]
            self._queue.clear()
            self._offset = 0
        return dropped

    def close(self) -> None:
        try:
            self._stream.close(ignore_errors=True)
        except Exception as exc:
            log.debug("closing the output stream failed: %s", exc)
