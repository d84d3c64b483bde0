"""Text-to-speech with piper (in-process ONNX voice), one sentence per call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voice_companion.audio.chunk import AudioChunk
from voice_companion.errors import ModelNotFoundError, TtsError


class PiperSynthesizer:
    """Speaks text with a piper voice (satisfies ``Synthesizer``).

    ``speaker`` -1 means the voice's default speaker; ``length_scale`` above 1 speaks slower;
    ``threads`` bounds onnxruntime's threads (0: its own default, one per core).
    ``noise_scale`` (variation in the sound) and ``noise_w_scale`` (variation in the rhythm)
    default to the voice's own values from its ``.onnx.json``; 0 for both makes the same text
    sound the same every time.
    """

    def __init__(
        self,
        voice_path: Path,
        speaker: int = -1,
        length_scale: float = 1.0,
        threads: int = 0,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        if not voice_path.is_file():
            raise ModelNotFoundError(f"tts.voice: no such piper voice file: {voice_path}")
        sidecar = voice_path.with_name(voice_path.name + ".json")
        if not sidecar.is_file():
            raise ModelNotFoundError(
                f"tts.voice: piper needs {sidecar.name} beside {voice_path.name}"
            )
        if length_scale <= 0:
            raise TtsError(f"length_scale must be above 0, got {length_scale}")
        for label, noise in (("noise_scale", noise_scale), ("noise_w_scale", noise_w_scale)):
            if noise is not None and noise < 0:
                raise TtsError(f"{label} must be 0 or more, got {noise}")
        try:
            from piper import SynthesisConfig
        except ImportError as exc:
            raise TtsError(f"piper-tts cannot be imported ({exc}): run `make setup`") from exc
        try:
            self._voice: Any = _load_voice(voice_path, threads)
        except Exception as exc:  # json, onnxruntime and piper raise unrelated types
            raise TtsError(f"cannot load the piper voice {voice_path}: {_first_line(exc)}") from exc
        num_speakers = int(self._voice.config.num_speakers)
        if speaker >= max(num_speakers, 1):
            raise TtsError(
                f"tts.speaker = {speaker}: the voice {voice_path.name} has "
                f"{num_speakers} speaker(s); use -1 for its default"
            )
        self.rate_hz: int = int(self._voice.config.sample_rate)
        self._syn_config: Any = SynthesisConfig(
            speaker_id=None if speaker < 0 else speaker,
            length_scale=length_scale,
            noise_scale=noise_scale,
            noise_w_scale=noise_w_scale,
        )

    def synthesize(self, text: str) -> AudioChunk:
        """Audio for ``text``; empty (not an error) for text with nothing to say."""
        if not text.strip():
            return self._empty()
        try:
            pieces = [
                np.asarray(chunk.audio_int16_array, dtype=np.int16).reshape(-1)
                for chunk in self._voice.synthesize(text, syn_config=self._syn_config)
            ]
        except Exception as exc:  # espeak-ng and onnxruntime raise unrelated types
            raise TtsError(f"text-to-speech failed: {_first_line(exc)}") from exc
        if not pieces:
            return self._empty()
        return AudioChunk(np.concatenate(pieces), self.rate_hz)

    def _empty(self) -> AudioChunk:
        return AudioChunk(np.zeros(0, dtype=np.int16), self.rate_hz)


def _load_voice(voice_path: Path, threads: int) -> Any:
    """``PiperVoice.load`` on our own onnxruntime session (see ``engines.onnx``), with its
    thread count bounded when ``threads`` > 0 so that the voice does not fight the language
    model for the cores it runs beside."""
    import json

    from piper import PiperVoice
    from piper.config import PiperConfig

    from voice_companion.engines.onnx import load_session

    config = json.loads(voice_path.with_name(voice_path.name + ".json").read_text("utf-8"))
    return PiperVoice(
        config=PiperConfig.from_dict(config), session=load_session(voice_path, threads)
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
