"""The soak benchmark: a short real run through the CLI prints the table and writes the JSON.

Structure and sanity only (counts are positive whole numbers, the fields are there): the
benchmark reports memory growth and latency drift; a test of a few turns cannot judge them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG
from voice_companion import allocator
from voice_companion.bench import soak

RUN_TIMEOUT_S = 300


def test_slope_is_a_fitted_line_per_hour() -> None:
    # 1 MB per minute, with a spike that diffing the two ends would not see.
    points = [(60.0 * i, 100.0 + i + (50.0 if i == 5 else 0.0)) for i in range(11)]
    slope = soak.slope_per_hour(points)
    assert slope is not None and 55 < slope < 65
    assert soak.slope_per_hour(points[:2]) is None
    assert soak.slope_per_hour([(1.0, 5.0)] * 4) is None


def test_a_sample_reads_this_process() -> None:
    started = threading.Event()
    stop = threading.Event()

    def idle() -> None:
        started.set()
        stop.wait(10)

    for _attempt in range(3):  # a thread of an earlier test's engine may end meanwhile
        started.clear()
        stop.clear()
        before = soak.sample(0.0)
        extra = threading.Thread(target=idle)
        extra.start()
        started.wait(10)
        with open(__file__, "rb"):
            during = soak.sample(1.0)
        stop.set()
        extra.join()
        if during.tasks == before.tasks + 1:
            break
    assert before.rss_mb > 1 and before.fds > 2
    assert during.threads == before.threads + 1 and during.tasks == before.tasks + 1
    assert during.fds == before.fds + 1


@pytest.mark.models
def test_a_short_soak_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG),
         "--data-dir", str(tmp_path), "-q", "bench", "soak", "--minutes", "0.5",
         "--turns", "3", "--conversation", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    table = done.stdout
    for row in ("resident memory (MB)", "open file descriptors", "threads (OS)", "MB/h", "p50"):
        assert row in table
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["conversations"] == 2 and results["turns"] == 3
    assert 1 <= results["replies"] <= 3
    for group in ("fds", "threads"):
        for key, value in results[group].items():
            assert isinstance(value, int) and value > 0, (group, key)
    rss = results["rss_mb"]
    assert 0 < rss["start"] <= rss["max"] and 0 < rss["end"] <= rss["max"]
    assert rss["growth_mb_per_h"] is None or isinstance(rss["growth_mb_per_h"], float)
    assert rss["samples_fitted"] >= 1
    assert len(results["per_turn"]) == 3
    assert [t["conversation"] for t in results["per_turn"]] == [1, 1, 2]
    assert all(s["rss_mb"] > 0 and s["tasks"] >= s["threads"] for s in results["samples"])
    latency = results["latency_p50_s"]
    assert set(latency) == {"first_quarter", "last_quarter"}
    assert all(v is None or v > 0 for v in latency.values())
    # Started from the command line, it ran on jemalloc, as the daemon does (`make setup`
    # installs libjemalloc2).
    assert results["machine"]["malloc"] == "jemalloc"
    assert "malloc: jemalloc" in table


def test_jemalloc_is_found_and_the_system_malloc_can_be_kept() -> None:
    assert allocator.jemalloc_library() is not None
    assert allocator.in_use() == "system"  # pytest itself was not restarted
    code = (
        "from voice_companion import allocator; "
        "allocator.restart_with_jemalloc(['status']); print(allocator.in_use())"
    )
    kept = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, allocator.OPT_OUT: "system"},
    )  # fmt: skip
    assert kept.returncode == 0 and kept.stdout.strip() == "system", kept.stderr


def test_nonpositive_minutes_are_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "bench", "soak", "--minutes", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "must be more than 0" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("minutes", ["-1", "nan", "soon"])
def test_bad_minutes_are_refused(minutes: str) -> None:
    import argparse

    from voice_companion.cli.bench import positive_float

    with pytest.raises(argparse.ArgumentTypeError):
        positive_float(minutes)
