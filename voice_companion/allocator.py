"""jemalloc for the commands that run for hours: the companion itself and its benchmarks.

The engines allocate and free buffers of every size on every turn (a sentence's phonemes, an
utterance's features, a prompt's tokens). glibc's malloc kept much of what was freed resident,
spread over its per-thread heaps: in `bench soak` resident memory grew by hundreds of MB an
hour. jemalloc hands it back. A malloc can only be chosen before the process starts, so these
commands start themselves again, once, with jemalloc preloaded when it is installed
(``libjemalloc2``, which `make setup` installs). ``VOICE_COMPANION_MALLOC=system`` keeps the
C library's malloc.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path

OPT_OUT = "VOICE_COMPANION_MALLOC"
_CANDIDATES = (
    "/usr/lib/*-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)


def jemalloc_library() -> Path | None:
    """The installed jemalloc shared library, if any."""
    for pattern in _CANDIDATES:
        for found in sorted(glob.glob(pattern)):
            return Path(found)
    return None


def in_use() -> str:
    """Which malloc this process runs on: "jemalloc" or "system"."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "system"
    return "jemalloc" if "libjemalloc" in maps else "system"


def restart_with_jemalloc(argv: Sequence[str]) -> None:
    """Replace this process with the same command on jemalloc (same PID, so systemd's
    notify and watchdog are unaffected); return if that is not possible or not wanted."""
    if os.environ.get(OPT_OUT, "").lower() == "system" or in_use() == "jemalloc":
        return
    library = jemalloc_library()
    if library is None:
        return
    env = dict(os.environ)
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{library} {preload}".strip()
    env[OPT_OUT] = "system"  # not again, whatever happens
    try:
        os.execve(sys.executable, [sys.executable, "-m", "voice_companion", *argv], env)
    except OSError:
        return  # go on with the system malloc
