"""`bench crash` through the CLI, a few kills: the table, the JSON fields, the exit code.

The property itself (no confirmed turn lost in 100 kills) is tests/faults/test_crash.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIELDS = {
    "runs", "seed", "turns_sent", "turns_confirmed", "turns_lost", "lost", "integrity_ok",
    "integrity_failures", "killed_mid_turn", "killed_before_first_reply", "start_window_s",
    "turn_window_s", "store_turns", "seconds",
}  # fmt: skip


def test_a_few_kills_report_every_field(tmp_path: Path) -> None:
    out = tmp_path / "crash.json"
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "-q", "bench", "crash", "--runs", "4",
         "--seed", "7", "--keep", str(work), "--json", str(out)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "kills (seed 7)" in done.stdout and "lost 0" in done.stdout
    results = json.loads(out.read_text(encoding="utf-8"))
    assert set(results) == FIELDS
    assert results["runs"] == 4 and results["seed"] == 7
    assert results["turns_lost"] == 0 and results["integrity_ok"] == 4
    assert results["turns_sent"] >= results["turns_confirmed"] >= 0
    # The calibration run's three turns, at least, are in the store that was kept.
    assert results["store_turns"] >= 6
    assert (work / "data" / "memory.db").is_file()


def test_runs_must_be_positive() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "bench", "crash", "--runs", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "must be 1 or more" in done.stderr
