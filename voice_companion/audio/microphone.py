"""The live microphone as an endless stream of 16 kHz frames that survives the device.

If the device cannot be opened, vanishes, or delivers nothing for ``stall_s``, the stream is
closed and opened again after a wait that doubles up to ``reopen_max_s``; meanwhile
``status`` says what it is waiting for, and the daemon stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import numpy as np

from voice_companion.audio.chunk import PCM, STT_RATE_HZ, AudioChunk
from voice_companion.errors import AudioDeviceError

log = logging.getLogger(__name__)


class Capture(Protocol):
    rate_hz: int

    def close(self) -> None: ...


OpenCapture = Callable[[Callable[[PCM], None]], Capture]
"""Opens the device, delivering each captured block to the callback (any thread)."""


def open_device(device_name: str) -> OpenCapture:
    def open_capture(deliver: Callable[[PCM], None]) -> Capture:
        from voice_companion.engines.audio_device import CaptureStream, find_device

        return CaptureStream(find_device(device_name, "input"), deliver)

    return open_capture


class Microphone:
    def __init__(
        self,
        open_capture: OpenCapture,
        frame_ms: int = 30,
        stall_s: float = 3.0,
        reopen_max_s: float = 30.0,
        name: str = "microphone",
    ) -> None:
        self._open = open_capture
        self._frame_samples = STT_RATE_HZ * frame_ms // 1000
        self._stall_s = stall_s
        self._reopen_max_s = reopen_max_s
        self._name = name
        self.status = f"opening {name}"
        self.frames_seen = 0
        self.last_frame_clock_s = 0.0
        self.reopens = 0

    async def frames(self) -> AsyncIterator[AudioChunk]:
        """16 kHz mono frames, forever; reopens the device as needed."""
        from voice_companion.engines.resample import StreamResampler

        loop = asyncio.get_running_loop()
        wait_s = 1.0
        while True:
            blocks: asyncio.Queue[PCM] = asyncio.Queue(maxsize=500)

            def deliver(block: PCM, queue: asyncio.Queue[PCM] = blocks) -> None:
                # Runs on PortAudio's thread, which may outlive the loop by a block or two.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_put_latest, queue, block)

            try:
                capture = await asyncio.to_thread(self._open, deliver)
            except AudioDeviceError as exc:
                self.status = f"waiting for the {self._name}: {exc}; retrying in {wait_s:g} s"
                log.warning("%s", self.status)
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, self._reopen_max_s)
                self.reopens += 1
                continue
            self.status = f"listening on the {self._name}"
            resampler = StreamResampler(capture.rate_hz, STT_RATE_HZ)
            pending = np.zeros(0, dtype=np.int16)
            try:
                while True:
                    try:
                        # Not wait_for: on 3.11 it can swallow a cancellation that arrives
                        # with a block, and the daemon's shutdown then waits forever.
                        async with asyncio.timeout(self._stall_s):
                            block = await blocks.get()
                    except TimeoutError:
                        self.status = (
                            f"waiting for the {self._name}: no sound for {self._stall_s:g} s; "
                            f"reopening in {wait_s:g} s"
                        )
                        log.warning("%s", self.status)
                        break
                    wait_s = 1.0
                    audio = resampler.process(AudioChunk(block, capture.rate_hz)).samples
                    pending = np.concatenate([pending, audio])
                    size = self._frame_samples
                    whole = len(pending) // size * size
                    for start in range(0, whole, size):
                        self.frames_seen += 1
                        self.last_frame_clock_s = time.monotonic()
                        yield AudioChunk(pending[start : start + size].copy(), STT_RATE_HZ)
                    pending = pending[whole:]
            finally:
                await asyncio.to_thread(capture.close)
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, self._reopen_max_s)
            self.reopens += 1


def _put_latest(queue: asyncio.Queue[PCM], block: PCM) -> None:
    # A stalled consumer must not grow memory without bound: drop the oldest block.
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(block)
