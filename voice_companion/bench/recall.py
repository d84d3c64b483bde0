"""The recall benchmark: recall@k over LoCoMo-format conversations, hybrid beside BM25.

recall@k for one question is the share of its evidence turns (dia_ids) found among the top k
retrieved for the question; the figure is the mean over questions that have evidence. The
same store is then grown with synthetic distractor turns (to 1k, 10k, 100k turns) and recall
and retrieval latency are measured again at each size, so the figures show what happens when
the conversation the question is about is 300, or 100 000, turns ago.

Synthetic turns are ordinary small talk drawn from templates; their vectors are the real
embeddings of their text (a pool of distinct sentences is embedded once and reused), so the
dense index has the true size and a realistic spread.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from voice_companion.bench.locomo import LocomoQuestion, LocomoSample, import_locomo
from voice_companion.config import MemoryConfig
from voice_companion.engines.embedder import Embedder
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.retrieval import Hit, vector_blob
from voice_companion.memory.store import MemoryDb, NewTurn

MODES = ("hybrid", "bm25")
POOL_SIZE = 2000
LATENCY_QUERIES = 50


@dataclass(frozen=True)
class SizeResult:
    turns: int
    recall: dict[str, float]
    """Mean recall@k per mode."""
    latency_ms: dict[str, dict[str, float]]
    """Per mode: p50 and p95 of one retrieval (query embedding included), milliseconds."""


@dataclass(frozen=True)
class RecallReport:
    k: int
    questions: int
    locomo_turns: int
    embed_ms_per_turn: float
    """Embedding the conversation turns in batches, per turn."""
    embed_query_ms: float
    """Embedding one short query (the median), on the reply's critical path."""
    sizes: list[SizeResult] = field(default_factory=list)
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "k": self.k,
            "questions": self.questions,
            "locomo_turns": self.locomo_turns,
            "embed_ms_per_turn": round(self.embed_ms_per_turn, 3),
            "embed_query_ms": round(self.embed_query_ms, 3),
            "by_category": self.by_category,
            "sizes": [
                {"turns": s.turns, "recall": s.recall, "latency_ms": s.latency_ms}
                for s in self.sizes
            ],
        }


def run(
    samples: Sequence[LocomoSample],
    k: int,
    sizes: Sequence[int],
    embedder: Embedder,
    config: MemoryConfig | None = None,
    progress: Callable[[str], None] = lambda _: None,
    seed: int = 7,
) -> RecallReport:
    config = config or MemoryConfig()
    questions = [(s, q) for s in samples for q in s.questions if q.evidence]
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        memory = LongTermMemory(
            MemoryDb(Path(tmp) / "memory.db", config.busy_timeout_ms), config, embedder
        )
        try:
            import_locomo(memory.db, list(samples))
            locomo_turns = memory.db.count_turns()
            started = time.perf_counter()
            memory.index_pending(batch=32)
            embed_ms = (time.perf_counter() - started) * 1000 / max(1, locomo_turns)
            query_ms = _median_ms(lambda: embedder.embed(["What did she say about the trip?"]))
            report = RecallReport(k, len(questions), locomo_turns, embed_ms, query_ms)
            progress(f"{locomo_turns} LoCoMo turns, {len(questions)} questions")
            report.sizes.append(_measure(memory, questions, k, locomo_turns))
            report.by_category.update(_by_category(memory, questions, k))
            filler = _Filler(embedder, seed, min(POOL_SIZE, max(sizes, default=0)))
            for size in sorted(sizes):
                have = memory.db.count_turns()
                if size <= have:
                    continue
                progress(f"growing the store to {size} turns")
                filler.grow(memory.db, size - have, embedder.model_id)
                report.sizes.append(_measure(memory, questions, k, size))
        finally:
            memory.close()
    return report


def _measure(
    memory: LongTermMemory,
    questions: Sequence[tuple[LocomoSample, LocomoQuestion]],
    k: int,
    size: int,
) -> SizeResult:
    recall: dict[str, float] = {}
    latency: dict[str, dict[str, float]] = {}
    memory.search("warm up", k, "hybrid")  # load the grown vector matrix before timing
    for mode in MODES:
        scores = []
        times = []
        for sample, q in questions:
            started = time.perf_counter()
            hits = memory.search(q.question, k, mode)
            times.append((time.perf_counter() - started) * 1000)
            scores.append(_recall(sample, q.evidence, hits))
        recall[mode] = round(statistics.fmean(scores), 4) if scores else 0.0
        timed = sorted(times[:LATENCY_QUERIES]) or [0.0]
        latency[mode] = {
            "p50": round(_percentile(timed, 0.5), 2),
            "p95": round(_percentile(timed, 0.95), 2),
        }
    return SizeResult(size, recall, latency)


def _by_category(
    memory: LongTermMemory, questions: Sequence[tuple[LocomoSample, LocomoQuestion]], k: int
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[tuple[LocomoSample, LocomoQuestion]]] = {}
    for sample, q in questions:
        groups.setdefault(str(q.category), []).append((sample, q))
    out: dict[str, dict[str, float]] = {}
    for category, items in sorted(groups.items()):
        out[category] = {
            mode: round(
                statistics.fmean(
                    _recall(s, q.evidence, memory.search(q.question, k, mode)) for s, q in items
                ),
                4,
            )
            for mode in MODES
        }
        out[category]["questions"] = len(items)
    return out


def _recall(sample: LocomoSample, evidence: Sequence[str], hits: Sequence[Hit]) -> float:
    prefix = f"locomo-{sample.sample_id}-"
    found = {h.turn.source_id for h in hits if h.turn.conversation_id.startswith(prefix)}
    wanted = set(evidence)
    return len(wanted & found) / len(wanted)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _median_ms(action: Callable[[], object], repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# -- synthetic distractors --------------------------------------------------------------------

_TEMPLATES = (
    "I went to the {place} with {person} on {day} and it was {adj}.",
    "{person} told me about {thing} yesterday, it sounded {adj}.",
    "We had {food} for dinner and watched a show about {thing}.",
    "The {place} was so {adj} this {day}, I could barely think.",
    "I keep meaning to call {person} about the {thing}.",
    "Did you know {person} started learning {hobby}? It's {adj}.",
    "My {day} was mostly {hobby} and a bit of {food}.",
    "I'm thinking about {hobby} again, maybe at the {place}.",
    "The weather was {adj} so we stayed in and made {food}.",
    "{person} and I argued about {thing} but it was fine in the end.",
    "Work was {adj} today, lots of meetings about {thing}.",
    "I found a {adj} little {place} near the station.",
)
_FILL: dict[str, list[str]] = {
    key: str.split(words, "/")
    for key, words in {
        "place": "park/gym/library/cafe/market/beach/museum/office/garden/cinema/bakery/pool",
        "person": "Tom/Priya/Marco/Lena/Sofia/Jamal/Chen/Olga/Ruth/Ben/Aisha/Noah",
        "day": "Monday/Tuesday/Wednesday/Thursday/Friday/Saturday/Sunday/weekend",
        "adj": "lovely/tiring/strange/busy/quiet/noisy/fun/boring/chaotic/calm/odd",
        "thing": "taxes/the football/the election/a podcast/the neighbours/a new phone/"
        "the budget/climate/a documentary/the renovation/a book/the holidays",
        "food": "pasta/curry/tacos/soup/pizza/dumplings/salad/stew/sushi/pancakes",
        "hobby": "painting/chess/running/knitting/guitar/baking/yoga/pottery/cycling",
    }.items()
}


class _Filler:
    def __init__(self, embedder: Embedder, seed: int, pool_size: int) -> None:
        self._rng = random.Random(seed)
        self._embedder = embedder
        texts: set[str] = set()
        attempts = 0
        while len(texts) < pool_size and attempts < pool_size * 20:
            attempts += 1
            template = self._rng.choice(_TEMPLATES)
            texts.add(template.format(**{k: self._rng.choice(v) for k, v in _FILL.items()}))
        self._texts = sorted(texts)
        self._blobs: list[bytes] = []
        self._made = 0

    def grow(self, db: MemoryDb, count: int, model_id: str) -> None:
        if not self._blobs and self._texts:
            vectors = self._embedder.embed(self._texts)
            self._blobs = [vector_blob(v) for v in vectors]
        with db.reading() as conn:
            row = conn.execute("SELECT min(ts) FROM turns").fetchone()
        oldest = datetime.fromtimestamp(row[0]).astimezone() if row[0] else datetime.now()
        batch = 5000
        while count > 0:
            n = min(batch, count)
            picks = [self._rng.randrange(len(self._texts)) for _ in range(n)]
            turns = []
            for i, pick in enumerate(picks):
                index = self._made + i
                turns.append(
                    NewTurn(
                        conversation_id=f"synthetic-{index // 50}",
                        # Before the real conversations: the questions are about older ones.
                        at=oldest - timedelta(minutes=10 * (index + 1)),
                        speaker="user" if index % 2 == 0 else "assistant",
                        text=self._texts[pick],
                        source_id=f"S{index}",
                    )
                )
            with db.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO conversations(id, started_at, source)"
                    " VALUES (?, ?, 'synthetic')",
                    sorted({(t.conversation_id, t.at.isoformat()) for t in turns}),
                )
            ids = db.add_turns(turns)
            db.put_embeddings(
                model_id, [(tid, self._blobs[p]) for tid, p in zip(ids, picks, strict=True)]
            )
            self._made += n
            count -= n
