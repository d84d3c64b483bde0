"""Hybrid retrieval: full-text BM25, dense vectors and recency fused, then re-ranked cheaply.

Each method proposes its own candidates: FTS5's BM25 over the words (Porter-stemmed) and the
cosine similarity of MiniLM vectors over the meaning. Over the union, each score is scaled to
0..1 (BM25 by the best BM25 score; cosine between the lowest and highest candidate), recency
is the turn's place from newest (1) to oldest (0) among the candidates, and the three are
summed with their weights. Scaled scores keep how much better the best match is, which rank
fusion would flatten, so recency can settle near-ties without burying a clearly better, older
memory. Vectors are cached in memory.db and held in memory as one matrix, refreshed
incrementally as the background indexer adds more.

The fused candidates are then re-ranked with what the memory literature finds works on
verbatim turns, each cheap (no model) and each with its own weight (0 turns it off):

- *neighbour*: a turn takes part of the score of the turn just before or after it in the same
  conversation, since an answer often only makes sense after its question ("what's his
  name?" / "Biscuit");
- *speaker*: turns said by the one the query names ("what did Tom say"), or by the user when
  the query speaks in the first person ("what's my dog called");
- *coverage*: the share of the query's content words the turn contains, which BM25's OR
  query and a sentence vector both blur;
- *time*: turns said inside the period the query names ("last summer", "in May",
  "yesterday"; see ``timewords``);
- *facts*: the turns a fact matching the query was learnt from, since a fact carries the
  words people ask about it with ("what's my job" meets "I work as a nurse"; ``factkeys``).

Weighed on LoCoMo (``voice-companion bench recall``); ``RankWeights.before()`` is the fusion
alone, kept as the benchmark's baseline.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from voice_companion.engines.embedder import Embedder
from voice_companion.memory.factkeys import FactKeys
from voice_companion.memory.store import MemoryDb, StoredTurn
from voice_companion.memory.timewords import period_named
from voice_companion.memory.topic import STOPWORDS

__all__ = [
    "STOPWORDS",
    "Hit",
    "RankWeights",
    "Retriever",
    "VectorIndex",
    "fts_query",
    "vector_blob",
]

Mode = Literal["hybrid", "bm25", "dense"]


@dataclass(frozen=True)
class RankWeights:
    """How much each ranked list counts in the fusion; 0 turns a method off."""

    bm25: float = 1.0
    dense: float = 0.5
    recency: float = 0.05
    neighbour: float = 0.35
    """Share of the best adjacent turn's fused score a turn takes (question, then answer)."""
    speaker: float = 0.5
    """Added to turns by the speaker the query names (or the user's, for "I", "my")."""
    coverage: float = 0.5
    """Times the share of the query's content words found in the turn."""
    time: float = 0.5
    """Added to turns said inside the period the query names."""
    facts: float = 1.5
    """Times the share of the query's content words a fact learnt from the turn has."""

    @classmethod
    def before(cls) -> RankWeights:
        """The fusion alone, as it was before re-ranking (the benchmark's baseline)."""
        return cls(bm25=1.0, dense=1.0, recency=0.2, neighbour=0.0, speaker=0.0, coverage=0.0,
                   time=0.0, facts=0.0)  # fmt: skip

    @property
    def reranks(self) -> bool:
        terms = (self.neighbour, self.speaker, self.coverage, self.time, self.facts)
        return any(w > 0 for w in terms)


@dataclass(frozen=True)
class Hit:
    """One retrieved turn with its receipt and how each method ranked it (1 = best)."""

    turn: StoredTurn
    score: float
    bm25_rank: int | None
    dense_rank: int | None
    recency_rank: int | None
    similarity: float | None
    """Cosine similarity of the turn to the query, when dense search ran."""


def fts_query(text: str) -> str:
    """An FTS5 query matching any content word of ``text`` (each quoted: no FTS syntax)."""
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.lower())
    seen: list[str] = []
    for word in words:
        if len(word) < 2 or word in STOPWORDS or word in seen:
            continue
        seen.append(word)
    return " OR ".join(f'"{w}"' for w in seen)


class VectorIndex:
    """The cached vectors of one model as a matrix, refreshed from memory.db when it changed."""

    def __init__(self, db: MemoryDb, model_id: str, dimensions: int) -> None:
        self._db = db
        self._model_id = model_id
        self._dimensions = dimensions
        self._ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, dimensions), dtype=np.float32)
        self._state: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[int]:
        """The turns whose vectors are held in memory now."""
        with self._lock:
            return [int(i) for i in self._ids]

    def clear(self) -> None:
        """Drop every cached vector (something was forgotten); the next search reloads."""
        with self._lock:
            self._ids = np.zeros(0, dtype=np.int64)
            self._matrix = np.zeros((0, self._dimensions), dtype=np.float32)
            self._state = None

    def refresh(self) -> None:
        state = self._db.embedding_state(self._model_id)
        with self._lock:
            if state == self._state:
                return
            written, generation = state
            rows: list[tuple[int, bytes]] | None = None
            if self._state is not None and generation == self._state[1]:
                high = int(self._ids[-1]) if len(self._ids) else 0
                rows = self._db.embeddings_since(self._model_id, high)
                if len(rows) != written - self._state[0]:
                    rows = None  # written below the newest held, or replaced: reload
            if rows is None:  # first use, something forgotten, or out of order
                self._ids = np.zeros(0, dtype=np.int64)
                self._matrix = np.zeros((0, self._dimensions), dtype=np.float32)
                rows = self._db.embeddings_since(self._model_id, 0)
            self._append(rows)
            self._state = state

    def drop(self, turn_ids: Sequence[int]) -> None:
        """Let go of the vectors of these turns (a retracted turn) without a reload."""
        with self._lock:
            keep = ~np.isin(self._ids, np.asarray(list(turn_ids), dtype=np.int64))
            if not keep.all():
                self._ids, self._matrix = self._ids[keep], self._matrix[keep]

    def _append(self, rows: Sequence[tuple[int, bytes]]) -> None:
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        blob = b"".join(r[1] for r in rows)
        vectors = np.frombuffer(blob, dtype=np.float16).reshape(len(rows), self._dimensions)
        self._ids = np.concatenate([self._ids, ids])
        self._matrix = np.concatenate([self._matrix, vectors.astype(np.float32)])

    def nearest(self, query: npt.NDArray[np.float32], limit: int) -> list[tuple[int, float]]:
        """(turn id, cosine similarity), most similar first."""
        with self._lock:
            ids, matrix = self._ids, self._matrix
        if not len(ids) or limit <= 0:
            return []
        scores = matrix @ query.astype(np.float32)
        if limit < len(scores):
            top = np.argpartition(-scores, limit)[:limit]
        else:
            top = np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top]


def vector_blob(vector: npt.NDArray[np.float32]) -> bytes:
    """How a vector is cached in memory.db: float16, little-endian (768 bytes for MiniLM)."""
    return vector.astype("<f2").tobytes()


class Retriever:
    """Search memory.db by words, by meaning and by time, and fuse the three rankings."""

    def __init__(
        self,
        db: MemoryDb,
        embedder: Embedder | None,
        weights: RankWeights = RankWeights(),
        candidates: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        """``clock``: the moment of a question, against which "last summer" is read."""
        self._db = db
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._facts = FactKeys(db, content_words)
        self._embedder = embedder
        self.weights = weights
        self.candidates = candidates
        self._vectors = (
            None if embedder is None else VectorIndex(db, embedder.model_id, embedder.dimensions)
        )

    def _word_search(self, words: str, pool: int) -> Future[list[tuple[int, float]]]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="memory-words")
            return self._pool.submit(self._db.search_text, words, pool)

    def close(self) -> None:
        """Stop the word-search thread (started on the first hybrid search)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def with_weights(self, weights: RankWeights) -> Retriever:
        """The same memory ranked with other weights, sharing the vectors held in memory."""
        other = Retriever(self._db, None, weights, self.candidates, self._clock)
        other._embedder, other._vectors, other._facts = self._embedder, self._vectors, self._facts
        return other

    def forget_cache(self) -> None:
        """Something was forgotten or rewritten: no vector (or fact) of it may stay in memory."""
        self._facts.clear()
        if self._vectors is not None:
            self._vectors.clear()

    def drop(self, turn_ids: Sequence[int]) -> None:
        """These turns are gone (retracted): their vectors go from memory too."""
        if self._vectors is not None:
            self._vectors.drop(turn_ids)

    def cached_turn_ids(self) -> list[int]:
        """The turns whose vectors this process holds in memory."""
        return [] if self._vectors is None else self._vectors.ids()

    @property
    def dense_available(self) -> bool:
        return self._embedder is not None and self.weights.dense > 0

    def search(self, query: str, limit: int, mode: Mode = "hybrid") -> list[Hit]:
        if limit <= 0 or not query.strip():
            return []
        pool = max(self.candidates, limit)
        bm25: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        use_bm25 = mode in ("hybrid", "bm25") and (self.weights.bm25 > 0 or mode == "bm25")
        use_dense = mode in ("hybrid", "dense") and self._embedder is not None
        use_dense = use_dense and (self.weights.dense > 0 or mode == "dense")
        words = fts_query(query)
        # Both at once: SQLite, onnxruntime and numpy each let go of the GIL, so the word
        # search runs on the other core while the query is embedded and compared.
        pending = self._word_search(words, pool) if use_bm25 and use_dense else None
        if use_bm25 and pending is None:
            bm25 = self._db.search_text(words, pool)
        try:
            if use_dense and self._embedder is not None and self._vectors is not None:
                self._vectors.refresh()
                if len(self._vectors):
                    vector = self._embedder.embed([query])[0]
                    dense = self._vectors.nearest(vector, pool)
        finally:
            if pending is not None:
                bm25 = pending.result()
        ids = list(dict.fromkeys([t for t, _ in bm25] + [t for t, _ in dense]))
        w = self.weights
        reranking = mode == "hybrid" and w.reranks
        # One read for the candidates and, when re-ranking, the turns beside them.
        beside = [i for t in ids for i in (t - 1, t + 1)] if reranking and w.neighbour > 0 else []
        by_fact = self._facts.turns_for(content_words(query)) if reranking and w.facts > 0 else {}
        fetched = self._db.turns_by_id(list(dict.fromkeys(ids + beside + list(by_fact))))
        # Turns forgotten since their vector was cached drop out.
        turns = {t: fetched[t] for t in ids if t in fetched}
        similarity = dict(dense)
        weights = {
            "bm25": w.bm25 if mode == "hybrid" else float(mode == "bm25"),
            "dense": w.dense if mode == "hybrid" else float(mode == "dense"),
            "recency": w.recency if mode == "hybrid" else 0.0,
        }
        # Ties within a list go to the newer turn.
        newest_first = sorted(turns, key=lambda t: (turns[t].at.timestamp(), t), reverse=True)
        age_rank = {t: i for i, t in enumerate(newest_first)}
        bm25_kept = sorted(
            ((t, v) for t, v in bm25 if t in turns), key=lambda x: (-x[1], age_rank[x[0]])
        )
        dense_kept = sorted(
            ((t, v) for t, v in dense if t in turns), key=lambda x: (-x[1], age_rank[x[0]])
        )
        bm25_rank = _ranks(bm25_kept)
        dense_rank = _ranks(dense_kept)
        bm25_norm = _scaled(bm25_kept, floor=0.0)
        dense_norm = _scaled(dense_kept, floor=None)
        span = max(1, len(newest_first) - 1)
        scores = {
            turn_id: weights["bm25"] * bm25_norm.get(turn_id, 0.0)
            + weights["dense"] * dense_norm.get(turn_id, 0.0)
            + weights["recency"] * (1.0 - age_rank[turn_id] / span)
            for turn_id in turns
        }
        if reranking and turns:
            scores = self._rerank(query, turns, fetched, scores, by_fact)
            for turn_id in turns.keys() - age_rank.keys():  # neighbours brought in
                age_rank[turn_id] = len(age_rank)
        hits = [
            Hit(
                turn=turn,
                score=scores[turn_id],
                bm25_rank=bm25_rank.get(turn_id),
                dense_rank=dense_rank.get(turn_id),
                recency_rank=age_rank[turn_id] + 1,
                similarity=similarity.get(turn_id),
            )
            for turn_id, turn in turns.items()
        ]
        hits.sort(key=lambda h: (-h.score, -h.turn.id))
        return hits[:limit]

    def _rerank(
        self,
        query: str,
        turns: dict[int, StoredTurn],
        fetched: dict[int, StoredTurn],
        fused: dict[int, float],
        by_fact: dict[int, float],
    ) -> dict[int, float]:
        """The fused scores with the neighbour, speaker, coverage, time and fact terms added;
        ``turns`` gains the neighbours it brings in (same conversation, adjacent ids) and the
        turns facts matching the query came from."""
        w = self.weights
        scores = dict(fused)
        for turn_id, share in by_fact.items():
            if turn_id in fetched:
                turns[turn_id] = fetched[turn_id]
                scores[turn_id] = scores.get(turn_id, 0.0) + w.facts * share
        if w.neighbour > 0:
            found = dict(turns)
            for turn_id, turn in fetched.items():
                if turn_id in found:
                    continue
                beside = [found.get(turn_id - 1), found.get(turn_id + 1)]
                if any(b is not None and b.conversation_id == turn.conversation_id for b in beside):
                    turns[turn_id] = turn
                    scores[turn_id] = 0.0
            for turn_id, turn in turns.items():
                adjacent = [
                    fused.get(i, 0.0)
                    for i in (turn_id - 1, turn_id + 1)
                    if i in turns and turns[i].conversation_id == turn.conversation_id
                ]
                scores[turn_id] += w.neighbour * max(adjacent, default=0.0)
        said = query_words(query)
        speakers = {t.speaker for t in turns.values()}
        named = {s for s in speakers if s.lower() in said} if w.speaker > 0 else set()
        if not named and w.speaker > 0 and "user" in speakers and said & FIRST_PERSON:
            named = {"user"}
        wanted = content_words(query) - {s.lower() for s in speakers}
        finder = _word_finder(wanted) if wanted and w.coverage > 0 else None
        period = period_named(query, self._clock()) if w.time > 0 else None
        for turn_id, turn in turns.items():
            if len(named) == 1 and turn.speaker in named:
                scores[turn_id] += w.speaker
            if finder is not None:
                matched = {m[0] or m[1] for m in finder.findall(turn.text.lower())}
                scores[turn_id] += w.coverage * len(matched) / len(wanted)
            if period is not None and period.holds(turn.at):
                scores[turn_id] += w.time
        return scores


FIRST_PERSON: Final = frozenset({"i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll"})


def query_words(text: str) -> set[str]:
    """The words of ``text``, lower case (apostrophes kept: "i'm")."""
    return set(re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.lower().replace("’", "'")))


FILLER: Final = frozenset(
    {"um", "uh", "er", "erm", "hmm", "mm", "like", "yeah", "okay", "ok", "well", "really",
     "just", "kinda", "basically", "actually", "literally", "know", "mean", "gonna", "wanna",
     "again", "remind"}
)  # fmt: skip
"""Words of speech that say nothing about what is asked ("um, like, you know")."""


def content_words(text: str) -> set[str]:
    """The content words of ``text``, roughly stemmed (so "painted" meets "painting")."""
    return {_stem(w) for w in query_words(text) if len(w) > 1 and w not in STOPWORDS | FILLER}


def _word_finder(stems: set[str]) -> re.Pattern[str]:
    """Finds the stems in a lower-cased text as words: a short one exactly, a longer one also
    with an ending ("paint" in "painted"), in one pass; the stem is the group that matched."""
    ordered = sorted(stems, key=len, reverse=True)  # the longest alternative first
    long = "|".join(re.escape(p) for p in ordered if len(p) >= 3) or "(?!)"
    short = "|".join(re.escape(p) for p in ordered if len(p) < 3) or "(?!)"
    return re.compile(rf"\b(?:({long})[\w']*|({short})\b)")  # over lower-cased text


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if word.endswith(("xes", "zes", "ches", "shes")) and len(word) > 5:
        return word[:-2]
    for suffix in ("ing", "ed", "s", "ly"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _ranks(scored: Sequence[tuple[int, float]]) -> dict[int, int]:
    return {turn_id: rank for rank, (turn_id, _) in enumerate(scored, 1)}


def _scaled(scored: Sequence[tuple[int, float]], floor: float | None) -> dict[int, float]:
    """Scores mapped to 0..1: the best is 1; the lowest is ``floor`` (or the list's lowest,
    when None) and maps to 0."""
    if not scored:
        return {}
    high = max(v for _, v in scored)
    low = min(v for _, v in scored) if floor is None else floor
    if high - low <= 1e-9:
        return {t: 1.0 for t, _ in scored}
    return {t: max(0.0, (v - low) / (high - low)) for t, v in scored}
