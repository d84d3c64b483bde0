"""Facts as extra search keys for the turns they came from.

"I work as a nurse" shares no word with "what's my job", and little meaning a small model
sees; the fact learnt from it (work = "as a nurse") does, once each kind of fact carries the
words people ask about it with. A question's content words are matched against every valid
fact's words (its kind's question words, its key and its value); a fact's source turns then
score by the share of the question's words the fact has. The facts are read again only when
they changed (a fingerprint of three numbers), so 10,000 facts cost one pass over sets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from voice_companion.memory.store import Fact, MemoryDb

__all__ = ["ASKED_WITH", "FactKeys"]

ASKED_WITH: Final = {
    "name": "name called call",
    "preferred_name": "name called call nickname",
    "age": "age old",
    "relation": "name called named who",
    "trait": "look like kind breed what",
    "work": "work job career profession occupation employed",
    "workplace": "work workplace office company employer",
    "home": "live living home house city moved",
    "hometown": "grew grow raised born from hometown originally",
    "like": "like love favourite favorite enjoy taste",
    "dislike": "hate dislike like taste stand",
    "allergy": "allergic allergy allergies react",
    "health": "health condition ill sick diagnosed",
    "hobby": "hobby hobbies free time fun",
    "event": "when date happening",
    "plan": "plan plans appointment when",
    "birthday": "birthday born when",
    "anniversary": "anniversary when",
    "preference": "prefer",
}
"""The words a question about each kind (or key) of fact is asked with."""


@dataclass(frozen=True)
class _Key:
    words: frozenset[str]
    turns: tuple[int, ...]


class FactKeys:
    """The valid facts of one memory.db as word sets, each with its source turns."""

    def __init__(self, db: MemoryDb, words: Callable[[str], set[str]]) -> None:
        self._db = db
        self._words = words
        self._keys: list[_Key] = []
        self._state: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Something was forgotten: read the facts again on the next search."""
        with self._lock:
            self._keys, self._state = [], None

    def turns_for(self, wanted: set[str]) -> dict[int, float]:
        """Turn id -> the best share of ``wanted`` a fact learnt from that turn has."""
        if not wanted:
            return {}
        self._refresh()
        with self._lock:
            keys = self._keys
        out: dict[int, float] = {}
        for key in keys:
            found = len(wanted & key.words)
            if found:
                share = found / len(wanted)
                for turn_id in key.turns:
                    out[turn_id] = max(out.get(turn_id, 0.0), share)
        return out

    def _refresh(self) -> None:
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(max(id), 0), count(valid_to) FROM facts"
            ).fetchone()
        state = (int(row[0]), int(row[1]), int(row[2]))
        with self._lock:
            if state == self._state:
                return
        keys = [self._key(f) for f in self._db.facts(valid_only=True) if f.source_turn_ids]
        with self._lock:
            self._keys, self._state = keys, state

    def _key(self, fact: Fact) -> _Key:
        head, _, rest = fact.key.partition(":")
        asked = ASKED_WITH.get(head, "") + " " + ASKED_WITH.get(fact.kind, "")
        text = " ".join([asked, head.replace("_", " "), rest.replace("_", " "), fact.value])
        return _Key(frozenset(self._words(text)), tuple(fact.source_turn_ids))
