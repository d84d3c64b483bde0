"""The dialogue core: what to send the model for a user's words, and what to remember.

Synchronous logic (the runtime calls it from its memory thread). The turn calls
``prepare_user`` once the user's words are transcribed, ``commit_user`` when the turn is
confirmed (before its reply is heard or fails: nothing they said is lost), ``command_reply``
for the memory commands answered without the model, ``messages_for`` before the reply, and
``record_reply`` after it with only the part the user heard. ``record_user`` prepares and
commits at once; ``record_exchange`` does both records at once.

What the store forgets, from this process or another (``memory forget`` while this one runs),
leaves this dialogue too: ``prepare_user`` and ``messages_for`` first read the store's forget
generation (one cheap read) and, when it moved, drop forgotten messages from the history,
take rewritten ones as they are now, and read the notes again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voice_companion.audio.chunk import AudioChunk
from voice_companion.dialogue import answers, commands, unasked
from voice_companion.dialogue.care import Care
from voice_companion.dialogue.commands import (
    Command,
    Confirm,
    Decline,
    ForgetLast,
    ForgetTopic,
    RecallAboutMe,
)
from voice_companion.dialogue.history import History, Turn
from voice_companion.dialogue.mood import MoodEstimate, MoodReader, mood_hint
from voice_companion.dialogue.prompt import build_messages, estimate_tokens, prompt_tokens
from voice_companion.engines import ChatMessage
from voice_companion.errors import CompanionError
from voice_companion.memory.seam import MemoryStore, Recollection
from voice_companion.memory.topic import Topic
from voice_companion.persona.values import Persona

if TYPE_CHECKING:  # memory.store imports dialogue.mood: only the type is needed here
    from voice_companion.memory.store import Fact

log = logging.getLogger(__name__)

DEFAULT_RECALL_LIMIT = 5
"""Recollections asked of the memory store per turn."""
DEFAULT_NOTES_MAX_TOKENS = 200
NOTES_REFRESH_TURNS = 50
"""Turns between refreshes of the notes about the user (fewer than 1 in 20: off the p95)."""
LORE_SCAN_TURNS = 4
"""Recent turns whose words can bring up a lorebook entry, besides the new words."""
SUMMARY_FACTS = 6
"""Facts said aloud for "what do you remember about me?"."""


@dataclass
class _Pending:
    """The user's words, recorded, not yet answered."""

    turn: Turn
    stored_id: int | None
    command: Command | None
    committed: bool = False
    origin: Turn | None = None
    """The turn as prepared, by which the runtime knows it (``turn`` may be rewritten)."""


class Dialogue:
    """One conversation: persona, recent history and long-term memory behind one seam."""

    def __init__(
        self,
        persona: Persona,
        memory: MemoryStore,
        history_turns: int,
        budget_tokens: int,
        conversation_id: str,
        recall_limit: int = DEFAULT_RECALL_LIMIT,
        notes_max_tokens: int = DEFAULT_NOTES_MAX_TOKENS,
        care: Care | None = None,
        mood: MoodReader | None = None,
        notes_refresh_turns: int = NOTES_REFRESH_TURNS,
        memory_answers: answers.Mode = "direct",
    ) -> None:
        """``memory_answers``: a question about the user's life is answered from memory as
        it is ("direct", without the model), or its evidence goes into the model's prompt
        ("model": a capable model phrases it)."""
        if budget_tokens <= 0:
            raise ValueError(f"budget_tokens must be positive, got {budget_tokens}")
        if recall_limit < 0:
            raise ValueError(f"recall_limit must be 0 or more, got {recall_limit}")
        self.persona = persona
        self.conversation_id = conversation_id
        self._memory = memory
        self._history = History(history_turns)
        self._budget_tokens = budget_tokens
        self._recall_limit = recall_limit
        self._notes_max_tokens = notes_max_tokens
        # The notes about the user sit ahead of the history in the prompt: when they change,
        # llama.cpp evaluates the whole history again (1.6-2.3 s with the bundled model on
        # two cores, the p95 of the reply latency). What is learnt during a conversation is
        # in its history or found by recall anyway, so they are refreshed rarely, and at
        # once after anything is forgotten.
        self._notes: list[str] | None = None
        self._facts: list[Fact] = []  # read with the notes: what is coming up, their name
        self._turns = 0
        self._notes_age = 0
        self._notes_refresh_turns = max(1, notes_refresh_turns)
        self._care = care
        self._memory_answers = memory_answers
        # How the user seems each turn; the voice baseline starts from the remembered turns.
        self._mood = mood if mood is not None else MoodReader(baseline=memory.voice_baseline())
        self._pending: _Pending | None = None
        self._awaiting: ForgetTopic | None = None
        # The last user turn that was stored, and the reply stored after it: "forget that".
        self._last_stored: list[tuple[Turn, int | None]] = []
        # What the store has forgotten so far (in any process): when it changes, the
        # history and caches here drop their copies before the next turn.
        self._generation = memory.forget_generation()

    @property
    def history(self) -> History:
        return self._history

    @property
    def memory(self) -> MemoryStore:
        return self._memory

    @property
    def care(self) -> Care | None:
        return self._care

    def close(self) -> None:
        """Close the long-term memory (its background indexing finishes first)."""
        self._memory.close()

    # -- recording --------------------------------------------------------------------------

    def record_user(
        self, text: str, duration_s: float | None = None, audio: AudioChunk | None = None
    ) -> None:
        """Keep the user's words now, before any reply, with how they seemed (from ``audio``
        too, when spoken). Memory commands are not kept."""
        self.prepare_user(text, duration_s, audio)
        self.commit_user()

    def prepare_user(
        self, text: str, duration_s: float | None = None, audio: AudioChunk | None = None
    ) -> Turn | None:
        """Read the user's words (command or conversation, and their mood) without keeping
        anything: a speculative turn may still be dropped. The turn, by which the later calls
        know it (None for no words); a memory command is carried out only once the turn is
        confirmed."""
        self._pending = None
        text = text.strip()
        if not text:
            return None
        self.forgotten_elsewhere()
        command = commands.parse(text, awaiting_answer=self._awaiting is not None)
        mood = self._read_mood(text, audio) if command is None else None
        turn = Turn("user", text, duration_s=duration_s, mood=mood)
        self._pending = _Pending(turn, None, command, origin=turn)
        return turn

    def is_command(self, turn: Turn) -> bool:
        """Whether the prepared ``turn`` is a memory command."""
        pending = self._current(turn.text, turn)
        return pending is not None and pending.command is not None

    def _current(self, user_text: str, turn: Turn | None) -> _Pending | None:
        """The pending words these are: ``turn`` itself when given (the runtime's turn, by
        identity), else the same words (a caller that records and then asks)."""
        pending = self._pending
        if pending is None:
            return None
        if turn is not None:
            # The turn as prepared: a forgetting meanwhile may have rewritten the words.
            return pending if (pending.origin or pending.turn) is turn else None
        return pending if pending.turn.text == user_text.strip() else None

    def commit_user(self) -> None:
        """The turn is confirmed: keep the prepared words in the history and the store (the
        one point where a user's turn is written). Memory commands are not kept."""
        pending = self._pending
        if pending is None or pending.committed:
            return
        pending.committed = True
        if pending.command is None:
            if self._awaiting is not None:
                log.info("forgetting cancelled: the user moved on")
                self._awaiting = None
            try:
                pending.stored_id = self._memory.record(pending.turn, self.conversation_id)
            finally:
                self._history.append(pending.turn, pending.stored_id)
            self._last_stored = [(pending.turn, pending.stored_id)]

    def drop_user(self) -> None:
        """The prepared words were never confirmed (the user went on): nothing is kept."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.committed:
            self._retract(pending)

    def _read_mood(self, text: str, audio: AudioChunk | None) -> MoodEstimate | None:
        try:
            mood = self._mood.read(text, audio)
        except (CompanionError, ValueError, FloatingPointError) as exc:
            log.warning("could not read the mood of this turn: %s", exc)
            return None
        log.debug("mood: %s (confidence %.2f)", mood.label, mood.confidence)
        return mood

    def record_reply(self, heard: str, interrupted: bool) -> None:
        """Keep the part of the reply the user heard (nothing, when they heard nothing)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.command is not None:
            return  # a memory command and its answer are not memories
        heard = heard.strip()
        if not heard:
            return
        turn = Turn("assistant", heard, interrupted=interrupted)
        stored_id: int | None = None
        try:
            stored_id = self._memory.record(turn, self.conversation_id)
        finally:
            self._history.append(turn, stored_id)
        if pending is not None:
            self._last_stored.append((turn, stored_id))

    def retract_user(self) -> None:
        """The user went on speaking: their recorded words will come again, joined with the
        rest, so take this partial turn back out of the history and the store."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._retract(pending)

    def _retract(self, pending: _Pending) -> None:
        if pending.command is not None:
            return
        self._history.discard([pending.turn])
        if pending.stored_id is not None:
            self._memory.retract(pending.stored_id)
        self._last_stored = []

    def record_exchange(self, user_text: str, reply_heard: str, interrupted: bool) -> None:
        """Remember a finished turn: the user's words, and the part of the reply they heard.

        An empty reply (nothing was heard) records the user's words alone.
        """
        if self._current(user_text, None) is None:
            self.record_user(user_text)
        self.record_reply(reply_heard, interrupted)

    # -- commands ---------------------------------------------------------------------------

    def command_reply(self, user_text: str, turn: Turn | None = None) -> str | None:
        """The answer given without the model: to a memory command ("forget that", ...), or
        the crisis reply; None when ``user_text`` is ordinary conversation."""
        pending = self._current(user_text, turn)
        if pending is not None:
            command = pending.command
        else:
            command = commands.parse(user_text, awaiting_answer=self._awaiting is not None)
            if command is not None:
                self._pending = _Pending(Turn("user", user_text.strip()), None, command, True)
        match command:
            case None:
                # Talk of self-harm is answered with fixed words and real resources, never
                # left to the model; the user's words are kept like any others.
                crisis = self._care.crisis_reply(user_text) if self._care is not None else None
                return crisis if crisis is not None else self._answer_from_memory(user_text)
            case RecallAboutMe():
                return self._what_i_remember()
            case ForgetLast():
                return self._forget_last()
            case ForgetTopic():
                return self._ask_to_forget(command)
            case Confirm():
                return self._forget_topic()
            case Decline():
                self._awaiting = None
                return "All right, I'll keep it."

    def _answer_from_memory(self, user_text: str) -> str | None:
        """A question about the user's life, answered from what they said (the bundled model
        would invent an answer); None for anything else, or when a capable model answers."""
        if self._memory_answers != "direct":
            return None
        question = answers.recognise(user_text)
        if question is None:
            return None
        pending = self._pending
        exclude = pending.stored_id if pending is not None else None
        found = answers.find(question, self._memory, exclude)
        if not found and not question.personal:
            return None  # "who is X", unknown here: perhaps general knowledge
        log.info("answered from memory: %s (%d facts, %d turns)", question.target,
                 len(found.facts), len(found.said))  # fmt: skip
        return answers.spoken(question, found, self._memory.now())

    def _evidence(self, user_text: str, exclude: int | None) -> list[str]:
        """For a capable model: what memory holds that answers a question about the user."""
        if self._memory_answers != "model":
            return []
        question = answers.recognise(user_text)
        if question is None:
            return []
        found = answers.find(question, self._memory, exclude)
        return answers.evidence_lines(question, found, self._memory.now())

    def _what_i_remember(self) -> str:
        facts = self._memory.summary(SUMMARY_FACTS)
        if not facts:
            return "I don't know much about you yet. Tell me about yourself!"
        listed = facts[0] if len(facts) == 1 else ", ".join(facts[:-1]) + " and " + facts[-1]
        return f"I remember that {listed}. You can ask me to forget any of it."

    def _forget_last(self) -> str:
        stored = self._last_stored
        self._last_stored = []
        if not stored:
            return "There's nothing for me to forget just now."
        self._history.discard([turn for turn, _ in stored])
        ids = [i for _, i in stored if i is not None]
        self._memory.forget(ids, ())
        self._notes = None
        log.info("forgot the last exchange (%d stored turns)", len(ids))
        return "Okay, I've forgotten that."

    def _ask_to_forget(self, command: ForgetTopic) -> str:
        found = self._memory.topic_matches(command.topic)
        # Messages the store does not hold (no long-term memory) are counted here.
        unstored = self._unstored_about(Topic.of(command.topic))
        phrase = command.phrase or command.topic
        if not found and not unstored:
            self._awaiting = None
            return f"I don't remember anything about {phrase}."
        self._awaiting = command
        count = len(found) + unstored
        things = "one thing" if count == 1 else f"{count} things"
        return f"I remember {things} about {phrase}. Shall I forget it all, for good?"

    def _forget_topic(self) -> str:
        command, self._awaiting = self._awaiting, None
        if command is None:
            return "Okay."
        found = self._memory.topic_matches(command.topic)
        self._memory.forget_topic(found)
        # The stored messages of the history follow the store (deleted or rewritten, as
        # there); the others are rewritten by the same matcher.
        self.forgotten_elsewhere()
        topic = Topic.of(command.topic)
        self._apply(
            self._history.edit(lambda t, i: (topic.redact(t.text) or None) if i is None else t.text)
        )
        self._notes = None
        self._last_stored = []
        log.info(
            "forgot a topic: %d turns deleted, %d rewritten, %d facts",
            len(found.turn_ids),
            len(found.redactions),
            len(found.fact_ids),
        )
        return f"Done. I've forgotten everything about {command.phrase or command.topic}."

    def _unstored_about(self, topic: Topic) -> int:
        return sum(
            1
            for turn, stored_id in self._history.entries()
            if stored_id is None and topic.matches(turn.text)
        )

    # -- forgetting done elsewhere ------------------------------------------------------------

    def forgotten_elsewhere(self) -> bool:
        """Drop what the store has forgotten since the last look, in this process or another
        (``memory forget`` from the CLI while this one runs): forgotten messages leave the
        history, rewritten ones are replaced, the notes are read again. One cheap read when
        nothing changed; called before each turn, and when the daemon is told. True when
        something had been forgotten."""
        generation = self._memory.forget_generation()
        if generation == self._generation:
            return False
        self._generation = generation
        self._apply(
            self._history.keep_stored(self._memory.stored_texts(self._history.stored_ids()))
        )
        self._notes = None
        return True

    def _apply(self, changed: dict[int, Turn | None]) -> None:
        """Make the turns held beside the history follow its rewritten or dropped messages."""
        if not changed:
            return
        last: list[tuple[Turn, int | None]] = []
        for turn, stored_id in self._last_stored:
            new = changed.get(id(turn), turn)
            if new is not None:
                last.append((new, stored_id))
        self._last_stored = last
        pending = self._pending
        if pending is not None and id(pending.turn) in changed:
            new = changed[id(pending.turn)]
            if new is None:
                pending.stored_id = None
            else:
                pending.turn = new

    # -- the prompt -------------------------------------------------------------------------

    def messages_for(self, user_text: str, turn: Turn | None = None) -> list[ChatMessage]:
        """The chat prompt answering ``user_text`` (the prepared ``turn``, when given):
        persona, notes about the user, history, recollections, then the new text."""
        self.forgotten_elsewhere()
        recent = self._history.recent()
        pending = self._current(user_text, turn)
        exclude_id: int | None = None
        hint: str | None = None
        if pending is not None:
            exclude_id = pending.stored_id
            hint = mood_hint(pending.turn.mood)
            if recent and recent[-1] is pending.turn:
                recent = recent[:-1]  # recorded already: it is the new text, not history
        recollections: list[Recollection] = []
        if user_text.strip() and self._recall_limit:
            # Turns still in the history are already in the prompt; quoting them again as
            # memories would only spend tokens.
            in_history = {t.text.strip() for t in self._history.recent()}
            recollections = [
                r
                for r in self._memory.recall(
                    user_text, self._recall_limit + (exclude_id is not None)
                )
                if r.text.strip() not in in_history
                and r.speaker == "user"  # the companion's own replies are not about the user
                and (exclude_id is None or r.turn_id != exclude_id)
            ][: self._recall_limit]
        notes = self._current_notes()
        # The persona's lore the last words bring up, and its after-history instructions:
        # per turn, so with the new words, never in the cached system message.
        scanned = [t.text for t in recent[-LORE_SCAN_TURNS:]] + [user_text]
        context = [
            *self.persona.context_for(scanned),
            *self._evidence(user_text, exclude_id),
            *self._unasked(user_text, hint is not None),
            *([hint] if hint else []),
        ]
        messages = build_messages(
            self.persona,
            recent,
            recollections,
            user_text,
            self._budget_tokens,
            notes,
            "\n".join(context) or None,
        )
        log.debug(
            "prompt: %d messages, about %d tokens, %d recollections and %d notes offered",
            len(messages),
            prompt_tokens(messages),
            len(recollections),
            len(notes),
        )
        return messages

    def _current_notes(self) -> list[str]:
        self._notes_age += 1
        if self._notes is None or self._notes_age > self._notes_refresh_turns:
            self._notes = self._fit_notes(self._memory.notes())
            self._facts = self._memory.known_facts()
            self._notes_age = 1
        return self._notes

    def _unasked(self, user_text: str, feeling: bool) -> list[str]:
        """What the companion brings up unasked this turn: what is coming up in the next days
        that the words (or a notable mood) relate to, and now and then the name they like."""
        self._turns += 1
        lines = unasked.upcoming(self._facts, self._memory.now(), user_text, feeling)
        name = unasked.name_hint(unasked.preferred_name(self._facts), self._turns)
        return [*lines, *([name] if name else [])]

    def _fit_notes(self, notes: list[str]) -> list[str]:
        kept: list[str] = []
        spent = 0
        for note in notes:
            cost = estimate_tokens(note) + 1
            if spent + cost > self._notes_max_tokens:
                break
            kept.append(note)
            spent += cost
        return kept
