"""LoCoMo conversations read for the recall benchmark (and ``memory import --format locomo``).

LoCoMo (Maharana et al. 2024) is a JSON list of samples; each has ``conversation`` with
``speaker_a``, ``speaker_b``, ``session_N_date_time`` ("1:56 pm on 8 May, 2023") and
``session_N`` (a list of turns with ``speaker``, ``dia_id``, ``text``), and ``qa`` items with
``question``, ``answer`` and ``evidence`` (dia_ids). Each turn keeps its dia_id as its source id
and its session's date as its time (plus a second per turn, to keep them in order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from voice_companion.errors import MemoryFormatError
from voice_companion.memory.store import MemoryDb, NewTurn, turn_identity
from voice_companion.memory.transfer import Imported, read_json, text_value, turn_key, why


@dataclass(frozen=True)
class LocomoQuestion:
    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int | None


@dataclass(frozen=True)
class LocomoSample:
    sample_id: str
    speakers: tuple[str, str]
    sessions: tuple[tuple[str, datetime, tuple[NewTurn, ...]], ...]
    """(session name, its date, its turns)."""
    questions: tuple[LocomoQuestion, ...]

    @property
    def turns(self) -> list[NewTurn]:
        return [t for _, _, turns in self.sessions for t in turns]


def parse_locomo_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' (LoCoMo's session dates) as a local time."""
    cleaned = " ".join(text.replace(",", " ").split())
    for layout in ("%I:%M %p on %d %B %Y", "%I:%M%p on %d %B %Y", "%d %B %Y", "%B %d %Y"):
        try:
            return datetime.strptime(cleaned, layout).astimezone()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text).astimezone()
    except ValueError:
        raise ValueError(f"cannot read the date {text!r}") from None


def read_locomo(path: Path) -> list[LocomoSample]:
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise MemoryFormatError(f"{path}: a LoCoMo file is a non-empty JSON list of samples")
    samples: list[LocomoSample] = []
    for n, sample in enumerate(data):
        where = f"{path}: sample {n}"
        try:
            samples.append(_locomo_sample(sample, n))
        except MemoryFormatError as exc:
            raise MemoryFormatError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MemoryFormatError(f"{where}: not in the LoCoMo layout ({why(exc)})") from None
    return samples


def _locomo_sample(sample: Any, n: int) -> LocomoSample:
    if not isinstance(sample, dict) or not isinstance(sample.get("conversation"), dict):
        raise MemoryFormatError('no "conversation" object')
    conv = sample["conversation"]
    sample_id = str(sample.get("sample_id", n))
    numbers = sorted(int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k)))
    if not numbers:
        raise MemoryFormatError('no "session_N" lists in "conversation"')
    sessions = []
    for number in numbers:
        name = f"session_{number}"
        when_text = conv.get(f"{name}_date_time")
        if not isinstance(when_text, str):
            raise MemoryFormatError(f'"{name}_date_time" is missing')
        start = parse_locomo_date(when_text)
        conversation_id = f"locomo-{sample_id}-{name}"
        turns = []
        for i, turn in enumerate(conv[name]):
            text = text_value(turn["text"])
            if turn.get("blip_caption"):
                text += f" [shares a photo: {text_value(turn['blip_caption'])}]"
            turns.append(
                NewTurn(
                    conversation_id=conversation_id,
                    at=start + timedelta(seconds=i),
                    speaker=text_value(turn["speaker"]),
                    text=text,
                    source_id=text_value(turn["dia_id"]),
                )
            )
        sessions.append((conversation_id, start, tuple(turns)))
    questions = tuple(
        LocomoQuestion(
            question=text_value(q["question"]),
            answer=str(q.get("answer", q.get("adversarial_answer", ""))),
            evidence=tuple(str(e) for e in q.get("evidence", [])),
            category=int(q["category"]) if q.get("category") is not None else None,
        )
        for q in sample.get("qa", [])
    )
    speakers = (str(conv.get("speaker_a", "")), str(conv.get("speaker_b", "")))
    return LocomoSample(sample_id, speakers, tuple(sessions), questions)


def import_locomo(db: MemoryDb, samples: list[LocomoSample]) -> Imported:
    """Load LoCoMo conversations; turns held already, or forgotten, are left out (as for an
    export: importing the same file twice adds nothing)."""
    turns = already = skipped = 0
    forgotten = db.forgotten_hashes()
    with db.transaction() as conn:
        held = {
            turn_identity(r[0], r[1], r[2])
            for r in conn.execute("SELECT conversation_id, at, speaker FROM turns")
        }
        for sample in samples:
            for conversation_id, start, session_turns in sample.sessions:
                conn.execute(
                    "INSERT OR IGNORE INTO conversations(id, started_at, source)"
                    " VALUES (?, ?, 'locomo')",
                    (conversation_id, start.isoformat()),
                )
                for t in session_turns:
                    key = turn_key(t)
                    if key in forgotten or key in held:
                        skipped += key in forgotten
                        already += key not in forgotten
                        continue
                    MemoryDb.insert_turn(conn, t)
                    turns += 1
    return Imported(sum(len(s.sessions) for s in samples), turns, 0, already, skipped)
