"""The latency benchmark's machinery on a few real utterances, with the real engines.

Structure and sanity only: the benchmark reports wall-clock times, the tests never judge them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.conftest import shipped_config, words
from voice_companion.bench import latency
from voice_companion.cli.bench import add_latency_parser, format_report
from voice_companion.runtime.session import Engines


def test_the_committed_utterances_are_a_varied_fixed_set() -> None:
    utterances = latency.load_utterances(latency.default_utterances_dir())
    assert len(utterances) >= 20
    from voice_companion.engines.decode import read_audio

    durations = []
    for u in utterances:
        audio = read_audio(u.path)
        assert 0.5 < u.speech_end_s < audio.duration_s
        durations.append(u.speech_end_s)
    kinds = {u.kind for u in utterances}
    assert kinds == {"question", "statement"}
    assert min(durations) < 1.5 and max(durations) > 4.5  # short and long
    assert any(u.hesitation for u in utterances)


def test_a_missing_manifest_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(latency.BenchError, match="--utterances"):
        latency.load_utterances(tmp_path)


def test_percentiles() -> None:
    assert latency.percentiles([]) == {"p50": None, "p95": None, "n": 0}
    stats = latency.percentiles([float(x) for x in range(1, 21)])
    assert stats["n"] == 20 and stats["p50"] == 10.5 and stats["p95"] == pytest.approx(19.05)


def test_the_parser_takes_the_documented_options() -> None:
    parser = argparse.ArgumentParser()
    add_latency_parser(parser.add_subparsers())
    args = parser.parse_args(["latency", "--limit", "3", "--no-baseline", "--json", "o.json"])
    assert args.limit == 3 and args.no_baseline and args.json == Path("o.json")
    assert args.bench_handler.__name__ == "cmd_latency"
    with pytest.raises(SystemExit):
        parser.parse_args(["latency", "--limit", "0"])


def test_streaming_and_sequential_runs_report_every_stage(engines: Engines, tmp_path: Path) -> None:
    # The fast profile: a speculative start, held for the adaptive end-of-speech silence.
    config = shipped_config(
        tmp_path,
        VOICE_COMPANION_VAD_SPECULATE_MS="240",
        VOICE_COMPANION_VAD_ADAPTIVE_END_SILENCE="true",
    )
    every = latency.load_utterances(latency.default_utterances_dir())
    picked = [u for u in every if u.path.stem in ("u01", "u21")]  # a question, a hesitation
    report = latency.run(config, picked, baseline=True, engines=engines)

    assert len(report.streaming.turns) == 2
    for turn, utterance in zip(report.streaming.turns, picked, strict=True):
        assert not turn["timed_out"] and turn["turns"] == 1
        for key in ("stt_s", "llm_first_token_s", "tts_first_s", "response_latency_s"):
            assert isinstance(turn[key], float) and turn[key] >= 0, key
        # The trace's latency (from where the voice detector heard speech end) and the
        # benchmark's (from the manifest's last voiced sample) measure the same moment, to
        # within a few 30 ms frames.
        assert abs(turn["response_latency_s"] - turn["trace_latency_s"]) < 0.2
        # The reply was held for the end-of-speech silence, never played before it.
        assert turn["response_latency_s"] >= turn["hold_target_s"] - 0.1
        heard = set(words(str(turn["transcript"])))
        assert len(heard & set(words(utterance.text))) >= 0.6 * len(words(utterance.text))
    # The hesitation started a speculative turn that was dropped, and both phrases were
    # answered as one.
    assert "thinking" in words(str(report.streaming.turns[1]["transcript"]))
    assert "day" in words(str(report.streaming.turns[1]["transcript"]))

    assert report.sequential is not None
    for turn in report.sequential.turns:
        for key in ("stt_s", "llm_reply_s", "tts_reply_s", "response_latency_s"):
            assert isinstance(turn[key], float) and turn[key] >= 0, key
    assert report.ratio("p50") is not None
    assert report.first_turn()["ratio"] is not None
    assert report.ready["process_start_to_ready_s"] is not None

    data = json.loads(json.dumps(report.as_dict()))
    assert set(data) >= {"streaming", "sequential", "ratio", "ready", "first_turn", "settings"}
    assert data["streaming"]["summary"]["response_latency_s"]["n"] == 2
    table = format_report(report)
    for label in ("endpointing wait", "speech-to-text", "LLM first token", "first sentence",
                  "TTS of first sentence", "response latency", "baseline / streaming",
                  "process start to ready", "first turn"):  # fmt: skip
        assert label in table
