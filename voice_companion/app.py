"""Composition root: the only place where configuration picks concrete classes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.audio.sinks import WavFileSink
from voice_companion.audio.sources import recording_frames
from voice_companion.config import BUNDLED, Config, threads_for
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.memory import NoMemory
from voice_companion.dialogue.persona import Persona
from voice_companion.engines import ChatModel, FrameClassifier, Synthesizer, Transcriber
from voice_companion.session import Engines, Session
from voice_companion.stages.endpointer import Endpointer
from voice_companion.stages.listen import listen
from voice_companion.stages.think import stream_pieces
from voice_companion.trace import Tracer

log = logging.getLogger(__name__)

PROMPT_BUDGET_SHARE = 0.75
"""Share of the model's context given to the prompt; the rest is left for the reply."""


def build_transcriber(config: Config) -> Transcriber:
    from voice_companion.engines.stt import WhisperTranscriber

    stt = config.stt
    return WhisperTranscriber(
        model=stt.model,
        language=stt.language,
        beam_size=stt.beam_size,
        compute_type=stt.compute_type,
        threads=threads_for(stt.threads),
    )


def build_model(config: Config) -> ChatModel:
    llm = config.llm
    if llm.backend == "openai":
        import os

        from voice_companion.engines.llm_openai import OpenAiChatModel

        return OpenAiChatModel(
            base_url=llm.base_url,
            model=llm.model,
            api_key=os.environ.get(llm.api_key_env) if llm.api_key_env else None,
            connect_timeout_s=llm.connect_timeout_s,
            read_timeout_s=llm.read_timeout_s,
            max_reply_tokens=llm.max_reply_tokens,
            temperature=llm.temperature,
        )
    from voice_companion.engines import bundled
    from voice_companion.engines.llm_llama import LlamaChatModel

    path = bundled.smollm2_gguf_path() if llm.model_path == BUNDLED else Path(llm.model_path)
    return LlamaChatModel(
        model_path=path.expanduser(),
        context_tokens=llm.context_tokens,
        threads=threads_for(llm.threads),
        max_reply_tokens=llm.max_reply_tokens,
        temperature=llm.temperature,
        repeat_penalty=llm.repeat_penalty,
    )


def build_synthesizer(config: Config) -> Synthesizer:
    from voice_companion.engines import bundled
    from voice_companion.engines.tts import PiperSynthesizer

    tts = config.tts
    path = bundled.piper_voice_path() if tts.voice == BUNDLED else Path(tts.voice).expanduser()
    return PiperSynthesizer(path, speaker=tts.speaker, length_scale=tts.length_scale)


def build_classifier(config: Config) -> FrameClassifier:
    from voice_companion.engines.vad import SpeechFrameClassifier

    return SpeechFrameClassifier(config.vad.aggressiveness, config.vad.silero_threshold)


def build_engines(config: Config) -> Engines:
    """Load the three models side by side (each spends most of its load time off the GIL)."""
    log.info("loading the speech, language and voice models")

    async def load() -> Engines:
        transcriber, model, synthesizer = await asyncio.gather(
            asyncio.to_thread(build_transcriber, config),
            asyncio.to_thread(build_model, config),
            asyncio.to_thread(build_synthesizer, config),
        )
        return Engines(transcriber, model, synthesizer)

    return asyncio.run(load())


def build_dialogue(config: Config) -> Dialogue:
    return Dialogue(
        persona=Persona.from_config(config.persona),
        memory=NoMemory(),
        history_turns=config.dialogue.history_turns,
        budget_tokens=int(config.llm.context_tokens * PROMPT_BUDGET_SHARE),
        conversation_id=uuid.uuid4().hex,
    )


def build_endpointer(config: Config, classifier: FrameClassifier) -> Endpointer:
    return Endpointer(config.vad, classifier.frame_ms, STT_RATE_HZ)


@dataclass(frozen=True)
class RunSummary:
    turns: int
    output_s: float


async def run_recording(
    config: Config,
    engines: Engines,
    recording: AudioChunk,
    output: Path,
    realtime: bool,
    trace_path: Path | None,
) -> RunSummary:
    """Answer every utterance of ``recording`` as if a microphone heard it; write the
    companion's voice to ``output``."""
    classifier = build_classifier(config)
    endpointer = build_endpointer(config, classifier)
    tracer = Tracer(trace_path)
    sink = WavFileSink(output)
    session = Session(config, engines, build_dialogue(config), sink, tracer)
    # A microphone keeps hearing the room after the user stops: feed enough silence for the
    # end of speech to be detected the way it would be live.
    tail_s = config.vad.end_silence_ms / 1000 + 0.3
    frames = recording_frames(recording, classifier.frame_ms, realtime, tail_s)
    try:
        tracer.start()
        await session.run(listen(frames, classifier, endpointer))
        await sink.close()
    finally:
        tracer.close()
    return RunSummary(turns=session.turns_done, output_s=sink.audio().duration_s)


async def reply_text(
    config: Config, model: ChatModel, dialogue: Dialogue, text: str
) -> AsyncIterator[str]:
    """A text-only turn (the terminal chat): the reply's pieces as they stream; a short
    apology if the model fails before saying anything."""
    from voice_companion.errors import LlmError

    said: list[str] = []
    try:
        async for piece in stream_pieces(
            model, dialogue.messages_for(text), config.llm.read_timeout_s
        ):
            said.append(piece)
            yield piece
    except LlmError as exc:
        log.warning("the language model failed: %s", exc)
        if not said:
            said.append(config.llm.apology)
            yield config.llm.apology
    finally:
        dialogue.record_exchange(text, "".join(said).strip(), interrupted=False)
