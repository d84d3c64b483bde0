"""`voice-companion memory ...`: see, search, forget, export, import, encrypt, recover.

Ids: a turn is its number (``12``, or ``t12``), a fact is ``f`` and its number (``f3``).
The memory database can be read and changed while the companion runs: SQLite's write-ahead
log lets both in, and a writer waits up to ``memory.busy_timeout_ms`` for the other.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from voice_companion.cli.bench import positive_int
from voice_companion.cli.safe_text import printable
from voice_companion.config import Config
from voice_companion.errors import CompanionError, MemoryStoreError, UsageError

log = logging.getLogger("voice_companion")

EXIT_OK, EXIT_FAILED = 0, 1


def add_parsers(commands: Any) -> None:
    """Add the ``memory`` command group to the top-level subparsers."""
    memory = commands.add_parser(
        "memory",
        help="see, search, forget, export and import what the companion remembers",
        description="Everything the companion remembers lives in memory.db in the data dir. "
        "Ids: 12 (or t12) is a turn, f3 is a fact.",
    )
    actions = memory.add_subparsers(
        dest="memory_command", metavar="ACTION", parser_class=type(memory)
    )
    actions.required = True

    listing = actions.add_parser("list", help="facts about you, then the latest turns")
    listing.add_argument("--limit", type=positive_int, default=20, help="turns to show (20)")
    what = listing.add_mutually_exclusive_group()
    what.add_argument("--facts", action="store_true", help="only facts")
    what.add_argument("--turns", action="store_true", help="only turns")
    listing.add_argument("--all", action="store_true", help="include superseded facts")
    listing.add_argument("--json", action="store_true", help="print JSON")

    search = actions.add_parser("search", help="find memories by words and meaning")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--limit", type=positive_int, default=5, metavar="K", help="hits (5)")
    search.add_argument(
        "--mode", choices=("hybrid", "bm25", "dense"), default="hybrid", help="ranking (hybrid)"
    )
    search.add_argument("--json", action="store_true", help="print JSON")

    show = actions.add_parser("show", help="one turn or fact, with where it came from")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")

    forget = actions.add_parser(
        "forget", help="erase turns or facts for real (gone from the disk, not just hidden)"
    )
    forget.add_argument("ids", nargs="*", metavar="ID")
    forget.add_argument("--match", metavar="TEXT", help="every turn and fact containing TEXT")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    export = actions.add_parser("export", help="write everything to one JSON file")
    export.add_argument("file", type=Path, metavar="FILE")

    importing = actions.add_parser("import", help="restore an export, or load LoCoMo talks")
    importing.add_argument("file", type=Path, metavar="FILE")
    importing.add_argument(
        "--format",
        choices=("export", "locomo"),
        default="export",
        help="export: a file written by `memory export` (default); locomo: LoCoMo JSON",
    )

    stats = actions.add_parser("stats", help="how much is remembered, and the file sizes")
    stats.add_argument("--json", action="store_true", help="print JSON")

    encrypt = actions.add_parser(
        "encrypt",
        help="encrypt memory.db in place with SQLCipher (for memory.encrypt = true)",
        description="Convert a plaintext memory.db to SQLCipher, in place, leaving no plaintext "
        "copy behind. The passphrase comes from memory.key_source (asked twice on a terminal). "
        "Stop the companion first.",
    )
    encrypt.add_argument("--json", action="store_true", help="print JSON")
    actions.add_parser(
        "set-key",
        help="store the memory passphrase in the OS keyring (asked twice on the terminal)",
    )
    recover = actions.add_parser(
        "recover",
        help="save what can be read from a damaged memory.db into a new one",
        description="When memory.db fails its integrity check, copy every row that can still "
        "be read into a new memory.db (the damaged file is kept as memory.db.corrupt-DATE). "
        "Stop the companion first. An intact memory.db is left alone.",
    )
    recover.add_argument("--json", action="store_true", help="print JSON")


def _open(config: Config) -> Any:
    from voice_companion.memory.encryption import open_memory_db
    from voice_companion.memory.longterm import LongTermMemory

    return LongTermMemory(open_memory_db(config.data_dir, config.memory), config.memory)


def _parse_id(text: str) -> tuple[str, int]:
    raw = text.strip().lower()
    kind = "fact" if raw.startswith("f") else "turn"
    digits = raw[1:] if raw[:1] in ("f", "t") else raw
    # ASCII digits (int() also reads "١٢"), and an id SQLite can hold (64 bits).
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        raise UsageError(f"{text!r} is not a memory id (a turn: 12 or t12; a fact: f3)")
    return kind, int(digits)


def cmd_memory(config: Config, args: argparse.Namespace) -> int:
    action = {
        "list": _list,
        "search": _search,
        "show": _show,
        "forget": _forget,
        "export": _export,
        "import": _import,
        "stats": _stats,
    }.get(args.memory_command)
    if action is None:  # the commands that change how memory.db is kept, not what is in it
        kept = {"encrypt": _encrypt, "set-key": _set_key, "recover": _recover}
        return kept[args.memory_command](config, args)
    memory = _open(config)
    try:
        return action(memory, args)
    finally:
        memory.close()


def _turn_json(t: Any) -> dict[str, Any]:
    return {
        "id": t.id,
        "date": t.at.isoformat(),
        "speaker": t.speaker,
        "text": t.text,
        "source_id": t.source_id,
        "conversation_id": t.conversation_id,
        "duration_s": t.duration_s,
        "interrupted": t.interrupted,
    }


def _fact_json(f: Any) -> dict[str, Any]:
    from voice_companion.memory.facts import describe

    return {
        "id": f"f{f.id}",
        "kind": f.kind,
        "key": f.key,
        "value": f.value,
        "says": describe(f, you=True),
        "valid_from": f.valid_from.isoformat(),
        "valid_to": f.valid_to.isoformat() if f.valid_to else None,
        "event_date": f.event_date.isoformat() if f.event_date else None,
        "superseded_by": f"f{f.superseded_by}" if f.superseded_by else None,
        "source_turn_ids": list(f.source_turn_ids),
        "extractor": f.extractor,
    }


def _turn_line(t: Any) -> str:
    flags = " (interrupted)" if t.interrupted else ""
    text = _shown(" ".join(t.text.split()))
    speaker, source = _shown(t.speaker), _shown(t.source_id)
    return f"{t.id:>6}  {t.at:%Y-%m-%d %H:%M}  {speaker:<9}  [{source}]  {text}{flags}"


def _fact_line(f: Any) -> str:
    from voice_companion.memory.facts import describe

    sources = ",".join(str(s) for s in f.source_turn_ids) or "-"
    validity = "" if f.valid else f"  (no longer valid since {f.valid_to:%Y-%m-%d})"
    fact_id = f"f{f.id}"
    says = _shown(describe(f))
    return f"{fact_id:>6}  {f.valid_from:%Y-%m-%d}  {says}  ← turn {sources}{validity}"


def _list(memory: Any, args: argparse.Namespace) -> int:
    facts = [] if args.turns else memory.db.facts(valid_only=not args.all)
    turns = [] if args.facts else memory.db.turns(limit=args.limit)
    if args.json:
        print(
            json.dumps(
                {"facts": [_fact_json(f) for f in facts], "turns": [_turn_json(t) for t in turns]},
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    if not args.turns:
        print("Facts:" if facts else "Facts: none yet")
        for f in facts:
            print(_fact_line(f))
    if not args.facts:
        if not args.turns:
            print()
        print(f"Latest {len(turns)} turns:" if turns else "Turns: none yet")
        for t in turns:
            print(_turn_line(t))
    return EXIT_OK


def _search(memory: Any, args: argparse.Namespace) -> int:
    from voice_companion.memory.longterm import MIN_SIMILARITY

    # Dense search always returns its nearest turns; one found only by meaning and below the
    # floor the companion itself quotes from is not a hit ("zzzqqq" matches nothing).
    hits = [
        h
        for h in memory.search(args.query, args.limit, args.mode)
        if h.bm25_rank is not None or (h.similarity or 0.0) >= MIN_SIMILARITY
    ]
    if args.json:
        rows = [
            {
                **_turn_json(h.turn),
                "score": round(h.score, 6),
                "bm25_rank": h.bm25_rank,
                "dense_rank": h.dense_rank,
                "similarity": None if h.similarity is None else round(h.similarity, 4),
            }
            for h in hits
        ]
        print(json.dumps(rows, ensure_ascii=False))
        return EXIT_OK
    if not hits:
        print("nothing found")
    for h in hits:
        print(f"{h.score:.4f}  {_turn_line(h.turn)}")
    return EXIT_OK


def _show(memory: Any, args: argparse.Namespace) -> int:
    kind, number = _parse_id(args.id)
    if kind == "fact":
        fact = memory.db.fact(number)
        sources = memory.db.turns_by_id(list(fact.source_turn_ids))
        if args.json:
            data = _fact_json(fact)
            data["sources"] = [_turn_json(sources[i]) for i in sorted(sources)]
            print(json.dumps(data, ensure_ascii=False))
            return EXIT_OK
        print(_fact_line(fact))
        print("learnt from:")
        for turn_id in sorted(sources):
            print(_turn_line(sources[turn_id]))
        return EXIT_OK
    turn = memory.db.turn(number)
    learnt = [memory.db.fact(i) for i in memory.db.facts_from_turns([number])]
    if args.json:
        print(json.dumps({**_turn_json(turn), "facts": [_fact_json(f) for f in learnt]}))
        return EXIT_OK
    print(_turn_line(turn))
    print(f"conversation {turn.conversation_id}", end="")
    print(f", spoken for {turn.duration_s:.1f} s" if turn.duration_s else "")
    for fact in learnt:
        print("fact: " + _fact_line(fact))
    return EXIT_OK


def _forget(memory: Any, args: argparse.Namespace) -> int:
    from voice_companion.memory.forgetting import plan_ids, plan_topic
    from voice_companion.memory.seam import TopicMatches

    if not args.ids and not args.match:
        raise UsageError("say what to forget: one or more ids, or --match TEXT")
    if getattr(memory.db, "read_only", False):  # before listing what could not go
        raise MemoryStoreError(
            f"{memory.db.path} is in a folder that cannot be written here: nothing can be "
            "forgotten until it can (check the disk or the folder's permissions)"
        )
    turn_ids: set[int] = set()
    fact_ids: set[int] = set()
    for text in args.ids:
        kind, number = _parse_id(text)
        if kind == "fact":
            memory.db.fact(number)  # raises when unknown
            fact_ids.add(number)
        else:
            memory.db.turn(number)
            turn_ids.add(number)
    plan = plan_ids(memory.db, sorted(turn_ids), sorted(fact_ids))
    if args.match:
        if not args.match.strip():
            raise UsageError("--match needs some text")
        # The same matcher as "forget about ..." said to the companion.
        topic = plan_topic(memory.db, args.match)
        gone = set(plan.turn_ids) | set(topic.turn_ids)
        plan = TopicMatches(
            tuple(sorted(gone)),
            tuple(sorted(set(plan.fact_ids) | set(topic.fact_ids))),
            tuple(r for r in topic.redactions if r[0] not in gone),
            topic.dropped_sources,
        )
    if not plan:
        print(f"nothing matches '{_shown(args.match or '')}'; nothing was forgotten")
        return EXIT_OK
    _show_plan(memory, plan)
    what = f"{len(plan.turn_ids)} turn(s) and {len(plan.fact_ids)} fact(s)"
    if plan.redactions:
        what = f"{len(plan.turn_ids)} turn(s), part of {len(plan.redactions)} more, and " + (
            f"{len(plan.fact_ids)} fact(s)"
        )
    if not args.yes:
        print(f"Forget {what} for good? This cannot be undone. [y/N] ", end="", file=sys.stderr)
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("voice-companion: nothing was forgotten", file=sys.stderr)
            return EXIT_FAILED
    done = memory.db.erase(plan)
    rewritten = f", rewrote {done.redacted} turn(s)" if done.redacted else ""
    print(
        f"forgot {done.turns} turn(s){rewritten} and {done.facts} fact(s); they are gone from "
        f"{memory.db.path}"
    )
    _tell_the_companion()
    return EXIT_OK


def _show_plan(memory: Any, plan: Any) -> None:
    """What a forgetting will take, before it is confirmed (escapes shown, not obeyed)."""
    turns = memory.db.turns_by_id([*plan.turn_ids, *(t for t, _ in plan.redactions)])
    if plan.turn_ids:
        print("turns to forget:", file=sys.stderr)
        for turn_id in plan.turn_ids:
            print(_turn_line(turns[turn_id]), file=sys.stderr)
    if plan.redactions:
        print("turns that also said other things, kept without it:", file=sys.stderr)
        for turn_id, text in plan.redactions:
            print(_turn_line(turns[turn_id]), file=sys.stderr)
            print(f"{'':>6}  becomes: {_shown(' '.join(text.split()))}", file=sys.stderr)
    if plan.fact_ids:
        print("facts to forget:", file=sys.stderr)
        for fact_id in plan.fact_ids:
            print(_fact_line(memory.db.fact(fact_id)), file=sys.stderr)


def _tell_the_companion() -> None:
    """A running companion drops what was forgotten at once (it would before its next turn
    anyway: it checks the forget generation in memory.db)."""
    from voice_companion.control.client import request
    from voice_companion.control.server import default_socket_path

    try:
        request(default_socket_path(), {"cmd": "forgotten"}, timeout_s=2.0)
    except CompanionError as exc:  # not running, or not answering: nothing more to do
        log.debug("the companion was not told: %s", exc)


def _shown(text: str) -> str:
    """Text from memory on one line, as every printer shows it (control characters as
    visible escapes): the one ``printable`` rule."""
    return printable(text, one_line=True)


def _export(memory: Any, args: argparse.Namespace) -> int:
    from voice_companion.memory.transfer import export_file

    counts = export_file(memory.db, args.file)
    print(
        f"wrote {counts['turns']} turns, {counts['facts']} facts in "
        f"{counts['conversations']} conversations to {args.file}"
    )
    return EXIT_OK


def _import(memory: Any, args: argparse.Namespace) -> int:
    from voice_companion.memory import transfer

    if args.format == "locomo":
        from voice_companion.bench.locomo import import_locomo, read_locomo

        done = import_locomo(memory.db, read_locomo(args.file))
    else:
        done = transfer.import_file(memory.db, args.file)
    log.info("imported %d turns; indexing them for search", done.turns)
    try:
        memory.index_pending()
    except CompanionError as exc:  # the turns are in; search by words works without vectors
        log.warning("the imported turns are kept but not indexed by meaning yet: %s", exc)
    print(
        f"imported {done.turns} turns and {done.facts} facts in "
        f"{done.conversations} conversations from {args.file}"
    )
    if done.already or done.forgotten:
        print(
            f"left out {done.already} turns and facts the memory holds already and "
            f"{done.forgotten} that were forgotten since the export"
        )
    return EXIT_OK


def _stats(memory: Any, args: argparse.Namespace) -> int:
    s = memory.db.stats()
    data = {
        "path": str(memory.db.path),
        "conversations": s.conversations,
        "turns": s.turns,
        "user_turns": s.user_turns,
        "embedded_turns": s.embedded_turns,
        "facts": s.facts,
        "valid_facts": s.valid_facts,
        "first": s.first.isoformat() if s.first else None,
        "last": s.last.isoformat() if s.last else None,
        "db_bytes": s.db_bytes,
        "wal_bytes": s.wal_bytes,
        "schema_version": memory.db.schema_version,
    }
    if args.json:
        print(json.dumps(data))
        return EXIT_OK
    for key, value in data.items():
        print(f"{key:>15}: {value}")
    return EXIT_OK


def _encrypt(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.memory.encryption import encrypt_in_place

    done = encrypt_in_place(config.data_dir, config.memory)
    if args.json:
        print(json.dumps({"path": str(done.path), "turns": done.turns, "encrypted": True}))
    else:
        print(f"encrypted {done.path} ({done.turns} turns); no plaintext copy is left")
    if not config.memory.encrypt:
        print(
            "voice-companion: now set memory.encrypt = true, or the companion will refuse "
            "the encrypted file",
            file=sys.stderr,
        )
    return EXIT_OK


def _recover(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.memory.encryption import memory_connector
    from voice_companion.memory.recover import recover

    done = recover(config.data_dir, memory_connector(config.memory), config.memory.busy_timeout_ms)
    if args.json:
        print(
            json.dumps(
                {
                    "damaged": done.damaged,
                    "turns": done.turns,
                    "facts": done.facts,
                    "unreadable": done.unreadable,
                    "copy": str(done.copy) if done.copy else None,
                }
            )
        )
    elif not done.damaged:
        print("memory.db passes its integrity check: nothing to recover, nothing was changed")
    else:
        lost = f"; {done.unreadable} unreadable row(s) or stretch(es) left out" * bool(
            done.unreadable
        )
        print(
            f"recovered {done.turns} turn(s) and {done.facts} fact(s) into a new memory.db"
            f"{lost}; the damaged file is kept as {done.copy}"
        )
    return EXIT_OK


def _set_key(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.memory.encryption import store_key

    backend = store_key()
    print(f"stored the memory passphrase in the OS keyring ({backend})")
    return EXIT_OK


COMMANDS = {"memory": cmd_memory}
