"""Composition root: the only place where configuration picks concrete classes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from voice_companion.audio.chunk import STT_RATE_HZ
from voice_companion.config import (
    BUNDLED,
    BargeIn,
    Config,
    ListeningMode,
    default_cache_dir,
    threads_for,
)
from voice_companion.dialogue import answers
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.engines import (
    ChatModel,
    FrameClassifier,
    Synthesizer,
    Transcriber,
)
from voice_companion.memory.seam import MemoryStore, NoMemory
from voice_companion.persona.values import Persona, VoiceChoice
from voice_companion.runtime.session import Engines, Session
from voice_companion.runtime.warmup import warm_up
from voice_companion.stages.endpointer import Endpointer
from voice_companion.stages.listen import EchoGuard, Listener
from voice_companion.stages.think import reply_char_limit
from voice_companion.trace import Tracer

if TYPE_CHECKING:
    from voice_companion.dialogue.care import Care
    from voice_companion.persona.library import PersonaLibrary
    from voice_companion.persona.voices import Voice
    from voice_companion.runtime.daemon import Daemon

log = logging.getLogger(__name__)

FRAME_MS = 30
"""Listening frame length: webrtcvad takes 10, 20 or 30 ms."""

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
        min_window_s=stt.min_window_s,
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
            reply_timeout_s=llm.reply_timeout_s,
            max_reply_chars=reply_char_limit(llm.max_reply_tokens),
        )
    from voice_companion.engines import bundled, gguf
    from voice_companion.engines.llm_llama import LlamaChatModel

    if llm.model_path == BUNDLED:
        path = gguf.as_q8_0(bundled.smollm2_gguf_path(), default_cache_dir() / "models")
    else:
        path = Path(llm.model_path)
    return LlamaChatModel(
        model_path=path.expanduser(),
        context_tokens=llm.context_tokens,
        # Thread budget: the reply is generated while the voice speaks its first sentence, so
        # generation and the voice share the cores half and half. llama.cpp's threads also
        # busy-wait on each other: on 2 cores with anything else running, 2 threads evaluate
        # a prompt 2-6 times slower than 1 does (measured), so prompt evaluation takes half
        # the cores too. Speech-to-text runs alone and takes them all.
        threads=threads_for(llm.threads, share=0.5),
        batch_threads=threads_for(llm.batch_threads),
        max_reply_tokens=llm.max_reply_tokens,
        temperature=llm.temperature,
        repeat_penalty=llm.repeat_penalty,
    )


def voice_for(
    config: Config,
    name: str | None = None,
    speaker: int = -1,
    speed: float = 1.0,
    expressiveness: float = 1.0,
) -> Voice:
    """The voice called ``name`` ("bundled", a piper .onnx path or a name from ``voices
    list``; None: ``tts.voice`` with ``tts.speaker``), with ``speed`` and ``expressiveness``
    applied on top of its definition's (1.0 keeps them; the product is kept within range).
    Raises ``ConfigError`` (or its ``ModelNotFoundError``) in one line."""
    from voice_companion.errors import ConfigError
    from voice_companion.persona import voices

    if name is None:
        name, speaker = config.tts.voice, config.tts.speaker
        try:
            return voice_for(config, name, speaker, speed, expressiveness)
        except ConfigError as exc:
            message = str(exc)
            if message.startswith("speaker ="):  # name the config key that set it
                raise ConfigError(f"tts.{message}") from exc
            raise
    voice = voices.resolve_voice(name, voices.user_voices_dir(config.data_dir))
    return voice.scaled(speed, expressiveness, speaker)


def build_synthesizer(config: Config, voice: Voice | None = None) -> Synthesizer:
    """Piper speaking ``voice`` (default: ``voice_for(config)``); ``tts.length_scale``
    scales every voice's pace."""
    from voice_companion.engines.tts import PiperSynthesizer

    voice = voice_for(config) if voice is None else voice.require()
    return PiperSynthesizer(
        voice.model_path,
        speaker=voice.speaker,
        length_scale=voice.length_scale * config.tts.length_scale,
        threads=threads_for(config.tts.threads, share=0.5),
        noise_scale=voice.noise_scale,
        noise_w_scale=voice.noise_w_scale,
    )


def build_classifier(config: Config) -> FrameClassifier:
    from voice_companion.engines.vad import SpeechFrameClassifier

    return SpeechFrameClassifier(config.vad.aggressiveness, config.vad.silero_threshold)


def build_engines(config: Config, persona: Persona | None = None) -> Engines:
    """Load the three models side by side (each spends most of its load time off the GIL);
    the voice is ``persona``'s (default: the current persona's)."""
    log.info("loading the speech, language and voice models")
    voice = persona_voice(config, (persona or current_persona(config)).voice)

    async def load() -> Engines:
        transcriber, model, synthesizer = await asyncio.gather(
            asyncio.to_thread(build_transcriber, config),
            asyncio.to_thread(build_model, config),
            asyncio.to_thread(build_synthesizer, config, voice),
        )
        return Engines(transcriber, model, synthesizer)

    return asyncio.run(load())


def persona_library(config: Config) -> PersonaLibrary:
    """The shipped and the user's personas; a persona whose voice cannot be loaded is refused
    when it is read, not when it first speaks."""
    from voice_companion.persona.library import PersonaLibrary, shipped_dir, user_dir

    def check_voice(choice: VoiceChoice) -> None:
        persona_voice(config, choice).require()

    return PersonaLibrary(user_dir(), shipped_dir(), config.data_dir, check_voice)


def current_persona(config: Config) -> Persona:
    """``persona.name``, else the last ``persona use``, else Robin."""
    return persona_library(config).current(config.persona.name)


def persona_voice(config: Config, choice: VoiceChoice) -> Voice:
    """A persona's voice: its own, or ``tts.voice`` when it names none."""
    return voice_for(
        config, choice.name or None, choice.speaker, choice.speed, choice.expressiveness
    )


def build_care(config: Config) -> Care:
    from voice_companion.dialogue.care import Care

    return Care(config.care, config.data_dir)


def build_dialogue(
    config: Config,
    persona: Persona | None = None,
    care: Care | None = None,
    recording: bool = False,
) -> Dialogue:
    return Dialogue(
        persona=persona or current_persona(config),
        memory=build_memory(config, recording),
        history_turns=config.dialogue.history_turns,
        budget_tokens=int(config.llm.context_tokens * PROMPT_BUDGET_SHARE),
        conversation_id=uuid.uuid4().hex,
        recall_limit=config.memory.recall_limit,
        notes_max_tokens=config.memory.notes_max_tokens,
        care=care or build_care(config),
        memory_answers=answers.mode_for(
            config.dialogue.memory_answers, config.llm.backend, config.llm.model_path, BUNDLED
        ),
    )


def build_memory(config: Config, recording: bool = False) -> MemoryStore:
    """Long-term memory in ``memory.db`` in the data dir, or none when ``memory.enabled`` is off.
    ``recording``: what is said is kept as a recording's, apart from the user's life."""
    if not config.memory.enabled:
        return NoMemory()
    from voice_companion.memory.encryption import open_memory_db
    from voice_companion.memory.longterm import LongTermMemory

    # Opened first: without its key (memory.encrypt) this refuses before a model loads.
    db = open_memory_db(config.data_dir, config.memory)
    llm = build_model(config) if config.memory.llm_facts else None
    return LongTermMemory(db, config.memory, llm=llm, recording=recording)


def build_listener(
    config: Config,
    mode: ListeningMode = ListeningMode.HANDS_FREE,
    guard: EchoGuard | None = None,
    playing: Callable[[], bool] = lambda: False,
    speculative: bool = False,
    classifier: FrameClassifier | None = None,
) -> Listener:
    """The listener; ``speculative`` (the companion's own pipeline) closes an utterance as
    early as its reply may start being prepared, and the session then holds the reply back
    until the (adaptive) end-of-speech silence is over. Otherwise an utterance closes after
    ``vad.end_silence_ms``. ``classifier``: one already loaded (it is reset), else a new one."""
    classifier = classifier or build_classifier(config)
    return Listener(
        classifier,
        Endpointer.for_turns(config.vad, classifier.frame_ms, STT_RATE_HZ, speculative),
        mode=mode,
        guard=guard,
        playing=playing,
    )


def check_devices(config: Config) -> None:
    """Fail early, in one line, when there is no microphone or speaker to use."""
    from voice_companion.engines.audio_device import find_device

    find_device(config.audio.input_device, "input")
    find_device(config.audio.output_device, "output")


def build_daemon(
    config: Config,
    engines: Engines,
    control_path: Path,
    trace_path: Path | None = None,
    dialogue: Dialogue | None = None,
) -> Daemon:
    from voice_companion.audio import echo
    from voice_companion.audio.microphone import Microphone, open_device
    from voice_companion.audio.speaker import SpeakerSink
    from voice_companion.engines.audio_device import PlaybackStream, find_device
    from voice_companion.runtime.daemon import Daemon
    from voice_companion.service.notify import Notifier

    audio = config.audio
    output = find_device(audio.output_device, "output")
    sink = SpeakerSink(PlaybackStream(output))
    guard = None
    if audio.barge_in is BargeIn.GUARDED:
        echo_path = config.data_dir / echo.FILENAME
        guard = EchoGuard(
            audio.barge_in_margin_db,
            lambda: sink.level_rms,
            measured=echo.load_measurements(echo_path),
            on_measured=lambda measured: echo.save_measurements(echo_path, measured),
        )
    listener = build_listener(config, audio.mode, guard, lambda: sink.playing, speculative=True)
    dialogue = dialogue or build_dialogue(config)
    # Before READY: the first turn is then as fast as the rest.
    warm_up(engines, dialogue, timeout_s=config.llm.warm_up_timeout_s)

    def load_persona(name: str) -> tuple[Persona, Synthesizer]:
        persona = persona_library(config).load(name)
        return persona, build_synthesizer(config, persona_voice(config, persona.voice))

    session = Session(
        config,
        engines,
        dialogue,
        sink,
        Tracer(trace_path),
        barge_in=audio.barge_in is not BargeIn.OFF,
        listener=listener,
        load_persona=load_persona,
    )
    microphone = Microphone(
        open_device(audio.input_device), FRAME_MS, audio.stall_s, audio.reopen_max_s
    )
    description = {
        "input_device": audio.input_device,
        "output_device": output.name,
        "models": {
            "stt": config.stt.model,
            "llm": config.llm.model if config.llm.backend == "openai" else config.llm.model_path,
            "tts": config.tts.voice,
        },
    }

    return Daemon(config, session, microphone, sink, control_path, Notifier.from_env(), description)
