"""Looking after the user: crisis resources, a break after long use, quiet hours, and saying
it is an AI the first time a persona speaks.

The crisis reply is fixed text, not the model's: a 135M model (or any model) may answer talk of
suicide badly, so what is said then must not depend on it. Detection is by phrases, tuned to
miss little ("I want to die" counts, "this traffic is killing me" does not); a false alarm
costs the user one kind sentence.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from voice_companion.atomic import write_atomic
from voice_companion.config import CareConfig, QuietHours
from voice_companion.private import private_dir, private_text

log = logging.getLogger(__name__)

BREAK_GAP_S = 15 * 60
"""A pause this long ends a stretch of continuous use."""
CARE_LOG = "care.log"
"""In the data dir, readable by the user only: how many times crisis resources were given
(never when)."""
DISCLOSED = "disclosed"
"""In the data dir: the personas that have told this user they are an AI, one per line."""

_SELF = r"(?:myself|my\s*self)"
_CRISIS = re.compile(
    "|".join(
        [
            rf"\b(?:kill|hurt|harm|cut|hang|shoot|poison|starv)(?:e|ed|t?ing|s)?\s+{_SELF}\b",
            r"\bsuicid(?:e|al)\b",
            r"\bself[\s-]?harm",
            r"\b(?:end|take|ending|taking)\s+my\s+(?:own\s+)?life\b",
            r"\b(?:want|wanna|wish|going|plan(?:ning)?|ready)\s+(?:to\s+)?die\b(?!\s+(?:of|from|for|laughing))",
            r"\bwish\s+i\s+(?:was|were)\s+(?:dead|never\s+born)\b",
            r"\bbetter\s+off\s+(?:dead|without\s+me)\b",
            r"\b(?:no\s+reason|nothing)\s+(?:left\s+)?to\s+live\s+for\b",
            r"\bno\s+reason\s+to\s+live\b",
            r"\b(?:don'?t|do\s+not)\s+want\s+to\s+(?:live|be\s+alive|be\s+here\s+anymore|"
            r"wake\s+up)\b",
            r"\bcan'?t\s+go\s+on\s+(?:living|like\s+this)\b",
        ]
    ),
    re.IGNORECASE,
)

CRISIS_LINES: Mapping[str, str] = {
    "US": "In the US you can call or text 988, the Suicide and Crisis Lifeline, at any hour.",
    "CA": "In Canada you can call or text 988 at any hour.",
    "GB": "You can call Samaritans for free on 116 123, at any hour of the day or night.",
    "IE": "You can call Samaritans for free on 116 123, at any hour of the day or night.",
    "AU": "In Australia you can call Lifeline on 13 11 14, at any hour.",
    "NZ": "In New Zealand you can call or text 1737, at any hour.",
    "DE": "In Germany you can call the TelefonSeelsorge for free on 0800 111 0 111, at any hour.",
    "FR": "In France you can call 3114, at any hour.",
    "IN": "In India you can call Tele MANAS on 14416, at any hour.",
}
INTERNATIONAL_LINE = (
    "Please reach out to a crisis line where you are: the website find a helpline dot com "
    "lists free, confidential ones for every country."
)


def crisis_line(config: CareConfig, env: Mapping[str, str] | None = None) -> str:
    """Where to find help: the user's own words, else the line for their region."""
    if config.crisis_line.strip():
        return config.crisis_line.strip()
    return CRISIS_LINES.get(region(config, env), INTERNATIONAL_LINE)


def region(config: CareConfig, env: Mapping[str, str] | None = None) -> str:
    """``care.region``, else the country of the locale (``en_GB.UTF-8`` → ``GB``)."""
    if config.region.strip():
        return config.region.strip().upper()
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        m = re.match(r"[a-z]{2,3}_([A-Z]{2})\b", env.get(name, ""))
        if m:
            return m.group(1)
    return ""


def is_crisis(text: str) -> bool:
    return _CRISIS.search(" ".join(text.split())) is not None


def crisis_reply(line: str) -> str:
    return (
        "I'm really glad you told me, and I'm so sorry you're hurting this much. "
        "You matter, and you don't have to carry this alone. "
        f"{line} "
        "If you might act on these thoughts, please call your local emergency number now. "
        "I'm here with you, and I'll keep listening."
    )


class Care:
    """The care rules for one running companion; clocks are seams for tests."""

    def __init__(
        self,
        config: CareConfig,
        data_dir: Path,
        monotonic: Callable[[], float] = time.monotonic,
        local_now: Callable[[], datetime] = datetime.now,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._data_dir = data_dir
        self._monotonic = monotonic
        self._local_now = local_now
        self._line = crisis_line(config, env)
        self._region = region(config, env)
        self._quiet = QuietHours.parse(config.quiet_hours)
        self._stretch_start: float | None = None
        self._last_turn: float | None = None
        self._reminded = False

    # -- crisis -----------------------------------------------------------------------------

    def crisis_reply(self, text: str) -> str | None:
        """The fixed caring reply with crisis resources, when ``text`` talks of self-harm."""
        if not is_crisis(text):
            return None
        self._count("crisis resources given" + (f" ({self._region})" if self._region else ""))
        # Not at the default level: the journal stamps every line with its moment, and the
        # moment of these words must go when the user has them forgotten.
        log.debug("the user spoke of self-harm: crisis resources given")
        return crisis_reply(self._line)

    # -- breaks -----------------------------------------------------------------------------

    def break_reminder(self) -> str | None:
        """Call once per user turn: after ``care.break_after_min`` of continuous use, a
        suggestion to take a break, once per stretch."""
        after_s = self._config.break_after_min * 60
        now = self._monotonic()
        if self._last_turn is None or now - self._last_turn > BREAK_GAP_S:
            self._stretch_start, self._reminded = now, False
        self._last_turn = now
        start = self._stretch_start if self._stretch_start is not None else now
        if after_s <= 0 or self._reminded or now - start < after_s:
            return None
        self._reminded = True
        hours = (now - start) / 3600
        span = "over an hour" if hours < 2 else f"over {int(hours)} hours"
        return (
            f"We've been talking for {span}. How about a short break? Stretch, drink some "
            "water, rest your eyes. I'll be right here."
        )

    # -- quiet hours ------------------------------------------------------------------------

    def quiet_now(self) -> bool:
        return self._quiet is not None and self._quiet.contains(self._local_now().time())

    # -- saying it is an AI -----------------------------------------------------------------

    def needs_disclosure(self, persona_key: str) -> bool:
        return persona_key not in self._disclosed()

    def disclosed(self, persona_key: str) -> None:
        if not self.needs_disclosure(persona_key):
            return
        with private_text(private_dir(self._data_dir) / DISCLOSED, "a") as f:
            f.write(persona_key + "\n")

    def _disclosed(self) -> set[str]:
        try:
            return set((self._data_dir / DISCLOSED).read_text(encoding="utf-8").split())
        except OSError:
            return set()

    def _count(self, what: str) -> None:
        """Count one more ``what`` in the user's own care log (0600): how many times, never
        when nor the words, so forgetting the turn ("forget that") leaves no trace of its
        moment. The log is rewritten whole (a new file renamed over it)."""
        try:
            path = private_dir(self._data_dir) / CARE_LOG
            counts = read_care_log(path)
            counts[what] = counts.get(what, 0) + 1
            text = "".join(f"{name}: {n}\n" for name, n in counts.items())
            write_atomic(path, text.encode("utf-8"), mode=0o600)
        except OSError as exc:
            log.warning("cannot write the care log: %s", exc)


def read_care_log(path: Path) -> dict[str, int]:
    """What care.log counts. A log from before counts were kept (one line with its moment
    for each time) is counted line by line; rewriting it drops the moments."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    counts: dict[str, int] = {}
    for line in lines:
        if m := re.fullmatch(r"(.+): (\d+)", line.strip()):
            counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
        elif m := re.fullmatch(r"\d{4}-\d\d-\d\dT\S+ (.+)", line.strip()):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts
