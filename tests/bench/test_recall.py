"""`voice-companion bench recall`: recall@k on LoCoMo-format conversations, beside BM25."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.memory.conftest import LOCOMO_MINI
from tests.memory.test_cli_memory import cli
from voice_companion.bench import recall
from voice_companion.bench.locomo import parse_locomo_date, read_locomo
from voice_companion.engines.embedder import Embedder, MiniLmEmbedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return MiniLmEmbedder(threads=2)


def test_the_locomo_reader_keeps_dia_ids_dates_and_evidence() -> None:
    samples = read_locomo(LOCOMO_MINI)
    turns = samples[0].turns
    assert turns[0].source_id == "D1:1"
    assert turns[0].at == parse_locomo_date("1:56 pm on 8 May, 2023")
    questions = [q for s in samples for q in s.questions if q.evidence]
    assert len(questions) >= 20
    assert all(e.startswith("D") for q in questions for e in q.evidence)


@pytest.mark.models
def test_the_ranking_finds_more_evidence_than_word_search_at_every_k(embedder: Embedder) -> None:
    report = recall.run(read_locomo(LOCOMO_MINI), (1, 3, 5, 10), (), embedder)
    assert report.questions == 42 and report.locomo_turns == 81 and not report.sizes
    for k in ("1", "3", "5", "10"):
        assert report.recall["hybrid"][k] > report.recall["bm25"][k], k
    # The re-ranking is what lifts the first answer above the fusion alone.
    assert report.recall["hybrid"]["1"] > report.recall["hybrid-before"]["1"]
    assert sum(report.category_questions.values()) == report.questions


@pytest.mark.models
def test_bench_recall_prints_every_ranking_beside_bm25(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli(
        tmp_path, "bench", "recall", str(LOCOMO_MINI), "--sizes", "500", "--json", str(out)
    )
    assert result.returncode == 0, result.stderr
    for method in ("bm25", "hybrid-before", "hybrid"):
        assert method in result.stdout
    report = json.loads(out.read_text())
    assert report["ks"] == [1, 3, 5, 10] and report["questions"] == 42
    assert [row["turns"] for row in report["sizes"]] == [500]
    for row in report["sizes"]:
        for method in report["methods"]:
            assert set(row["recall"][method]) == {"1", "3", "5", "10"}
            assert 0.0 <= row["recall"][method]["10"] <= 1.0
            assert row["latency_ms"][method]["p95"] >= row["latency_ms"][method]["p50"] > 0
    for k in ("1", "3", "5", "10"):
        assert report["recall"]["hybrid"][k] > report["recall"]["bm25"][k]


def test_bench_recall_refuses_a_bad_k_in_one_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "bench", "recall", str(LOCOMO_MINI), "--k", "1,zero")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a whole number" in result.stderr
