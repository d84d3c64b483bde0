"""The echo guard's measurements survive a restart, and a damaged file is not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voice_companion.audio.echo import load_measurements, save_measurements


def test_measurements_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "echo.json"
    assert load_measurements(path) == []
    save_measurements(path, [0.1, 0.25, 0.0])
    assert load_measurements(path) == [0.1, 0.25, 0.0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(path.read_text())) == {"coupling"}  # numbers only


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"coupling": 3}', '{"coupling": ["a"]}', '{"coupling": [-1]}'],
)
def test_a_damaged_file_means_measuring_again(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "echo.json"
    path.write_text(content)
    assert load_measurements(path) == []
    assert "measuring the echo again" in caplog.text


def test_a_failed_save_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_measurements(tmp_path / "missing" / "echo.json", [0.1])
    assert "cannot save the echo measurements" in caplog.text
