"""Speech-to-text with faster-whisper (CTranslate2), one utterance per call."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.config import BUNDLED
from voice_companion.engines import Transcript
from voice_companion.errors import ModelNotFoundError, SttError

log = logging.getLogger(__name__)

FULL_WINDOW_S = 30.0
"""Whisper's window: every model is trained on 30 s of audio at a time."""
WINDOW_MARGIN_S = 4.0
"""Audio (silence) the encoder sees after an utterance in a shortened window: with less,
whisper tiny.en loses the last words or repeats itself (measured)."""
_FRAMES_PER_S = 100  # whisper's mel spectrogram: one frame every 10 ms


class WhisperTranscriber:
    """Transcribes one utterance at a time (satisfies ``Transcriber``).

    ``model`` is ``"bundled"`` (tiny.en shipped with the project), a folder holding a
    CTranslate2 whisper model, or a faster-whisper model name already in the local
    Hugging Face cache (nothing is ever downloaded).

    Whisper encodes a 30 s window however short the utterance; most of that work is on
    silence. With ``min_window_s`` (0: off) the encoder sees only the utterance and
    ``WINDOW_MARGIN_S`` after it, and never less than ``min_window_s``: on tiny.en, 10 s
    windows make the same number of word errors as 30 s ones on 84 utterances (9.8 % against
    9.6 %), in a third of the time. A shortened window that hears nothing, or whose text
    loops, is transcribed again over the whole window. ``last_window_s`` tells which was used.
    """

    def __init__(
        self,
        model: str,
        language: str,
        beam_size: int,
        compute_type: str,
        threads: int,
        min_window_s: float = 0.0,
    ) -> None:
        from voice_companion.engines import bundled

        self.language = language
        self.beam_size = beam_size
        self.min_window_s = min_window_s
        self.last_window_s = FULL_WINDOW_S
        # One transcription at a time: a speculative one the session abandoned may still be
        # running in its worker thread, and two at once on the same cores only slow both.
        self._lock = threading.Lock()
        model_ref = self._resolve(model, bundled.whisper_model_dir)
        try:
            model_class = _windowed_model_class()
        except ImportError as exc:
            raise SttError(f"faster-whisper cannot be imported ({exc}): run `make setup`") from exc
        try:
            self._model: Any = model_class(
                model_ref,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as exc:  # huggingface_hub and ctranslate2 raise many unrelated types
            folder = Path(model_ref)
            if folder.is_dir() and not (folder / "model.bin").is_file():
                raise ModelNotFoundError(
                    f"stt.model: {folder} is not a faster-whisper model folder (no model.bin)"
                ) from exc
            if folder.is_dir():
                raise SttError(
                    f"cannot load the whisper model in {folder} with compute type "
                    f"{compute_type!r}: {_first_line(exc)}"
                ) from exc
            raise ModelNotFoundError(
                f"stt.model = {model!r}: that model is not in the local cache and nothing is "
                f"downloaded; give a folder holding a faster-whisper model, or 'bundled'"
            ) from exc

    @staticmethod
    def _resolve(model: str, bundled_dir: Any) -> str:
        if model == BUNDLED:
            return str(bundled_dir())
        folder = Path(model).expanduser()
        if folder.is_dir():
            return str(folder)
        if folder.exists():
            raise ModelNotFoundError(
                f"stt.model = {model!r} is a file; give the folder holding model.bin"
            )
        return model

    def transcribe(self, audio: AudioChunk) -> Transcript:
        """The text of one utterance; empty audio gives an empty transcript."""
        if len(audio) == 0:
            return Transcript("", 0.0, self.language)
        if audio.rate_hz != STT_RATE_HZ:
            from voice_companion.engines.resample import resample

            audio = resample(audio, STT_RATE_HZ)
        with self._lock:
            window_s = FULL_WINDOW_S
            if self.min_window_s:
                window_s = min(
                    FULL_WINDOW_S, max(self.min_window_s, audio.duration_s + WINDOW_MARGIN_S)
                )
            transcript = self._transcribe(audio, window_s)
            if window_s < FULL_WINDOW_S and (not transcript.text or _loops(transcript.text)):
                log.debug(
                    "a %.0f s window heard %r: transcribing the whole window",
                    window_s,
                    transcript.text,
                )
                window_s = FULL_WINDOW_S
                transcript = self._transcribe(audio, window_s)
            self.last_window_s = window_s
            return transcript

    def _transcribe(self, audio: AudioChunk, window_s: float) -> Transcript:
        self._model.frames = round(window_s * _FRAMES_PER_S)
        try:
            segments, _info = self._model.transcribe(
                audio.to_float32(),
                language=self.language,
                beam_size=self.beam_size,
                vad_filter=False,  # our own VAD already cut the utterance
                condition_on_previous_text=False,  # each utterance stands alone
                without_timestamps=True,
            )
            # The segments are a lazy generator: the real work happens while iterating,
            # so exhaust it here, inside the worker thread and inside the error wrapper.
            texts = [segment.text.strip() for segment in segments]
        except Exception as exc:  # ctranslate2 raises RuntimeError, tokenizers ValueError, ...
            raise SttError(f"speech-to-text failed: {_first_line(exc)}") from exc
        text = " ".join(t for t in texts if t)
        # Whisper writes dots for hiss and noise: no word was heard.
        if not any(ch.isalnum() for ch in text):
            text = ""
        return Transcript(text, audio.duration_s, self.language)


def _windowed_model_class() -> type:
    """faster-whisper's model, encoding only the first ``frames`` mel frames of a window.

    faster-whisper pads every window to 30 s before encoding; CTranslate2 encodes shorter
    input as well, so the padding is cut here, at the one method the library encodes with."""
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        frames: int | None = None

        def encode(self, features: Any) -> Any:
            if self.frames is not None and features.shape[-1] > self.frames:
                features = features[..., : self.frames]
            return super().encode(features)

    return WindowedWhisperModel


def _loops(text: str) -> bool:
    """Whether ``text`` ends by repeating a phrase of two words or more, as whisper does when
    it loses its place ("Thank you so much. Thank you so much.")."""
    words = "".join(ch.lower() if ch.isalnum() or ch.isspace() else " " for ch in text).split()
    return any(words[-n:] == words[-2 * n : -n] for n in range(2, len(words) // 2 + 1))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
