"""The recall benchmark: recall@k over LoCoMo-format conversations, each ranking beside BM25.

recall@k for one question is the share of its evidence turns (dia_ids) found among the top k
retrieved for it; a figure is the mean over the questions that have evidence, of LoCoMo's
categories 1-4 (single-hop, temporal, multi-hop, open-domain; 5, the adversarial questions
about things never said, has no evidence to find). Each conversation sits in a store of its
own, as one user's memory does, and is asked at the moment just after its last session.

Three rankings run on the same stores in the same run: ``bm25`` (word search alone, the
floor), ``hybrid-before`` (BM25, MiniLM and recency fused, without re-ranking:
``RankWeights.before()``) and ``hybrid`` (the configured weights, re-ranking included).

Then every conversation goes into one store, grown with synthetic distractor turns (to 1k,
10k, 100k turns), and recall and the latency of one retrieval (query embedding included) are
measured again at each size over the first questions, so the figures show what happens when
the conversation the question is about is 300, or 100 000, turns ago. Synthetic turns are
ordinary small talk drawn from templates; their vectors are the real embeddings of their text
(a pool of distinct sentences is embedded once and reused), so the dense index has the true
size and a realistic spread.
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
from voice_companion.memory.retrieval import Hit, RankWeights, vector_blob
from voice_companion.memory.store import MemoryDb, NewTurn

METHODS = ("bm25", "hybrid-before", "hybrid")
KS = (1, 3, 5, 10)
CATEGORIES = frozenset({1, 2, 3, 4})
POOL_SIZE = 2000
LATENCY_QUERIES = 100

Search = Callable[[str, int], list[Hit]]
Asked = tuple[LocomoSample, LocomoQuestion]


@dataclass(frozen=True)
class SizeResult:
    turns: int
    questions: int
    recall: dict[str, dict[str, float]]
    """Per method, mean recall@k per k ("1", "3", ...) over the questions timed."""
    latency_ms: dict[str, dict[str, float]]
    """Per method: p50 and p95 of one retrieval (query embedding included), milliseconds."""


@dataclass(frozen=True)
class RecallReport:
    ks: tuple[int, ...]
    questions: int
    locomo_turns: int
    embed_ms_per_turn: float
    """Embedding the conversation turns in batches, per turn."""
    embed_query_ms: float
    """Embedding one short query (the median), on the reply's critical path."""
    recall: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per method, mean recall@k per k, one store per conversation."""
    by_category: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Per LoCoMo category, per method, recall@k per k."""
    category_questions: dict[str, int] = field(default_factory=dict)
    sizes: list[SizeResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "ks": list(self.ks),
            "methods": list(METHODS),
            "questions": self.questions,
            "locomo_turns": self.locomo_turns,
            "embed_ms_per_turn": round(self.embed_ms_per_turn, 3),
            "embed_query_ms": round(self.embed_query_ms, 3),
            "recall": self.recall,
            "by_category": self.by_category,
            "category_questions": self.category_questions,
            "sizes": [
                {
                    "turns": s.turns,
                    "questions": s.questions,
                    "recall": s.recall,
                    "latency_ms": s.latency_ms,
                }
                for s in self.sizes
            ],
        }


def run(
    samples: Sequence[LocomoSample],
    ks: Sequence[int],
    sizes: Sequence[int],
    embedder: Embedder,
    config: MemoryConfig | None = None,
    progress: Callable[[str], None] = lambda _: None,
    seed: int = 7,
) -> RecallReport:
    config = config or MemoryConfig()
    ks = tuple(sorted(set(ks)))
    asked = [(s, q) for s in samples for q in s.questions if _counted(q)]
    scores: dict[str, dict[int, list[float]]] = {m: {k: [] for k in ks} for m in METHODS}
    per_category: dict[str, dict[str, dict[int, list[float]]]] = {}
    turns = 0
    embed_s = 0.0
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        for n, sample in enumerate(samples):
            questions = [q for q in sample.questions if _counted(q)]
            progress(f"conversation {sample.sample_id}: {len(questions)} questions")
            memory = _memory(Path(tmp) / f"conversation-{n}.db", config, embedder, [sample])
            try:
                turns += memory.db.count_turns()
                started = time.perf_counter()
                memory.index_pending(batch=32)
                embed_s += time.perf_counter() - started
                methods = _methods(memory, config)
                for q in questions:
                    groups = per_category.setdefault(
                        str(q.category), {m: {k: [] for k in ks} for m in METHODS}
                    )
                    for method, search in methods.items():
                        hits = search(q.question, max(ks))
                        for k in ks:
                            value = _recall(sample, q.evidence, hits[:k])
                            scores[method][k].append(value)
                            groups[method][k].append(value)
            finally:
                memory.close()
        query_ms = _median_ms(lambda: embedder.embed(["What did she say about the trip?"]))
        report = RecallReport(ks, len(asked), turns, embed_s * 1000 / max(1, turns), query_ms)
        report.recall.update(_means(scores))
        for category, groups in sorted(per_category.items()):
            report.by_category[category] = _means(groups)
            report.category_questions[category] = len(groups[METHODS[0]][ks[0]])
        if sizes:
            _grow_and_measure(report, samples, asked, sizes, embedder, config, progress, seed,
                              Path(tmp))  # fmt: skip
    return report


def _grow_and_measure(
    report: RecallReport,
    samples: Sequence[LocomoSample],
    asked: Sequence[Asked],
    sizes: Sequence[int],
    embedder: Embedder,
    config: MemoryConfig,
    progress: Callable[[str], None],
    seed: int,
    tmp: Path,
) -> None:
    memory = _memory(tmp / "all.db", config, embedder, samples)
    try:
        memory.index_pending(batch=32)
        methods = _methods(memory, config)
        timed = _spread(asked, LATENCY_QUERIES)
        filler = _Filler(embedder, seed, min(POOL_SIZE, max(sizes, default=0)))
        for size in sorted(sizes):
            have = memory.db.count_turns()
            if size < have:
                continue
            if size > have:
                progress(f"growing the store to {size} turns")
                filler.grow(memory.db, size - have, embedder.model_id)
            report.sizes.append(_measure(methods, timed, report.ks, size))
    finally:
        memory.close()


def _memory(
    path: Path, config: MemoryConfig, embedder: Embedder, samples: Sequence[LocomoSample]
) -> LongTermMemory:
    db = MemoryDb(path, config.busy_timeout_ms)
    import_locomo(db, list(samples))
    # Asked just after the last session: "last month" means what it meant to the speakers.
    with db.reading() as conn:
        newest = conn.execute("SELECT max(ts) FROM turns").fetchone()[0]
    moment = datetime.fromtimestamp(newest or time.time()).astimezone() + timedelta(hours=1)
    return LongTermMemory(db, config, embedder, clock=lambda: moment)


def _methods(memory: LongTermMemory, config: MemoryConfig) -> dict[str, Search]:
    before = memory.retriever.with_weights(RankWeights.before())
    return {
        "bm25": lambda q, k: memory.search(q, k, "bm25"),
        "hybrid-before": lambda q, k: before.search(q, k, "hybrid"),
        "hybrid": lambda q, k: memory.search(q, k, "hybrid"),
    }


def _measure(
    methods: dict[str, Search], asked: Sequence[Asked], ks: Sequence[int], size: int
) -> SizeResult:
    scores: dict[str, dict[int, list[float]]] = {m: {k: [] for k in ks} for m in methods}
    latency: dict[str, dict[str, float]] = {}
    methods["hybrid"]("warm up", 1)  # load the grown vector matrix before timing
    for method, search in methods.items():
        times = []
        for sample, q in asked:
            started = time.perf_counter()
            hits = search(q.question, max(ks))
            times.append((time.perf_counter() - started) * 1000)
            for k in ks:
                scores[method][k].append(_recall(sample, q.evidence, hits[:k]))
        ordered = sorted(times) or [0.0]
        latency[method] = {
            "p50": round(_percentile(ordered, 0.5), 2),
            "p95": round(_percentile(ordered, 0.95), 2),
        }
    return SizeResult(size, len(asked), _means(scores), latency)


def _counted(q: LocomoQuestion) -> bool:
    return bool(q.evidence) and (q.category is None or q.category in CATEGORIES)


def _spread(asked: Sequence[Asked], count: int) -> list[Asked]:
    """``count`` questions spread evenly over all of them (every conversation is asked)."""
    if len(asked) <= count:
        return list(asked)
    step = len(asked) / count
    return [asked[int(i * step)] for i in range(count)]


def _means(scores: dict[str, dict[int, list[float]]]) -> dict[str, dict[str, float]]:
    return {
        method: {str(k): round(statistics.fmean(v), 4) if v else 0.0 for k, v in by_k.items()}
        for method, by_k in scores.items()
    }


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
