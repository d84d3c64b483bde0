"""A real audio server without hardware: PulseAudio with a pipe-source as the microphone and
a null sink as the speaker (DESIGN.md §5). Audio written to the fifo is what the microphone
hears; the sink's monitor records what the companion said."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines import Transcriber

RATE = 16_000
BLOCK_S = 0.02


class PulseRig:
    def __init__(self) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="vc-pulse-"))
        self.runtime.chmod(0o700)
        self.fifo = self.runtime / "mic.fifo"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime)}
        self.env.pop("PULSE_SERVER", None)
        self._queue: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._feeding = threading.Event()
        self.fed_until: float = 0.0
        """Monotonic time at which the last queued sample was written."""
        self._feeder: threading.Thread | None = None
        self.mic_module: str | None = None

    def pactl(self, *args: str) -> str:
        return subprocess.run(
            ["pactl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    def start(self) -> None:
        subprocess.run(
            [
                "pulseaudio",
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-native-protocol-unix",
                "--load=module-null-sink sink_name=spk",
            ],
            env=self.env,
            check=True,
            timeout=30,
            capture_output=True,
        )
        self.load_mic()
        self.pactl("set-default-sink", "spk")
        self._feeder = threading.Thread(target=self._feed, name="pulse-feeder", daemon=True)
        self._feeder.start()

    def load_mic(self) -> None:
        self.mic_module = self.pactl(
            "load-module",
            "module-pipe-source",
            "source_name=mic",
            f"file={self.fifo}",
            "format=s16le",
            f"rate={RATE}",
            "channels=1",
        )
        self.pactl("set-default-source", "mic")
        self._feeding.set()

    def unload_mic(self) -> None:
        self._feeding.clear()
        time.sleep(0.1)
        if self.mic_module:
            self.pactl("unload-module", self.mic_module)
            self.mic_module = None

    def pause_feed(self) -> None:
        """Stop writing to the fifo: the microphone delivers no frames at all."""
        self._feeding.clear()

    def resume_feed(self) -> None:
        self._feeding.set()

    def say(self, chunk: AudioChunk) -> float:
        """Queue speech for the microphone; returns the monotonic time its last sample will
        have been written (the end of the user's speech)."""
        assert chunk.rate_hz == RATE
        with self._lock:
            pending = sum(len(a) for a in self._queue) / RATE
            self._queue.append(chunk.samples.copy())
        return time.monotonic() + pending + chunk.duration_s

    def idle(self) -> bool:
        with self._lock:
            return not self._queue

    def _feed(self) -> None:
        # Write 20 ms blocks at real-time pace; silence when nothing is queued, because the
        # pipe source produces no frames while nobody writes.
        block = int(RATE * BLOCK_S)
        fd: int | None = None
        next_t = time.monotonic()
        while not self._stop.is_set():
            if not self._feeding.is_set():
                if fd is not None:
                    os.close(fd)
                    fd = None
                self._feeding.wait(0.1)
                next_t = time.monotonic()
                continue
            if fd is None:
                try:
                    fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    time.sleep(0.05)
                    continue
                os.set_blocking(fd, True)
            with self._lock:
                if self._queue:
                    samples = self._queue[0][:block]
                    self._queue[0] = self._queue[0][block:]
                    if not len(self._queue[0]):
                        self._queue.popleft()
                else:
                    samples = np.zeros(0, dtype=np.int16)
            if len(samples) < block:
                samples = np.concatenate([samples, np.zeros(block - len(samples), np.int16)])
            try:
                os.write(fd, samples.astype("<i2").tobytes())
            except OSError:
                os.close(fd)
                fd = None
                continue
            next_t += BLOCK_S
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()
        if fd is not None:
            os.close(fd)

    def record(self, path: Path) -> subprocess.Popen[bytes]:
        """Record the speaker (the null sink's monitor) as raw 16 kHz mono s16le."""
        return subprocess.Popen(
            [
                "parec",
                "-d",
                "spk.monitor",
                "--format=s16le",
                f"--rate={RATE}",
                "--channels=1",
                "--latency-msec=20",
                str(path),
            ],
            env=self.env,
        )

    def stop(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(5)
        subprocess.run(
            ["pulseaudio", "--kill"], env=self.env, timeout=10, check=False, capture_output=True
        )
        shutil.rmtree(self.runtime, ignore_errors=True)


def read_raw(path: Path) -> AudioChunk:
    data = np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16)
    return AudioChunk(data, RATE)


def heard_text(transcriber: Transcriber, audio: AudioChunk, piece_s: float = 10.0) -> str:
    """What a recording of the speaker says, transcribed in pieces: whisper tiny, given one
    long window (a 25 s reply), often stops after its first sentence or two."""
    step = int(piece_s * audio.rate_hz)
    pieces = (
        AudioChunk(audio.samples[i : i + step], audio.rate_hz) for i in range(0, len(audio), step)
    )
    return " ".join(transcriber.transcribe(piece).text for piece in pieces)
