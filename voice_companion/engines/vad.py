"""Speech/non-speech per 30 ms frame: webrtcvad decides, Silero VAD confirms.

webrtcvad is fast but calls many loud noises speech; Silero (a small neural net) rejects
those. Silero runs on every frame, speech or not, because its recurrent state must see the
whole stream to stay meaningful.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.errors import ModelNotFoundError, VadError

FRAME_MS = 30
FRAME_SAMPLES = STT_RATE_HZ * FRAME_MS // 1000
"""480 samples: the frame size both the stages and webrtcvad use."""

_WINDOW_SAMPLES = 512
"""Silero v6 at 16 kHz consumes 512-sample windows..."""
_CONTEXT_SAMPLES = 64
"""...each preceded by the last 64 samples of the window before it."""
_STATE_SHAPE = (1, 1, 128)
_QUIET_PROBABILITY = 0.2
_QUIET_WINDOWS_BEFORE_RESET = 94
"""About 3 s. Silero's recurrent state drifts during long quiet (measured: after a minute of
digital silence the peak probability on jfk.flac fell from 0.90 to 0.62 and the first phrase
was missed), so it starts afresh after this many quiet windows in a row."""


class SpeechFrameClassifier:
    """Says whether a 480-sample 16 kHz frame holds speech (satisfies ``FrameClassifier``)."""

    frame_ms: int = FRAME_MS

    def __init__(
        self, aggressiveness: int, silero_threshold: float, silero_path: Path | None = None
    ) -> None:
        if not 0 <= aggressiveness <= 3:
            raise VadError(f"webrtcvad aggressiveness must be 0 to 3, got {aggressiveness}")
        if not 0.0 <= silero_threshold <= 1.0:
            raise VadError(f"Silero threshold must be 0.0 to 1.0, got {silero_threshold}")
        import webrtcvad

        from voice_companion.engines import bundled
        from voice_companion.engines.onnx import load_session

        path = bundled.silero_vad_path() if silero_path is None else silero_path
        if not path.is_file():
            raise ModelNotFoundError(f"Silero VAD model not found: {path}")
        self.silero_threshold = silero_threshold
        self._webrtc: Any = webrtcvad.Vad(aggressiveness)
        try:
            # One thread: a frame is tiny, and the cores belong to whisper and the LLM.
            self._session: Any = load_session(path, threads=1)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise VadError(f"cannot load the Silero VAD model {path}: {exc}") from exc
        self.last_probability: float = 0.0
        """Silero's speech probability for the latest complete 512-sample window."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the recurrent state and buffered samples (start of a new stream)."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.last_probability = 0.0
        self._quiet_windows = 0

    def is_speech(self, frame: AudioChunk) -> bool:
        """True when webrtcvad hears speech and Silero's latest probability agrees."""
        if frame.rate_hz != STT_RATE_HZ or len(frame) != FRAME_SAMPLES:
            raise VadError(
                f"VAD frames must be {FRAME_SAMPLES} samples at {STT_RATE_HZ} Hz, "
                f"got {len(frame)} samples at {frame.rate_hz} Hz"
            )
        self._feed_silero(frame.to_float32())
        try:
            webrtc_speech = bool(self._webrtc.is_speech(frame.samples.tobytes(), STT_RATE_HZ))
        except Exception as exc:  # webrtcvad raises a bare Error type
            raise VadError(f"webrtcvad failed on a frame: {exc}") from exc
        return webrtc_speech and self.last_probability >= self.silero_threshold

    def _feed_silero(self, samples: npt.NDArray[np.float32]) -> None:
        # 480-sample frames do not line up with 512-sample windows: buffer the remainder.
        pending = np.concatenate([self._pending, samples])
        start = 0
        while len(pending) - start >= _WINDOW_SAMPLES:
            window = pending[start : start + _WINDOW_SAMPLES]
            self.last_probability = self._run_window(window)
            start += _WINDOW_SAMPLES
            if self.last_probability < _QUIET_PROBABILITY:
                self._quiet_windows += 1
                if self._quiet_windows >= _QUIET_WINDOWS_BEFORE_RESET:
                    self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
                    self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
                    self._quiet_windows = 0
            else:
                self._quiet_windows = 0
        self._pending = pending[start:].copy()

    def _run_window(self, window: npt.NDArray[np.float32]) -> float:
        model_input = np.concatenate([self._context, window]).reshape(1, -1)
        try:
            probs, self._h, self._c = self._session.run(
                None, {"input": model_input, "h": self._h, "c": self._c}
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise VadError(f"Silero VAD failed on a frame: {exc}") from exc
        self._context = window[-_CONTEXT_SAMPLES:].copy()
        return float(np.asarray(probs).reshape(-1)[0])
