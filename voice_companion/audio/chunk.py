"""The one audio value passed between modules: mono int16 samples with their rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]
"""Mono signed 16-bit samples."""

STT_RATE_HZ = 16_000
"""The rate of the listening side (VAD and speech-to-text)."""


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Mono int16 audio and the rate it was sampled at.

    ``samples`` is never written to after construction; slicing returns a new chunk.
    """

    samples: PCM
    rate_hz: int

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError("AudioChunk needs a 1-D int16 array")
        if self.rate_hz <= 0:
            raise ValueError("AudioChunk needs a positive rate_hz")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate_hz

    def __len__(self) -> int:
        return len(self.samples)

    def to_float32(self) -> npt.NDArray[np.float32]:
        """Samples scaled to [-1, 1), as whisper and Silero want them."""
        return self.samples.astype(np.float32) / 32768.0

    def peak(self) -> int:
        """Largest absolute sample value (0 for an empty chunk)."""
        if len(self.samples) == 0:
            return 0
        return int(np.max(np.abs(self.samples.astype(np.int32))))

    def rms(self) -> float:
        """Root-mean-square level in int16 units (0.0 for an empty chunk)."""
        if len(self.samples) == 0:
            return 0.0
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2)))

    @classmethod
    def silence(cls, duration_s: float, rate_hz: int) -> AudioChunk:
        return cls(np.zeros(round(duration_s * rate_hz), dtype=np.int16), rate_hz)

    @classmethod
    def from_float(cls, samples: npt.NDArray[np.floating], rate_hz: int) -> AudioChunk:
        """Build from float samples in [-1, 1]; out-of-range values are clipped."""
        scaled = np.clip(np.asarray(samples, dtype=np.float64) * 32767.0, -32768, 32767)
        return cls(scaled.astype(np.int16), rate_hz)

    @classmethod
    def concat(cls, chunks: list[AudioChunk], rate_hz: int) -> AudioChunk:
        """Join chunks that all have ``rate_hz``."""
        if any(c.rate_hz != rate_hz for c in chunks):
            raise ValueError("cannot concatenate chunks of different rates")
        if not chunks:
            return cls(np.zeros(0, dtype=np.int16), rate_hz)
        return cls(np.concatenate([c.samples for c in chunks]), rate_hz)
