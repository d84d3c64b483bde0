"""The one turn: an utterance, a typed line or an announcement becomes a reply.

What to reply is decided here and nowhere else: nothing heard, a voice command, the crisis
reply, the model's reply (streamed into sentences, ended by a sentence said twice; a short
apology when it fails), the AI disclosure first while it has not been heard, a break reminder
after. The live daemon, ``run --input``, ``chat``, ``say``, the warm-up and every benchmark
run this code.

Memory is written through the turn at one point, when it is confirmed: a spoken turn once
the end-of-speech silence is over (just before its first audio is played; the user's words
are kept before the reply is heard or fails), a typed one at once. A speculative turn dropped
because the user went on leaves nothing behind.

Every dialogue call that touches disk or a model runs in the conversation's memory thread,
one call after the other, so that the event loop never waits for SQLite or an embedding.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import AudioSink
from voice_companion.config import Config
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.history import Turn as HeardTurn
from voice_companion.dialogue.sentences import SentenceSplitter, speakable
from voice_companion.dialogue.spoken import SpokenCheck
from voice_companion.engines import ChatModel, Synthesizer, Transcriber
from voice_companion.errors import LlmError, SttError
from voice_companion.events import UtteranceEnded
from voice_companion.runtime.turn_taking import TurnTaking
from voice_companion.stages.speak import AUDIBLE_PEAK, SpeechProgress, speak
from voice_companion.stages.think import reply_char_limit, sentences, stream_pieces
from voice_companion.trace import Tracer, TurnTimings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Engines:
    """The engines a conversation talks through; built by ``app``, swapped by tests."""

    transcriber: Transcriber
    model: ChatModel
    synthesizer: Synthesizer


class Pace(enum.Enum):
    """How a spoken turn goes: streaming (each stage starts on the previous one's first
    output; the companion's way) or whole (the whole transcript, then the whole reply, then
    the whole synthesis, then play: the latency benchmark's baseline)."""

    STREAMING = "streaming"
    WHOLE = "whole"


class Conversation:
    """What every turn of one conversation shares: the configuration, the engines (only a
    model for a text chat), the dialogue behind its memory thread, and the tracer."""

    def __init__(
        self,
        config: Config,
        dialogue: Dialogue,
        tracer: Tracer,
        engines: Engines | None = None,
        model: ChatModel | None = None,
    ) -> None:
        self.config = config
        self.engines = engines
        model = model or (engines.model if engines is not None else None)
        if model is None:
            raise ValueError("a conversation needs a language model")
        self.model = model
        self.dialogue = dialogue
        self.tracer = tracer
        self.turn_taking = TurnTaking.of(config)
        # One thread, so the user's and the assistant's records land in the order given.
        self._memory = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dialogue")

    async def memory(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``call`` in the memory thread (after every call given before it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._memory, functools.partial(call, *args, **kwargs))

    def later(self, call: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """``call`` in the memory thread, in order, without waiting for it: what ends a turn
        (an interruption must not wait for a locked database). A failure is logged."""
        future = self._memory.submit(functools.partial(call, *args, **kwargs))
        future.add_done_callback(_log_failure)

    async def forgotten_elsewhere(self) -> bool:
        """If something was forgotten (here or by another process) since the last look, drop
        it from the conversation, and every word from the in-memory trace (which cannot tell
        which were forgotten; a ``--trace`` file is the user's own). Before each turn, and at
        once when the daemon is told."""
        if not await self.memory(self.dialogue.forgotten_elsewhere):
            return False
        self._drop_words()
        return True

    def forgotten_elsewhere_now(self) -> bool:
        """``forgotten_elsewhere``, blocking, once no turn runs (the memory thread is idle)."""
        if not self.dialogue.forgotten_elsewhere():
            return False
        self._drop_words()
        return True

    def _drop_words(self) -> None:
        self.tracer.forget_words()

    def close(self) -> None:
        """Finish the calls given, then close the long-term memory (blocking)."""
        self.release()
        self.dialogue.close()

    def release(self, wait: bool = True) -> None:
        """Let the memory thread go once the calls given are done (the dialogue stays)."""
        self._memory.shutdown(wait=wait)

    def voice(self) -> Engines:
        if self.engines is None:
            raise ValueError("this conversation has no voice")
        return self.engines

    def sentences_of(self, text: str) -> list[str]:
        return spoken_sentences(text, self.config.dialogue.sentence_max_chars)


def _log_failure(future: Future[object]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("a memory write failed: %s", exc, exc_info=exc)


def spoken_sentences(text: str, max_chars: int) -> list[str]:
    """``text`` in spoken sentences (a long announcement is synthesised and heard sentence
    by sentence, so it starts sooner and an interruption knows where)."""
    splitter = SentenceSplitter(max_chars=max_chars)
    parts = [*splitter.feed(text), splitter.flush() or ""]
    return [p for p in parts if p.strip()]


def synthesize_whole(
    texts: Iterable[str], synthesizer: Synthesizer, pause_ms: int, trailing_pause: bool = True
) -> AudioChunk:
    """Text to speech with pauses, whole: every speakable sentence, a pause after each (but
    the last, unless ``trailing_pause``). Blocking."""
    pause = AudioChunk.silence(pause_ms / 1000, synthesizer.rate_hz)
    pieces: list[AudioChunk] = []
    for text in texts:
        spoken = speakable(text)
        if spoken:
            pieces += [synthesizer.synthesize(spoken), pause]
    if pieces and not trailing_pause:
        pieces.pop()
    return AudioChunk.concat(pieces, synthesizer.rate_hz)


class Turn:
    """One turn, tracked by identity: what the user said (``utterance`` spoken, ``typed``)
    or what the companion announces (``announcement``), and what of the reply was heard."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        utterance: UtteranceEnded | None = None,
        typed: str | None = None,
        announcement: str | None = None,
        disclosure: str | None = None,
        pace: Pace = Pace.STREAMING,
        remind: bool = True,
        on_speaking: Callable[[], object] = lambda: None,
    ) -> None:
        self._c = conversation
        self.utterance = utterance
        self.typed = typed
        self.announcement = announcement
        self.disclosure = disclosure
        self.pace = pace
        self._remind = remind
        self._on_speaking = on_speaking
        self.progress = SpeechProgress()
        self.text = ""
        """The user's words (the transcript, or the typed line)."""
        self.confirmed = False
        self._confirming: asyncio.Future[None] | None = None
        self.abandoned = False
        self.reminder: str | None = None
        self.disclosure_heard = False
        self._end_t: float | None = None
        self._first_token: list[float] = []
        self._stop_model = threading.Event()
        self._words: HeardTurn | None = None
        """The user's words as the dialogue prepared them: how it knows this turn."""
        self._stt_done = 0.0
        self.timings = TurnTimings()
        self.spoken_fixes = 0
        """Model sentences the spoken check rewrote or dropped (prompt framing read aloud)."""

    # -- what to reply ----------------------------------------------------------------------

    async def _words_heard(self) -> None:
        """The user's words: the typed line, or the transcript of what they said."""
        c, utterance = self._c, self.utterance
        if self.typed is not None:
            self.text = self.typed.strip()
        elif utterance is not None:
            started = c.tracer.now()
            try:
                transcript = await asyncio.to_thread(
                    c.voice().transcriber.transcribe, utterance.audio
                )
                self.text = transcript.text.strip()
            except SttError as exc:
                log.warning("speech-to-text failed: %s", exc)
                self.text = ""
            self._stt_done = c.tracer.now()
            c.tracer.emit("transcript", text=self.text, stt_s=round(self._stt_done - started, 4))
            log.debug("heard: %s", self.text)

    async def _listen(self) -> None:
        """The user's words, heard and read by the dialogue (not yet kept)."""
        c, utterance = self._c, self.utterance
        if self.announcement is not None:
            return
        # Beside speech-to-text: what was forgotten elsewhere leaves before the words are read.
        forgotten = asyncio.ensure_future(c.forgotten_elsewhere())
        try:
            await self._words_heard()
        finally:
            await forgotten
        if self.text:
            self._words = await c.memory(
                c.dialogue.prepare_user,
                self.text,
                duration_s=utterance.audio.duration_s if utterance is not None else None,
                audio=utterance.audio if utterance is not None else None,
            )

    async def confirm(self) -> None:
        """Wait until the turn is real: a spoken one once the end-of-speech silence is over,
        a typed one at once. The user's words are kept then, before any of the reply is heard.
        Every caller waits for the same confirmation."""
        if self._confirming is None:
            self._confirming = asyncio.ensure_future(self._confirm())
        await self._confirming

    async def _confirm(self) -> None:
        c = self._c
        if self.utterance is not None and self._end_t is not None and self.pace is Pace.STREAMING:
            await c.turn_taking.silence_over(self.text, self._end_t, c.tracer)
        self.confirmed = True
        c.tracer.emit("confirmed")
        if self.text:
            await c.memory(c.dialogue.commit_user)

    async def replies(self) -> AsyncIterator[str]:
        """What to reply, sentence by sentence, the disclosure first."""
        if self.disclosure is not None:
            yield self.disclosure
        c = self._c
        if self.announcement is not None:
            for sentence in c.sentences_of(self.announcement):
                yield sentence
            return
        if not self.text:
            yield c.config.dialogue.not_heard
            return
        words = self._words
        if words is not None and c.dialogue.is_command(words):
            # A memory command changes memory: carried out once the turn is confirmed.
            await self.confirm()
        answer = await c.memory(c.dialogue.command_reply, self.text, words)
        if answer is not None:
            for sentence in c.sentences_of(answer):
                yield sentence
            return
        async for sentence in self._model_reply():
            yield sentence

    async def _model_reply(self) -> AsyncIterator[str]:
        """The model's reply as sentences; a short apology instead of silence if it fails."""
        c = self._c
        config = c.config
        messages = await c.memory(c.dialogue.messages_for, self.text, self._words)
        splitter = SentenceSplitter(
            max_chars=config.dialogue.sentence_max_chars,
            first_clause_chars=config.dialogue.first_clause_chars,
            first_max_chars=config.dialogue.first_max_chars,
        )
        produced = False
        said: set[str] = set()
        ended = 0
        check = SpokenCheck.for_prompt(messages, c.dialogue.persona)
        try:
            pieces = stream_pieces(
                c.model,
                messages,
                config.llm.read_timeout_s,
                self._stop_model,
                reply_timeout_s=config.llm.reply_timeout_s,
                max_chars=reply_char_limit(config.llm.max_reply_tokens),
            )
            async for sentence in sentences(
                self._timed(pieces), splitter, config.dialogue.flush_after_ms / 1000
            ):
                checked = check(sentence)
                self.spoken_fixes = check.fired
                if checked is None:
                    continue
                sentence = checked
                key = " ".join(sentence.lower().split())
                if key in said:
                    # Small models loop ("I'm here to help. I'm here to help. ..."): a
                    # sentence said twice in one reply ends the reply.
                    self._stop_model.set()
                    return
                said.add(key)
                produced = True
                yield sentence
                if sentence.rstrip(" \"'”’)").endswith((".", "!", "?", "…")):
                    ended += 1  # a first piece cut at a comma is not a sentence yet
                    if ended == config.dialogue.max_reply_sentences:
                        self._stop_model.set()
                        return
            if not produced and check.fired:
                yield config.llm.apology  # all of it was framing: not silence
        except LlmError as exc:
            log.warning("the language model failed: %s", exc)
            if not produced:
                yield config.llm.apology

    async def _timed(self, pieces: AsyncIterator[str]) -> AsyncIterator[str]:
        async for piece in pieces:
            if not self._first_token:
                self._first_token.append(self._c.tracer.now())
            yield piece

    # -- running it -------------------------------------------------------------------------

    async def written(self) -> AsyncIterator[str]:
        """A typed turn: the reply's sentences as they come (the terminal chat)."""
        said: list[str] = []
        try:
            await self._listen()
            await self.confirm()
            async for sentence in self.replies():
                said.append(sentence)
                yield sentence
        finally:
            self._stop_model.set()
            await self._finish(" ".join(said), interrupted=False, wait=True)

    async def spoken(self, sink: AudioSink, end_t: float | None = None) -> None:
        """Answer aloud into ``sink``; ``end_t``: when the user stopped speaking (trace
        clock). Cancelling it interrupts it; ``abandon`` first to drop it unheard."""
        c, tracer = self._c, self._c.tracer
        self._end_t = end_t
        started = tracer.now()
        self._stt_done = started
        interrupted = True
        llm_done = tts_done = started
        try:
            await self._listen()
            self._on_speaking()
            if self.utterance is not None and self.pace is Pace.STREAMING:
                # Confirmed as soon as the silence is over, while the reply is prepared: the
                # write is then off the path to the first audio.
                self._confirming = asyncio.ensure_future(self._confirm())
            if self.pace is Pace.WHOLE:
                texts = [s async for s in self.replies()]
                llm_done = tracer.now()
                synth = c.voice().synthesizer
                audio = await asyncio.to_thread(
                    synthesize_whole, texts, synth, c.config.tts.sentence_pause_ms
                )
                tts_done = tracer.now()
                await self.confirm()
                if audio.peak() >= AUDIBLE_PEAK:
                    self.progress.first_audio_t = tracer.now()
                    tracer.emit("first_audio", t=self.progress.first_audio_t)
                await sink.write(audio)
                self.progress.played.extend(texts)
            else:
                await speak(
                    self.replies(),
                    c.voice().synthesizer,
                    sink,
                    self.progress,
                    tracer.now,
                    c.config.tts.sentence_pause_ms,
                    lambda t: tracer.emit("first_audio", t=t),
                    self._held,
                )
            interrupted = False
        finally:
            self._stop_model.set()
            if self._confirming is not None and not self._confirming.done():
                self._confirming.cancel()  # dropped or interrupted before the silence was over
                await asyncio.gather(self._confirming, return_exceptions=True)
            self._note_disclosure()
            if self.announcement is not None:
                tracer.emit("said", text=self.progress.heard_text, interrupted=interrupted)
            elif self.abandoned:
                if self.text:
                    # It comes again, joined with what followed: nothing of it is kept.
                    c.later(c.dialogue.drop_user)
            else:
                await self._finish(self.progress.heard_text, interrupted, wait=False)
                self._trace_end(interrupted, started, llm_done, tts_done)

    async def _held(self) -> None:
        """Before the first audio: nothing is heard before the turn is confirmed."""
        tracer = self._c.tracer
        started = tracer.now()
        await self.confirm()
        target_s = self._c.turn_taking.hold_s(self.text) if self.utterance is not None else 0.0
        tracer.emit("hold", target_s=round(target_s, 3), waited_s=round(tracer.now() - started, 4))

    def _note_disclosure(self) -> None:
        """Once the user has heard the disclosure in full, it is not said again."""
        c = self._c
        if self.disclosure is None or self.disclosure not in self.progress.played:
            return
        self.disclosure_heard = True
        if (care := c.dialogue.care) is not None:
            c.later(care.disclosed, c.dialogue.persona.key)

    def abandon(self) -> None:
        """The user went on before hearing the reply (or as it began): drop this turn."""
        self.abandoned = True

    async def _finish(self, heard: str, interrupted: bool, wait: bool) -> None:
        """Record what was heard (the user's words first, if the turn failed before it was
        confirmed: nothing they said is lost). ``wait``: until it is on disk (a typed reply
        is printed once it is); otherwise in order, behind, so that an interruption never
        waits for the disk."""
        c = self._c
        if not self.text:
            return
        record = c.dialogue.record_reply
        if not self.confirmed:
            self.confirmed = True
            c.later(c.dialogue.commit_user)
        if wait:
            await c.memory(record, heard, interrupted=interrupted)
        else:
            c.later(record, heard, interrupted=interrupted)
        log.debug("said: %s", heard)
        if self._remind and (care := c.dialogue.care) is not None:
            self.reminder = care.break_reminder()

    def _trace_end(
        self, interrupted: bool, started: float, llm_done: float, tts_done: float
    ) -> None:
        tracer, progress = self._c.tracer, self.progress
        heard = progress.heard_text
        fixes = {"spoken_fixes": self.spoken_fixes} if self.spoken_fixes else {}
        tracer.emit("reply", text=heard, interrupted=interrupted, **fixes)
        end_t = started if self._end_t is None else self._end_t
        stt_done = self._stt_done
        first_token = self._first_token
        if self.pace is Pace.WHOLE:
            self.timings = TurnTimings(
                endpoint_wait_s=started - end_t,
                stt_s=stt_done - started,
                response_latency_s=(
                    progress.first_audio_t - end_t if progress.first_audio_t else None
                ),
                turn_s=tracer.now() - started,
            )
            tracer.turn_ended(
                self.timings,
                interrupted=interrupted,
                llm_reply_s=round(llm_done - stt_done, 4),
                tts_reply_s=round(tts_done - llm_done, 4),
            )
            return
        self.timings = TurnTimings(
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
        tracer.turn_ended(self.timings, interrupted=interrupted)
