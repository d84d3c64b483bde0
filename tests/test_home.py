"""A test run keeps out of the user's home: the Q8_0 model copy, the data, the configuration
and the runtime folder all go under the run's own XDG folders (tests/conftest.py), in this
process and in the subprocesses the tests start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, XDG_DIRS, shipped_config

COMPANION_DIRS = (
    ".cache/voice-companion",
    ".local/share/voice-companion",
    ".config/voice-companion",
)


def test_the_default_folders_are_the_runs_own() -> None:
    from voice_companion.config import default_cache_dir, default_config_path, default_data_dir

    home = Path.home()
    for name in XDG_DIRS:
        assert not Path(os.environ[name]).is_relative_to(home), name
    assert default_cache_dir().is_relative_to(os.environ["XDG_CACHE_HOME"])
    assert default_data_dir().is_relative_to(os.environ["XDG_DATA_HOME"])
    assert default_config_path().is_relative_to(os.environ["XDG_CONFIG_HOME"])


@pytest.mark.models  # makes the Q8_0 copy of the bundled model
def test_the_model_copy_and_a_subprocess_data_go_under_the_default_folders(
    tmp_path: Path,
) -> None:
    """What a run writes where it writes by default; the test below looks where that was."""
    from voice_companion import app
    from voice_companion.config import default_cache_dir

    app.build_model(shipped_config(tmp_path))
    assert list((default_cache_dir() / "models").glob("*.gguf")), "no Q8_0 copy in the cache"
    # With no --data-dir, a subprocess keeps its data in the default data folder.
    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "memory", "stats"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.models  # runs the tests above in a pytest of its own
def test_a_test_run_writes_nothing_into_the_users_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in XDG_DIRS and not k.startswith("VOICE_COMPANION_")
    }
    env["HOME"] = str(home)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_home.py",
            "-k",
            "model_copy_and_a_subprocess",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert not [p for p in written if "voice-companion" in p], written
    for folder in COMPANION_DIRS:
        assert not (home / folder).exists(), folder
