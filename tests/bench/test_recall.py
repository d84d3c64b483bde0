"""`voice-companion bench recall`: recall@k on LoCoMo-format conversations, beside BM25."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.memory.conftest import LOCOMO_MINI
from tests.memory.test_cli_memory import cli
from voice_companion.bench.locomo import parse_locomo_date, read_locomo


def test_the_locomo_reader_keeps_dia_ids_dates_and_evidence() -> None:
    samples = read_locomo(LOCOMO_MINI)
    turns = samples[0].turns
    assert turns[0].source_id == "D1:1"
    assert turns[0].at == parse_locomo_date("1:56 pm on 8 May, 2023")
    questions = [q for s in samples for q in s.questions if q.evidence]
    assert len(questions) >= 20
    assert all(e.startswith("D") for q in questions for e in q.evidence)


@pytest.mark.models
def test_bench_recall_prints_hybrid_beside_bm25(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli(
        tmp_path, "bench", "recall", str(LOCOMO_MINI), "--sizes", "500", "--json", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "hybrid" in result.stdout and "bm25" in result.stdout
    report = json.loads(out.read_text())
    assert report["k"] == 5 and report["questions"] >= 20
    sizes = [row["turns"] for row in report["sizes"]]
    assert sizes == [report["locomo_turns"], 500]
    for row in report["sizes"]:
        assert 0.0 <= row["recall"]["bm25"] <= 1.0
        assert row["recall"]["hybrid"] >= row["recall"]["bm25"]
        assert row["latency_ms"]["hybrid"]["p50"] > 0
