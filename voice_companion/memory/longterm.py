"""LongTermMemory: the dialogue's ``MemoryStore`` over memory.db.

Recording a turn commits it (durably) and runs the rule-based fact extractor at once; the
embedding of the turn, and the LLM fact extractor when enabled, run afterwards on a background
thread ("memory-indexer"), off the reply's critical path. A turn not embedded yet (or whose
embedding was lost in a crash) is still found by its words, and is embedded later: on the next
record, or by ``index_pending``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from voice_companion.config import MemoryConfig, threads_for
from voice_companion.dialogue.history import Turn
from voice_companion.dialogue.mood import BASELINE_WINDOW, VoiceBaseline
from voice_companion.engines import ChatModel
from voice_companion.engines.embedder import DIMENSIONS, MODEL_ID, Embedder, Vectors
from voice_companion.errors import CompanionError, EmbedderError
from voice_companion.memory.facts import FactBook, FactExtractor, LlmExtractor, RuleExtractor
from voice_companion.memory.facts import describe as describe_fact
from voice_companion.memory.forgetting import plan_ids, plan_topic
from voice_companion.memory.profile import build_profile, recent_mood_line
from voice_companion.memory.retrieval import Hit, RankWeights, Retriever, vector_blob
from voice_companion.memory.seam import Recollection, TopicMatches
from voice_companion.memory.store import (
    FILENAME,
    RECORDING,
    Fact,
    MemoryDb,
    NewTurn,
    Saving,
    StoredTurn,
)

log = logging.getLogger(__name__)

MIN_SIMILARITY = 0.3
"""A recollection found only by meaning must be at least this similar (cosine) to be quoted."""
INDEX_BATCH = 32
NOTES_FACTS = 12


def weights_of(config: MemoryConfig) -> RankWeights:
    """The ranking weights ``config`` sets."""
    return RankWeights(
        bm25=config.bm25_weight,
        dense=config.dense_weight,
        recency=config.recency_weight,
        neighbour=config.neighbour_weight,
        speaker=config.speaker_weight,
        coverage=config.coverage_weight,
        time=config.time_weight,
        facts=config.facts_weight,
    )


def now() -> datetime:
    """The local time, with its UTC offset."""
    return datetime.now().astimezone()


@functools.lru_cache(maxsize=4)
def shared_minilm(threads: int) -> Embedder:
    """One MiniLM per process (and thread count): every store in the process shares it."""
    from voice_companion.engines.embedder import MiniLmEmbedder

    return MiniLmEmbedder(threads=threads)


class LazyEmbedder:
    """The bundled MiniLM, loaded on first use (0.3-0.5 s), so opening memory is instant."""

    model_id = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._failed: EmbedderError | None = None

    def load(self) -> Embedder:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            try:
                return shared_minilm(self._threads)
            except EmbedderError as exc:
                log.warning("%s; memory falls back to word search", exc)
                self._failed = exc
                raise

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.load().embed(texts)


class LongTermMemory:
    """Every turn on disk, recalled by words, meaning and time; facts and a profile on top."""

    def __init__(
        self,
        db: MemoryDb,
        config: MemoryConfig,
        embedder: Embedder | None = None,
        llm: ChatModel | None = None,
        clock: Callable[[], datetime] = now,
        recording: bool = False,
    ) -> None:
        """``recording``: the conversations recorded here are answered from a recording
        (``run --input``): kept, but not learnt from, recalled or part of the profile."""
        self.db = db
        self._recording = recording
        self.config = config
        if embedder is None and config.dense:
            embedder = LazyEmbedder(threads_for(config.embed_threads))
        self._embedder = embedder if config.dense else None
        self.retriever = Retriever(
            db,
            self._embedder,
            weights_of(config),
            config.candidates,
            clock,
        )
        self._rules: list[FactExtractor] = [RuleExtractor()]
        self._llm_extractor = LlmExtractor(llm) if llm is not None else None
        self.facts = FactBook(db, self._rules)
        self._clock = clock
        self._llm_queue: list[StoredTurn] = []
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._closed = False
        self._generation = db.forget_generation()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        config: MemoryConfig,
        embedder: Embedder | None = None,
        llm: ChatModel | None = None,
    ) -> LongTermMemory:
        return cls(MemoryDb(data_dir / FILENAME, config.busy_timeout_ms), config, embedder, llm)

    def close(self) -> None:
        """Finish the background work in hand, then close the database."""
        self._closed = True
        worker = self._worker
        if worker is not None:
            worker.join(timeout=30)
        self.retriever.close()
        self.db.close()

    # -- MemoryStore ------------------------------------------------------------------------

    def record(self, turn: Turn, conversation_id: str) -> int | None:
        at = self._clock()
        stored = self.db.add_turn(
            NewTurn(
                conversation_id=conversation_id,
                at=at,
                speaker=turn.role,
                text=turn.text,
                source_id="",  # the conversation's next number, from its stored sequence
                duration_s=turn.duration_s,
                interrupted=turn.interrupted,
                mood=turn.mood,
                conversation_source=RECORDING if self._recording else "live",
            )
        )
        if turn.role == "user" and not self._recording:
            self.facts.learn(stored)
            if self._llm_extractor is not None:
                with self._worker_lock:
                    self._llm_queue.append(stored)
        self._kick()
        return stored.id

    def recall(self, query: str, limit: int) -> list[Recollection]:
        # Only what the user said: the companion's own replies stay in memory.db (for "what
        # did you tell me"), but a reply that made something up must not come back as a
        # memory about them. Searched wider, as the companion's turns are dropped after.
        hits = self.search(query, max(limit * 2, limit + 5)) if limit > 0 else []
        return [
            Recollection(h.turn.text, h.turn.at, h.turn.speaker, h.turn.source_id, h.turn.id)
            for h in hits
            if h.turn.speaker == "user"
            and (h.bm25_rank is not None or (h.similarity or 0.0) >= MIN_SIMILARITY)
        ][:limit]

    def retract(self, turn_id: int) -> None:
        self.db.retract_turn(turn_id)
        self.retriever.drop([turn_id])

    def notes(self) -> list[str]:
        facts = self.db.facts(valid_only=True)
        profile = build_profile(facts, self._user_turns(), self._clock())
        # The name and the preferences are the profile's.
        kept = [f for f in facts if f.kind not in ("name", "preferred_name", "preference")]
        shown = _by_importance(kept)
        said: list[str] = []
        for fact in shown[:NOTES_FACTS]:
            # Second person, as the companion would say it to them; their words in quotes.
            sentence = describe_fact(fact, you=True, quote=True)
            said.append(sentence[:1].upper() + sentence[1:] + ".")
        return [*profile.about(), *profile.style(), *said]  # facts last: cut first to fit

    def summary(self, limit: int) -> list[str]:
        facts = _by_importance(self.db.facts(valid_only=True))
        said = [describe_fact(f, you=True) for f in facts[:limit]]
        felt = recent_mood_line(self._user_turns(), self._clock())
        return [*said[: limit - 1], felt] if felt and limit > 0 else said

    def voice_baseline(self) -> VoiceBaseline:
        spoken = [t.mood.prosody for t in self._user_turns() if t.mood and t.mood.prosody]
        return VoiceBaseline.of(spoken[-BASELINE_WINDOW:])

    def topic_matches(self, topic: str) -> TopicMatches:
        return plan_topic(self.db, topic)

    def forget(self, turn_ids: Sequence[int], fact_ids: Sequence[int]) -> int:
        return self.forget_topic(plan_ids(self.db, turn_ids, fact_ids))

    def forget_topic(self, matches: TopicMatches) -> int:
        done = self.db.erase(matches)
        self.forget_generation()  # this process's own caches go at once
        return done.total

    def forget_generation(self) -> int:
        generation = self.db.forget_generation()
        if generation != self._generation:
            # Something was forgotten (here or in another process): cached vectors of it go,
            # and turns waiting for the LLM extractor are read again (gone, or rewritten).
            self._generation = generation
            self.retriever.forget_cache()
            with self._worker_lock:
                queued = self._llm_queue
            looked = {t.id for t in queued if t.id > 0}  # a queued write is not in the file yet
            if looked:
                now = self.db.turns_by_id(sorted(looked))
                with self._worker_lock:
                    self._llm_queue = [
                        now.get(t.id, t)
                        for t in self._llm_queue
                        if t.id not in looked or t.id in now
                    ]
        return generation

    def stored_texts(self, turn_ids: Sequence[int]) -> dict[int, str | None]:
        return self.db.stored_texts(turn_ids)

    def said(self, query: str, limit: int, speaker: str = "user") -> list[Recollection]:
        # Asked for more than ``limit``: the other speaker's turns are dropped after the search.
        hits = self.search(query, max(limit * 4, limit + 20))
        return [
            Recollection(h.turn.text, h.turn.at, h.turn.speaker, h.turn.source_id, h.turn.id)
            for h in hits
            if h.turn.speaker == speaker
            and (h.bm25_rank is not None or (h.similarity or 0.0) >= MIN_SIMILARITY)
        ][:limit]

    def known_facts(self) -> list[Fact]:
        # Read again only when the facts changed (one cheap count): 10,000 facts take about
        # 100 ms to read, and every question about the user asks for them.
        with self.db.reading() as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(max(id), 0), count(valid_to) FROM facts"
            ).fetchone()
        version = (self.forget_generation(), *(int(v) for v in row))
        cached = self._known_facts
        if cached is None or cached[0] != version:
            cached = self._known_facts = (version, self.db.facts(valid_only=True))
        return list(cached[1])

    def now(self) -> datetime:
        return self._clock()

    # -- beyond the seam --------------------------------------------------------------------

    @property
    def saving(self) -> Saving:
        """Whether what is said is in memory.db, or waiting for it (a full disk, a lock)."""
        return self.db.saving

    def search(self, query: str, limit: int, mode: str = "hybrid") -> list[Hit]:
        if mode not in ("hybrid", "bm25", "dense"):
            raise ValueError(f"unknown search mode {mode!r}")
        try:
            return self.retriever.search(query, limit, mode)  # type: ignore[arg-type]
        except EmbedderError:
            return self.retriever.search(query, limit, "bm25")

    def index_pending(self, batch: int = INDEX_BATCH) -> int:
        """Embed every turn that has no cached vector yet, now; how many were embedded."""
        if self._embedder is None:
            return 0
        done = 0
        while rows := self.db.unembedded(self._embedder.model_id, batch):
            vectors = self._embedder.embed([text for _, text in rows])
            self.db.put_embeddings(
                self._embedder.model_id,
                [(turn_id, vector_blob(v)) for (turn_id, _), v in zip(rows, vectors, strict=True)],
            )
            done += len(rows)
        return done

    def learn_facts_again(self) -> int:
        """Run the fact extractors over every stored user turn (after an import)."""
        stored = 0
        for turn in self.db.turns(recordings=False):
            stored += self.facts.learn(turn)
        return stored

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait for the background indexer to finish what it has (tests, export)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)
            return not worker.is_alive()
        return True

    def _user_turns(self) -> list[StoredTurn]:
        return [t for t in self.db.turns(limit=400, recordings=False) if t.speaker == "user"]

    # -- the background indexer -------------------------------------------------------------

    def _kick(self) -> None:
        if self._closed or (self._embedder is None and self._llm_extractor is None):
            return
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                self._again = True
                return
            self._again = False
            self._worker = threading.Thread(target=self._work, name="memory-indexer", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        """Embed new turns and run the LLM extractor, then end (restarted on the next turn)."""
        try:
            while True:
                self.index_pending()
                with self._worker_lock:
                    queued, self._llm_queue = self._llm_queue, []
                for turn in queued:
                    if self._llm_extractor is not None:
                        self.facts.learn(turn, [self._llm_extractor])
                with self._worker_lock:
                    if not self._again and not self._llm_queue:
                        return
                    self._again = False
        except EmbedderError:
            return  # already logged once; word search still works
        except CompanionError as exc:
            log.warning("memory indexing stopped: %s", exc)
        except Exception:
            log.exception("memory indexing failed")

    _again = False
    _known_facts: tuple[tuple[int, ...], list[Fact]] | None = None


_IMPORTANCE = {
    "preferred_name": 0, "name": 1, "relation": 2, "trait": 3, "work": 4, "location": 5,
    "allergy": 6, "birthday": 7, "anniversary": 8, "event": 9, "plan": 10, "health": 11,
    "hobby": 12, "like": 13, "dislike": 14, "age": 15, "preference": 16,
}  # fmt: skip


def _by_importance(facts: Sequence[Fact]) -> list[Fact]:
    """Most important kinds first; within a kind, the most recent first."""
    return sorted(facts, key=lambda f: (_IMPORTANCE.get(f.kind, 99), -f.valid_from.timestamp()))
