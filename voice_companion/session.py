"""The orchestrator: owns the state, the one turn task, and interruption.

Events arrive from the listening side (speech started, utterance ended, input ended). Each
utterance becomes one turn: listen (speech-to-text) → think (LLM stream → sentences) → speak
(TTS → sink). Barge-in lives here and nowhere else: when enabled, speech during a turn cancels
the turn task, flushes the sink, and the history keeps only what the user heard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import AudioSink
from voice_companion.config import Config
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.persona import Persona
from voice_companion.dialogue.sentences import SentenceSplitter
from voice_companion.engines import ChatModel, Synthesizer, Transcriber
from voice_companion.errors import LlmError, SttError
from voice_companion.events import (
    Event,
    InputEnded,
    Say,
    SpeechStarted,
    UtteranceDiscarded,
    UtteranceEnded,
)
from voice_companion.stages.endpointer import end_silence_ms
from voice_companion.stages.speak import SpeechProgress, speak
from voice_companion.stages.think import reply_char_limit, sentences, stream_pieces
from voice_companion.trace import Tracer, TurnTimings

log = logging.getLogger(__name__)


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass(frozen=True)
class Engines:
    """The engines a session talks through; built by ``app``, swapped by tests."""

    transcriber: Transcriber
    model: ChatModel
    synthesizer: Synthesizer


class Session:
    """Turn-taking for one conversation.

    A turn starts as soon as the listener closes the utterance, which (``vad.speculate_ms``)
    can be well before the end-of-speech silence is over: speech-to-text, the model and the
    voice get going, but nothing is played until the silence has lasted as long as the
    transcript calls for (``stages.endpointer.end_silence_ms``: short after a complete
    sentence, long after "and" or "um"). The turn stays speculative until the reply is heard:
    if the user resumes within ``dialogue.resume_ms`` before any of the reply was played, the
    turn is abandoned and both utterances are answered together, as one.
    """

    def __init__(
        self,
        config: Config,
        engines: Engines,
        dialogue: Dialogue,
        sink: AudioSink,
        tracer: Tracer,
        barge_in: bool = False,
    ) -> None:
        self._config = config
        self._engines = engines
        self._dialogue = dialogue
        self._sink = sink
        self._tracer = tracer
        self._barge_in = barge_in
        self._resume_s = config.dialogue.resume_ms / 1000
        self._backoff_s = config.dialogue.backoff_ms / 1000
        self._waiting: deque[UtteranceEnded | Say] = deque()
        self._wake = asyncio.Event()
        self._user_speaking = False
        self._input_over = False
        self._turn_task: asyncio.Task[None] | None = None
        self._turn_utterance: UtteranceEnded | None = None
        self._turn_progress: SpeechProgress | None = None
        self._abandoning: asyncio.Task[None] | None = None
        self.state = State.IDLE
        self.last_timings = TurnTimings()
        self.turns_done = 0
        self._disclosure: str | None = None
        self._greetings = 0

    def close(self) -> None:
        """Close what the conversation holds open (the long-term memory)."""
        self._dialogue.close()

    def forgotten_elsewhere(self) -> bool:
        """If something was forgotten (here or by another process) since the last look, drop
        it from the conversation, and every word from the trace's recorder if it has one
        (which cannot tell which were forgotten; a ``--trace`` file is the user's own). Before
        each turn, and at once when the daemon is told."""
        if not self._dialogue.forgotten_elsewhere():
            return False
        self._tracer.forget_words()
        return True

    @property
    def recent_timings(self) -> list[TurnTimings]:
        """The last turns' timings, oldest first (``trace.TURNS_KEPT`` of them at most)."""
        return list(self._tracer.recent_turns)

    @property
    def persona(self) -> Persona:
        return self._dialogue.persona

    def memory_saving(self) -> dict[str, Any] | None:
        """Whether what is said is being saved in memory.db; None without long-term memory."""
        from voice_companion.memory.store import ReportsSaving

        memory = self._dialogue.memory
        return memory.saving.as_dict() if isinstance(memory, ReportsSaving) else None

    def introduce(self) -> None:
        """Greet the user, unless it is their quiet hours, and say that the companion is an
        AI the first time this persona speaks with them: before the greeting, or before the
        first reply when there is no greeting (EU AI Act, art. 50)."""
        persona, care = self._dialogue.persona, self._dialogue.care
        if care is not None and care.needs_disclosure(persona.key):
            self._disclosure = persona.ai_disclosure
        if care is None or not care.quiet_now():
            self.say(persona.greeting_for(index=self._greetings))
            self._greetings += 1

    async def switch_persona(self, persona: Persona, synthesizer: Synthesizer) -> None:
        """Become ``persona``, with its voice: the current turn stops, the recent
        conversation starts afresh (long-term memory stays), and the new persona greets."""
        await self.interrupt()
        self._waiting = deque(w for w in self._waiting if isinstance(w, UtteranceEnded))
        self._engines = dataclasses.replace(self._engines, synthesizer=synthesizer)
        self._dialogue.persona = persona
        self._dialogue.history.clear()
        self._disclosure = None
        self._tracer.emit("persona", name=persona.name)
        self.introduce()

    async def _disclosed_first(self, replies: AsyncIterator[str]) -> AsyncIterator[str]:
        """``replies``, after the AI disclosure while it has not been heard yet."""
        if self._disclosure is not None:
            yield self._disclosure
        async for reply in replies:
            yield reply

    def _split(self, text: str) -> AsyncIterator[str]:
        """``text`` in spoken sentences (a long `say` or a crisis reply is synthesised and
        heard sentence by sentence, so it starts sooner and an interruption knows where)."""
        splitter = SentenceSplitter(max_chars=self._config.dialogue.sentence_max_chars)
        parts = [*splitter.feed(text), splitter.flush() or ""]
        return _pieces([p for p in parts if p.strip()])

    def _note_disclosure(self, progress: SpeechProgress) -> None:
        """Once the user has heard the disclosure in full, it is not said again."""
        care, disclosure = self._dialogue.care, self._disclosure
        if disclosure is not None and care is not None and disclosure in progress.played:
            care.disclosed(self._dialogue.persona.key)
            self._disclosure = None

    async def run(self, events: AsyncIterator[Event]) -> None:
        """Handle ``events`` until the input ends, then finish the turns still waiting."""
        worker = asyncio.create_task(self._turn_worker(), name="turn-worker")
        try:
            async for event in events:
                await self.handle(event)
                if isinstance(event, InputEnded):
                    break
            self._input_over = True
            self._wake.set()
            await worker
        finally:
            if not worker.done():
                worker.cancel()
                await asyncio.gather(worker, return_exceptions=True)

    async def handle(self, event: Event) -> None:
        match event:
            case SpeechStarted(start_s=start_s):
                self._tracer.emit("speech_start", audio_s=round(start_s, 3))
                self._user_speaking = True
                if self._resumes_unheard_turn(event):
                    await self._abandon_turn()
                elif self._barge_in and self.state in (State.THINKING, State.SPEAKING):
                    await self.interrupt()
                if self.state is State.IDLE:
                    self.state = State.LISTENING
            case UtteranceEnded():
                detected_t = self._tracer.now()
                end_t = self._speech_end_t(event)
                self._tracer.emit(
                    "speech_end",
                    t=end_t,
                    audio_s=round(event.speech_end_s, 3),
                    utterance_s=round(event.audio.duration_s, 3),
                    endpoint_wait_s=round(detected_t - end_t, 4),
                )
                last = self._waiting[-1] if self._waiting else None
                if (
                    isinstance(last, UtteranceEnded)
                    and event.start_s - last.speech_end_s <= self._resume_s
                ):
                    self._waiting[-1] = _joined(last, event)
                else:
                    self._waiting.append(event)
                self._user_speaking = False
                self._wake.set()
            case UtteranceDiscarded(voiced_s=voiced_s):
                self._tracer.emit("speech_discarded", voiced_s=round(voiced_s, 3))
                self._user_speaking = False
                self._wake.set()
                if self.state is State.LISTENING:
                    self.state = State.IDLE
            case InputEnded(at_s=at_s):
                self._tracer.emit("input_end", audio_s=round(at_s, 3))
                self._user_speaking = False
                self._wake.set()
                if self.state is State.LISTENING:
                    self.state = State.IDLE

    def _first_audio(self, t: float) -> None:
        self._tracer.emit("first_audio", t=t)

    def say(self, text: str) -> None:
        """Speak ``text`` as soon as the current turn is over (``say`` on the control socket)."""
        self._waiting.append(Say(text))
        self._wake.set()

    async def _announce(self, text: str, progress: SpeechProgress) -> None:
        self.state = State.SPEAKING
        interrupted = True
        try:
            await speak(
                self._disclosed_first(self._split(text)),
                self._engines.synthesizer,
                self._sink,
                progress,
                self._tracer.now,
                self._config.tts.sentence_pause_ms,
                self._first_audio,
            )
            interrupted = False
        finally:
            self._note_disclosure(progress)
            self._tracer.emit("said", text=progress.heard_text, interrupted=interrupted)

    def _resumes_unheard_turn(self, started: SpeechStarted) -> bool:
        """The user goes on within the resume window, before the reply was heard or when it
        had only just started (both started at once: the companion backs off). Measured at
        the user's first voiced frame, not when that was confirmed as speech."""
        utterance, progress = self._turn_utterance, self._turn_progress
        if utterance is None or progress is None:
            return False
        if started.start_s - utterance.speech_end_s > self._resume_s:
            return False
        heard_from = progress.first_audio_t
        if heard_from is None:
            return True
        onset_t = (
            self._tracer.now()
            if started.start_clock_s is None
            else self._tracer.at(started.start_clock_s)
        )
        return onset_t - heard_from <= self._backoff_s

    async def _abandon_turn(self) -> None:
        """The user went on talking before hearing the reply (or as it began): answer it all
        together later."""
        task, utterance, progress = self._turn_task, self._turn_utterance, self._turn_progress
        if task is None or utterance is None or task.done():
            return
        self._abandoning = task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if progress is not None and progress.first_audio_t is not None:
            await self._sink.flush()  # it had just begun: stop it mid-word
        self._waiting.appendleft(utterance)
        self._tracer.emit("turn_abandoned", reason="user resumed speaking")

    def _speech_end_t(self, utterance: UtteranceEnded) -> float:
        """When the user stopped speaking, on the trace's clock."""
        if utterance.speech_end_clock_s is not None:
            return self._tracer.at(utterance.speech_end_clock_s)
        # Not stamped (events built by hand): assume audio arrived in real time.
        return self._tracer.now() - (utterance.detected_s - utterance.speech_end_s)

    async def interrupt(self) -> None:
        """Stop the current turn now: cancel its task and drop queued audio."""
        task = self._turn_task
        if task is None or task.done():
            return
        task.cancel()
        await self._sink.flush()
        self._tracer.emit("interrupted")
        await asyncio.gather(task, return_exceptions=True)

    async def _turn_worker(self) -> None:
        while True:
            # A turn starts once the user has stopped speaking and something waits.
            while self._user_speaking or not self._waiting:
                if self._input_over and not self._waiting:
                    return
                self._wake.clear()
                await self._wake.wait()
            item = self._waiting.popleft()
            progress = SpeechProgress()
            if isinstance(item, Say):
                turn = self._announce(item.text, progress)
            else:
                self._turn_utterance, self._turn_progress = item, progress
                turn = self._turn(item, progress)
            self._turn_task = asyncio.create_task(turn, name="turn")
            try:
                await self._turn_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are shutting down, not just interrupted
            except Exception:
                # A failed turn is logged; the companion goes back to listening.
                log.exception("a turn failed")
            finally:
                self._turn_task = None
                self._turn_utterance = self._turn_progress = None
                self.state = State.LISTENING if self._user_speaking else State.IDLE

    async def _turn(self, utterance: UtteranceEnded, progress: SpeechProgress) -> None:
        self.forgotten_elsewhere()
        tracer = self._tracer
        started = tracer.now()
        end_t = self._speech_end_t(utterance)
        self.state = State.THINKING
        try:
            transcript = await asyncio.to_thread(
                self._engines.transcriber.transcribe, utterance.audio
            )
            text = transcript.text.strip()
        except SttError as exc:
            log.warning("speech-to-text failed: %s", exc)
            text = ""
        stt_done = tracer.now()
        tracer.emit("transcript", text=text, stt_s=round(stt_done - started, 4))
        log.debug("heard: %s", text)
        if text:
            # Kept now, before any reply: nothing the user said is lost if the reply fails.
            self._dialogue.record_user(
                text, duration_s=utterance.audio.duration_s, audio=utterance.audio
            )
        first_token: list[float] = []
        interrupted = True
        stop_model = threading.Event()
        hold_s = end_silence_ms(text, self._config.vad) / 1000

        async def hold() -> None:
            # The turn may have started speculatively, before the end-of-speech silence was
            # over: nothing is heard before it is (if the user resumes, the turn is dropped).
            waited = max(0.0, end_t + hold_s - tracer.now())
            if waited > 0:
                await asyncio.sleep(waited)
            tracer.emit("hold", target_s=round(hold_s, 3), waited_s=round(waited, 4))

        try:
            if not text:
                replies = _one(self._config.dialogue.not_heard)
            elif (answer := self._dialogue.command_reply(text)) is not None:
                replies = self._split(answer)
            else:
                replies = self._reply_sentences(text, first_token, stop_model)
            self.state = State.SPEAKING
            await speak(
                self._disclosed_first(replies),
                self._engines.synthesizer,
                self._sink,
                progress,
                tracer.now,
                self._config.tts.sentence_pause_ms,
                self._first_audio,
                hold,
            )
            interrupted = False
        finally:
            stop_model.set()
            self._note_disclosure(progress)
            if asyncio.current_task() is not self._abandoning:
                self._finish_turn(
                    text, progress, interrupted, started, end_t, stt_done, first_token
                )
            elif text:
                self._dialogue.retract_user()  # it comes again, joined with what followed

    def _finish_turn(
        self,
        text: str,
        progress: SpeechProgress,
        interrupted: bool,
        started: float,
        end_t: float,
        stt_done: float,
        first_token: list[float],
    ) -> None:
        """Record what was heard and trace the turn's timings."""
        tracer = self._tracer
        heard = progress.heard_text
        if text:
            self._dialogue.record_reply(heard, interrupted=interrupted)
        log.debug("said: %s", heard)
        tracer.emit("reply", text=heard, interrupted=interrupted)
        timings = TurnTimings(
            endpoint_wait_s=started - end_t,
            stt_s=stt_done - started,
            llm_first_token_s=first_token[0] - stt_done if first_token else None,
            first_sentence_s=(
                progress.first_sentence_t - stt_done if progress.first_sentence_t else None
            ),
            tts_first_s=progress.tts_first_s,
            response_latency_s=(progress.first_audio_t - end_t if progress.first_audio_t else None),
            turn_s=tracer.now() - started,
        )
        self.last_timings = timings
        self.turns_done += 1
        care = self._dialogue.care
        if text and care is not None and (reminder := care.break_reminder()):
            self.say(reminder)
        tracer.turn_ended(timings, interrupted=interrupted)

    async def _reply_sentences(
        self, text: str, first_token: list[float], stop_model: threading.Event
    ) -> AsyncIterator[str]:
        """The model's reply as sentences; a short apology instead of silence if it fails."""
        config = self._config
        messages = self._dialogue.messages_for(text)
        splitter = SentenceSplitter(
            max_chars=config.dialogue.sentence_max_chars,
            first_clause_chars=config.dialogue.first_clause_chars,
            first_max_chars=config.dialogue.first_max_chars,
        )
        produced = False
        said: set[str] = set()
        try:
            pieces = stream_pieces(
                self._engines.model,
                messages,
                config.llm.read_timeout_s,
                stop_model,
                reply_timeout_s=config.llm.reply_timeout_s,
                max_chars=reply_char_limit(config.llm.max_reply_tokens),
            )
            async for sentence in sentences(
                _timed(pieces, first_token, self._tracer),
                splitter,
                config.dialogue.flush_after_ms / 1000,
            ):
                key = " ".join(sentence.lower().split())
                if key in said:
                    # Small models loop ("I'm here to help. I'm here to help. ..."): a
                    # sentence said twice in one reply ends the reply.
                    stop_model.set()
                    return
                said.add(key)
                produced = True
                yield sentence
        except LlmError as exc:
            log.warning("the language model failed: %s", exc)
            if not produced:
                yield config.llm.apology


def _joined(first: UtteranceEnded, second: UtteranceEnded) -> UtteranceEnded:
    """Two utterances the user meant as one (they resumed within the resume window)."""
    return UtteranceEnded(
        audio=AudioChunk.concat([first.audio, second.audio], first.audio.rate_hz),
        start_s=first.start_s,
        speech_end_s=second.speech_end_s,
        detected_s=second.detected_s,
        speech_end_clock_s=second.speech_end_clock_s,
    )


async def _one(text: str) -> AsyncIterator[str]:
    yield text


async def _pieces(texts: list[str]) -> AsyncIterator[str]:
    for text in texts:
        yield text


async def _timed(
    pieces: AsyncIterator[str], first: list[float], tracer: Tracer
) -> AsyncIterator[str]:
    async for piece in pieces:
        if not first:
            first.append(tracer.now())
        yield piece
