"""Hybrid retrieval: full-text BM25, dense vectors and recency, fused into one ranking.

Each method proposes its own candidates: FTS5's BM25 over the words (Porter-stemmed) and the
cosine similarity of MiniLM vectors over the meaning. Over the union, each score is scaled to
0..1 (BM25 by the best BM25 score; cosine between the lowest and highest candidate), recency
is the turn's place from newest (1) to oldest (0) among the candidates, and the three are
summed with their weights. Scaled scores keep how much better the best match is, which rank
fusion would flatten, so recency can settle near-ties without burying a clearly better, older
memory. Vectors are cached in memory.db and held in memory as one matrix, refreshed
incrementally as the background indexer adds more.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from voice_companion.engines.embedder import Embedder
from voice_companion.memory.store import MemoryDb, StoredTurn
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
    dense: float = 1.0
    recency: float = 0.2


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
        self._state = (0, 0)
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
            self._state = (0, 0)

    def refresh(self) -> None:
        state = self._db.embedding_state(self._model_id)
        with self._lock:
            if state == self._state:
                return
            count, high = state
            known_count, known_high = self._state
            if high >= known_high and count - known_count == self._count_above(known_high):
                rows = self._db.embeddings_since(self._model_id, known_high)
                self._append(rows)
            else:  # something was deleted (or replaced): reload everything
                self._ids = np.zeros(0, dtype=np.int64)
                self._matrix = np.zeros((0, self._dimensions), dtype=np.float32)
                self._append(self._db.embeddings_since(self._model_id, 0))
            self._state = (len(self._ids), int(self._ids[-1]) if len(self._ids) else 0)

    def _count_above(self, known_high: int) -> int:
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT count(*) FROM embeddings WHERE model = ? AND turn_id > ?",
                (self._model_id, known_high),
            ).fetchone()
        return int(row[0])

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
    ) -> None:
        self._db = db
        self._embedder = embedder
        self.weights = weights
        self.candidates = candidates
        self._vectors = (
            None if embedder is None else VectorIndex(db, embedder.model_id, embedder.dimensions)
        )

    def forget_cache(self) -> None:
        """Something was forgotten or rewritten: no vector of it may stay in memory."""
        if self._vectors is not None:
            self._vectors.clear()

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
        if use_bm25:
            bm25 = self._db.search_text(fts_query(query), pool)
        if use_dense and self._embedder is not None and self._vectors is not None:
            self._vectors.refresh()
            if len(self._vectors):
                vector = self._embedder.embed([query])[0]
                dense = self._vectors.nearest(vector, pool)
        ids = list(dict.fromkeys([t for t, _ in bm25] + [t for t, _ in dense]))
        turns = self._db.turns_by_id(ids)  # turns forgotten since their vector was cached drop out
        similarity = dict(dense)
        w = self.weights
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
        hits: list[Hit] = []
        for turn_id, turn in turns.items():
            score = (
                weights["bm25"] * bm25_norm.get(turn_id, 0.0)
                + weights["dense"] * dense_norm.get(turn_id, 0.0)
                + weights["recency"] * (1.0 - age_rank[turn_id] / span)
            )
            hits.append(
                Hit(
                    turn=turn,
                    score=score,
                    bm25_rank=bm25_rank.get(turn_id),
                    dense_rank=dense_rank.get(turn_id),
                    recency_rank=age_rank[turn_id] + 1,
                    similarity=similarity.get(turn_id),
                )
            )
        hits.sort(key=lambda h: (-h.score, -h.turn.id))
        return hits[:limit]


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
