"""Memory in and out: one complete JSON export and its import (LoCoMo data: bench/locomo.py).

The export holds every conversation, turn (with the mood read from it, and how it was spoken)
and fact (with its source turns and validity), in id order, and nothing that depends on when it
was written, so export → import → export gives the same file. Embeddings are not exported:
they are derived, and recomputed after an import.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from voice_companion.atomic import write_atomic
from voice_companion.audio.prosody import Prosody
from voice_companion.dialogue.mood import LABELS, MoodEstimate
from voice_companion.errors import MemoryFormatError, MemoryStoreError
from voice_companion.memory.store import Fact, MemoryDb, NewTurn, fact_identity, turn_identity
from voice_companion.private import read_regular

FORMAT = "voice-companion-memory"
VERSION = 1


def export_data(db: MemoryDb) -> dict[str, Any]:
    conversations = [
        {"id": cid, "started_at": started.isoformat(), "source": source}
        for cid, started, source in db.conversations()
    ]
    turns = [
        {
            "id": t.id,
            "conversation_id": t.conversation_id,
            "at": t.at.isoformat(),
            "speaker": t.speaker,
            "text": t.text,
            "duration_s": t.duration_s,
            "interrupted": t.interrupted,
            "source_id": t.source_id,
            "mood": mood_to_json(t.mood),
        }
        for t in db.turns()
    ]
    facts = [
        {
            "id": f.id,
            "kind": f.kind,
            "key": f.key,
            "value": f.value,
            "valid_from": f.valid_from.isoformat(),
            "valid_to": f.valid_to.isoformat() if f.valid_to else None,
            "event_date": f.event_date.isoformat() if f.event_date else None,
            "superseded_by": f.superseded_by,
            "extractor": f.extractor,
            "source_turn_ids": list(f.source_turn_ids),
        }
        for f in db.facts(valid_only=False)
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema_version": db.schema_version,
        "conversations": conversations,
        "turns": turns,
        "facts": facts,
    }


def export_file(db: MemoryDb, path: Path) -> dict[str, int]:
    """Write the whole memory to ``path`` (atomically: a temporary file renamed into place)."""
    data = export_data(db)
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    try:
        write_atomic(path, text.encode("utf-8"))  # 0600: as private as memory.db
    except OSError as exc:
        raise MemoryStoreError(f"cannot write {path}: {exc}") from exc
    return {"conversations": len(data["conversations"]), "turns": len(data["turns"]),
            "facts": len(data["facts"])}  # fmt: skip


MAX_IMPORT_BYTES = 1 << 30
"""Largest file ``memory import`` reads, bytes (an export of years of daily talk is tens of MB)."""


def read_json(path: Path) -> Any:
    try:
        # A regular file only: /dev/zero or a fifo would be read (or waited on) forever.
        return json.loads(read_regular(path, MAX_IMPORT_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise MemoryFormatError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise MemoryFormatError(f"{path} is a directory, not a JSON file") from None
    except json.JSONDecodeError as exc:
        raise MemoryFormatError(f"{path} is not valid JSON: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MemoryFormatError(f"{path} cannot be read: {exc}") from None


@dataclass(frozen=True)
class Imported:
    conversations: int
    turns: int
    facts: int
    already: int = 0
    """Turns and facts the memory held already (an export imported twice adds nothing)."""
    forgotten: int = 0
    """Turns and facts forgotten since the export was made: not brought back."""


def import_file(db: MemoryDb, path: Path) -> Imported:
    """Restore an export, idempotently: a turn is known by its conversation, moment and
    speaker, a fact by what it says and since when, so what the memory already holds is not
    added again, and what was forgotten (remembered by those hashes only) is not brought
    back. Into a memory that never held anything the ids are kept (so a new export is
    identical); otherwise the imported turns and facts get new ids."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MemoryFormatError(
            f'{path} is not a voice-companion memory export (no "format": "{FORMAT}"); '
            "for LoCoMo conversations use --format locomo"
        )
    if data.get("version") != VERSION:
        raise MemoryFormatError(f"{path}: export version {data.get('version')!r} is not {VERSION}")
    try:
        conversations = [
            (str(c["id"]), _when(c["started_at"]), str(c.get("source", "import")))
            for c in _list(data, "conversations")
        ]
        turns = [
            NewTurn(
                conversation_id=str(t["conversation_id"]),
                at=_when(t["at"]),
                speaker=text_value(t["speaker"]),
                text=text_value(t["text"]),
                source_id=str(t["source_id"]),
                duration_s=None if t.get("duration_s") is None else float(t["duration_s"]),
                interrupted=bool(t.get("interrupted", False)),
                id=_id(t["id"], "a turn"),
                mood=mood_from_json(t.get("mood")),
            )
            for t in _list(data, "turns")
        ]
        facts = [
            Fact(
                id=_id(f["id"], "a fact"),
                kind=text_value(f["kind"]),
                key=text_value(f["key"]),
                value=text_value(f["value"]),
                valid_from=_when(f["valid_from"]),
                valid_to=_when(f["valid_to"]) if f.get("valid_to") else None,
                event_date=date.fromisoformat(f["event_date"]) if f.get("event_date") else None,
                superseded_by=None
                if f.get("superseded_by") is None
                else _id(f["superseded_by"], "a superseding fact"),
                extractor=text_value(f.get("extractor", "import")),
                source_turn_ids=tuple(
                    _id(s, "a source turn") for s in f.get("source_turn_ids", [])
                ),
            )
            for f in _list(data, "facts")
        ]
    except MemoryFormatError as exc:
        raise MemoryFormatError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MemoryFormatError(f"{path}: malformed memory export ({why(exc)})") from None
    known = {c[0] for c in conversations}
    listed = {t.id for t in turns}
    if len(listed) != len(turns):
        raise MemoryFormatError(f"{path}: two turns have the same id")
    for t in turns:
        if t.conversation_id not in known:
            raise MemoryFormatError(
                f"{path}: turn {t.id} belongs to conversation {t.conversation_id!r}, "
                "which the file does not list"
            )
    for f in facts:
        for source_turn in f.source_turn_ids:
            if source_turn not in listed:
                raise MemoryFormatError(
                    f"{path}: fact {f.id} comes from turn {source_turn}, which the file lacks"
                )
    forgotten = db.forgotten_hashes()
    with db.transaction() as conn:
        keep_ids = _never_used(conn)
        held_turns = {
            turn_identity(r[1], r[2], r[3]): int(r[0])
            for r in conn.execute("SELECT id, conversation_id, at, speaker FROM turns")
        }
        held_facts = {
            fact_identity(r[1], r[2], r[3], r[4]): int(r[0])
            for r in conn.execute("SELECT id, kind, key, value, valid_from FROM facts")
        }
        new_turns = [t for t in turns if turn_key(t) not in held_turns.keys() | forgotten]
        with_turns = {t.conversation_id for t in turns}
        wanted = {t.conversation_id for t in new_turns} | (known - with_turns)
        for cid, started, source in conversations:
            if cid in wanted:
                conn.execute(
                    "INSERT OR IGNORE INTO conversations(id, started_at, source) VALUES (?, ?, ?)",
                    (cid, started.isoformat(), source),
                )
        turn_map: dict[int, int] = {}
        already = skipped = 0
        for t in turns:
            key = turn_key(t)
            if key in forgotten:
                skipped += 1
            elif key in held_turns:
                turn_map[int(t.id or 0)] = held_turns[key]
                already += 1
            else:
                new = t if keep_ids else NewTurn(**{**t.__dict__, "id": None})
                turn_map[int(t.id or 0)] = MemoryDb.insert_turn(conn, new)
        fact_map: dict[int, int] = {}
        added: list[Fact] = []
        for f in facts:
            key = fact_identity(f.kind, f.key, f.value, f.valid_from.isoformat())
            sources = [turn_map[s] for s in f.source_turn_ids if s in turn_map]
            if key in forgotten or (f.source_turn_ids and not sources):
                skipped += 1  # forgotten, or learnt only from forgotten turns
                continue
            if key in held_facts:
                fact_map[f.id] = held_facts[key]
                already += 1
                continue
            cursor = conn.execute(
                "INSERT INTO facts(id, kind, key, value, valid_from, valid_to, event_date,"
                " superseded_by, extractor) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    f.id if keep_ids else None,
                    f.kind,
                    f.key,
                    f.value,
                    f.valid_from.isoformat(),
                    f.valid_to.isoformat() if f.valid_to else None,
                    f.event_date.isoformat() if f.event_date else None,
                    f.extractor,
                ),
            )
            fact_map[f.id] = int(cursor.lastrowid or 0)
            added.append(f)
            conn.executemany(
                "INSERT OR IGNORE INTO fact_sources(fact_id, turn_id) VALUES (?, ?)",
                [(fact_map[f.id], s) for s in sources],
            )
        for f in added:
            if f.superseded_by is not None and f.superseded_by in fact_map:
                conn.execute(
                    "UPDATE facts SET superseded_by = ? WHERE id = ?",
                    (fact_map[f.superseded_by], fact_map[f.id]),
                )
    return Imported(len(wanted), len(new_turns), len(added), already, skipped)


def turn_key(turn: NewTurn) -> str:
    return turn_identity(turn.conversation_id, turn.at.isoformat(), turn.speaker)


def _never_used(conn: sqlite3.Connection) -> bool:
    """True when this memory never held a turn or a fact (ids from the file can be kept)."""
    held = conn.execute(
        "SELECT (SELECT count(*) FROM turns) + (SELECT count(*) FROM facts)"
        " + (SELECT count(*) FROM forgotten)"
        " + (SELECT coalesce(sum(seq), 0) FROM sqlite_sequence WHERE name IN ('turns', 'facts'))"
    ).fetchone()[0]
    return int(held) == 0


def _id(value: Any, what: str) -> int:
    """An id from the file: a positive whole number, nothing else (not "3", 2.5, -1, true)."""
    if type(value) is not int or value <= 0:
        raise MemoryFormatError(f"{what} has the id {_shown(value)}, not a positive whole number")
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


# -- helpers --------------------------------------------------------------------------------


def mood_to_json(mood: MoodEstimate | None) -> dict[str, Any] | None:
    """A turn's mood as exported (and as ``memory list --json`` could show it)."""
    if mood is None:
        return None
    p = mood.prosody
    return {
        "label": mood.label,
        "valence": mood.valence,
        "arousal": mood.arousal,
        "confidence": mood.confidence,
        "named": mood.named,
        "voice": None
        if p is None
        else {
            "speech_s": p.speech_s,
            "rate_sps": p.rate_sps,
            "loudness_dbfs": p.loudness_dbfs,
            "pitch_hz": p.pitch_hz,
        },
    }


def mood_from_json(value: Any) -> MoodEstimate | None:
    """A turn's mood from an export (absent in exports made before moods were kept)."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("label") not in LABELS:
        raise MemoryFormatError(f"a turn's mood must have a label among {', '.join(LABELS)}")
    voice = value.get("voice")
    if voice is not None and not isinstance(voice, dict):
        raise MemoryFormatError('a turn\'s mood "voice" must be an object or null')
    return MoodEstimate(
        label=value["label"],
        valence=float(value.get("valence", 0.0)),
        arousal=_float(value.get("arousal")),
        confidence=float(value.get("confidence", 0.0)),
        named=bool(value.get("named", False)),
        prosody=None
        if voice is None
        else Prosody(
            speech_s=float(voice.get("speech_s", 0.0)),
            rate_sps=_float(voice.get("rate_sps")),
            loudness_dbfs=_float(voice.get("loudness_dbfs")),
            pitch_hz=_float(voice.get("pitch_hz")),
        ),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise MemoryFormatError(f'"{key}" must be a list')
    return value


def text_value(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _when(value: Any) -> datetime:
    return datetime.fromisoformat(text_value(value))


def why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    return str(exc)
