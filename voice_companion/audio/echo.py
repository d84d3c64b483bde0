"""The echo guard's speaker-to-microphone measurements, kept across restarts.

The guard learns how loud the companion's own voice comes back through the microphone each
time it starts speaking. Before its first measurement it cannot hear a user over the start of
a reply, and a user who talks then is measured as "echo"; the daemon restarts every day (at
login), so it starts from the last run's measurements instead. The file holds numbers only.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from voice_companion.atomic import write_atomic

log = logging.getLogger(__name__)

FILENAME = "echo.json"


def load_measurements(path: Path) -> list[float]:
    """The measurements saved at ``path``; none if there is no file or it cannot be used."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["coupling"]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s cannot be read (%s); measuring the echo again", path, exc)
        return []
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values
    ):
        log.warning("%s holds no echo measurements; measuring the echo again", path)
        return []
    return [float(v) for v in values]


def save_measurements(path: Path, values: Sequence[float]) -> None:
    """Write the measurements; a failure costs only the next start's first measurement."""
    data = json.dumps({"coupling": [round(v, 6) for v in values]}).encode()
    try:
        write_atomic(path, data)
    except OSError as exc:
        log.warning("cannot save the echo measurements to %s: %s", path, exc)
