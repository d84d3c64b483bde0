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


class WhisperTranscriber:
    """Transcribes one utterance at a time (satisfies ``Transcriber``).

    ``model`` is ``"bundled"`` (tiny.en shipped with the project), a folder holding a
    CTranslate2 whisper model, or a faster-whisper model name already in the local
    Hugging Face cache (nothing is ever downloaded).
    """

    def __init__(
        self, model: str, language: str, beam_size: int, compute_type: str, threads: int
    ) -> None:
        from voice_companion.engines import bundled

        self.language = language
        self.beam_size = beam_size
        # One transcription at a time: a speculative one the session abandoned may still be
        # running in its worker thread, and two at once on the same cores only slow both.
        self._lock = threading.Lock()
        model_ref = self._resolve(model, bundled.whisper_model_dir)
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise SttError(f"faster-whisper cannot be imported ({exc}): run `make setup`") from exc
        try:
            self._model: Any = WhisperModel(
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
            return self._transcribe(audio)

    def _transcribe(self, audio: AudioChunk) -> Transcript:
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
        return Transcript(" ".join(t for t in texts if t), audio.duration_s, self.language)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
