"""Command line: the only package that prints for humans (one module per command group).

Exit codes: 0 success, 1 the work failed (unreadable input, an engine error), 2 usage or
configuration error, 130 interrupted. A user's mistake gets one line on stderr, never a
traceback; ``--verbose`` shows details.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voice_companion import __version__, stay_offline
from voice_companion.cli import bench as bench_cli
from voice_companion.cli import control, service
from voice_companion.cli import memory as memory_cli
from voice_companion.cli import persona as persona_cli
from voice_companion.cli import voices as voices_cli
from voice_companion.cli.private_logs import PrivateErrorsFilter
from voice_companion.cli.safe_text import PrintableStream
from voice_companion.config import Config, PersonaConfig, load_config
from voice_companion.errors import CompanionError, ConfigError, UsageError
from voice_companion.private import companion_dirs, repair, set_umask
from voice_companion.trace import check_trace_path

log = logging.getLogger("voice_companion")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
CHAT_MAX_CHARS = 16_000
"""Longest message `chat` reads from a pipe, in characters (a line beyond it is skipped)."""
SAY_STDIN_MAX_CHARS = 100_000
"""Most text `say -` reads (about as much as one command-line argument may hold)."""
TRANSCRIBE_MAX_S = 600
"""Longest recording ``transcribe`` takes, seconds: whisper gets the file as one utterance
(30 minutes took 45 s and 1.8 GB of memory, with "you" written for every silent window)."""


def utf8_text(value: str) -> str:
    """Every text argument (a name, words to match): Python keeps bytes that are not UTF-8
    as lone surrogates, which SQLite, JSON and the terminal refuse later with a traceback.
    Paths are ``Path`` values and may hold any bytes."""
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise argparse.ArgumentTypeError("not valid UTF-8 text (check the terminal's encoding)")
    return value


class _Parser(argparse.ArgumentParser):
    intermixed = False
    """Positionals may come after options (``voices try NAME --output f TEXT``): argparse
    otherwise gives an optional positional its default at the first one."""
    _mixing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self.intermixed and not self._mixing:
            self._mixing = True  # parse_known_intermixed_args calls back into this method
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._mixing = False
        return super().parse_known_args(args, namespace)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        # Text, unless the argument says otherwise (a Path, a number, a flag).
        if kwargs.get("type") is None and kwargs.get("action") in (None, "store", "append"):
            kwargs["type"] = utf8_text
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own format, but our exit code for usage errors and a hint.
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="voice-companion",
        description="A local, private, voice-first AI companion. Nothing leaves this machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="start the companion (or answer a recording)",
        description="Listen and answer. With --input, treat a recording "
        "as what the microphone heard and write the replies to --output.",
    )
    run.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="recording to answer (WAV, FLAC, MP3, OGG; any rate or channels)",
    )
    run.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="WAV file for everything the companion said (with --input)",
    )
    run.add_argument(
        "--remember",
        action="store_true",
        help="with --input: keep the recording as part of your life (learn from it, recall "
        "it); by default its turns are kept apart, marked as a recording",
    )
    run.add_argument(
        "--realtime",
        action="store_true",
        help="feed the recording at real-time pace, as a microphone would",
    )
    run.add_argument(
        "--trace", type=Path, metavar="FILE", help="write one JSON line per event with timings"
    )

    chat = commands.add_parser(
        "chat",
        help="talk by text in the terminal",
        description="Text chat with the same dialogue engine. When "
        "stdin is not a terminal, reads one message per line and prints "
        "one reply per line.",
    )
    chat.add_argument("--json", action="store_true", help="print each reply as a JSON line")
    chat.add_argument(
        "--persona", metavar="NAME", help="talk with this persona (default: the one in use)"
    )

    say = commands.add_parser("say", help="speak TEXT now (or into a WAV file with --output)")
    say.add_argument("text", metavar="TEXT", help="what to say ('-' reads stdin)")
    say.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write a WAV file instead of asking the running companion to say it",
    )

    transcribe = commands.add_parser(
        "transcribe",
        help="print what a recording says",
        description="Print what a recording says (one utterance or a short recording: at "
        f"most {TRANSCRIBE_MAX_S // 60} minutes; `run --input` answers longer ones).",
    )
    transcribe.add_argument("file", type=Path, metavar="FILE")
    transcribe.add_argument("--json", action="store_true", help="print a JSON object")
    control.add_parsers(commands)
    service.add_parsers(commands)
    memory_cli.add_parsers(commands)
    bench_cli.add_parsers(commands)
    voices_cli.add_parsers(commands)
    persona_cli.add_parsers(commands)
    for sub in _subparsers(parser):
        _add_global_options(sub, top=False)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """--config, --data-dir, -v and -q, before the command or after it (`chat --data-dir D`).
    After it they default to nothing, so that they never undo one given before."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=default(None),
        help="configuration file (TOML)",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", default=default(None), help="folder for all state"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more detail on stderr (-vv: debug, includes what was said)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="only errors on stderr"
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command's and subcommand's parser, depth first."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:  # argparse keeps its subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                found += [sub, *_subparsers(sub)]
    return found


LONG_RUNNING = frozenset({"run", "bench"})
"""Commands that start again on jemalloc when called from the command line (see allocator)."""


def main(argv: Sequence[str] | None = None) -> int:
    # Private and offline before anything else runs: what this process creates is 0600/0700
    # (SQLite's -wal and -shm included), and no engine's library phones home.
    set_umask()
    stay_offline()
    # Everything printed goes through printable(): what came from outside (a card, a memory,
    # a reply, a file name) cannot drive the terminal. Undecodable input bytes are replaced,
    # whatever the locale says, rather than ending the command with a traceback.
    streams = sys.stdout, sys.stderr
    if streams[0] is not None:
        sys.stdout = PrintableStream(streams[0])
    if streams[1] is not None:
        sys.stderr = PrintableStream(streams[1])
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and args.command in LONG_RUNNING:
        from voice_companion.allocator import restart_with_jemalloc

        restart_with_jemalloc(sys.argv[1:])
    _setup_logging(args.verbose, args.quiet)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.config, data_dir=args.data_dir)
        repair(companion_dirs(config.data_dir))
        if getattr(args, "trace", None) is not None:
            check_trace_path(args.trace)
        return int(COMMANDS[args.command](config, args))
    except ConfigError as exc:
        print(f"voice-companion: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"voice-companion: {args.command}: {exc} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    except CompanionError as exc:
        print(f"voice-companion: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("voice-companion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`voice-companion chat | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        # A path the system refused where no message was worded for it (a name too long, ...).
        where = f": {exc.filename}" if exc.filename else ""
        print(f"voice-companion: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED


_JOURNAL_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


class _JournalFormatter(logging.Formatter):
    """Under systemd, prefix the syslog priority so journald files each line correctly."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_JOURNAL_PRIORITY.get(record.levelno, 2)}>{super().format(record)}"


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.INFO, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("voice-companion: %(message)s"))
    if level > logging.DEBUG:  # error text from elsewhere may quote the user: -vv only
        handler.addFilter(PrivateErrorsFilter())
    root = logging.getLogger("voice_companion")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _cmd_run(config: Config, args: argparse.Namespace) -> int:
    if args.input is None:
        if args.output or args.realtime or args.remember:
            raise UsageError("--output, --realtime and --remember need --input FILE")
        return _run_live(config, args)
    if args.output is None:
        raise UsageError("--input needs --output FILE for the companion's voice")
    voices_cli.require_wav(args.output)
    from voice_companion import app
    from voice_companion.engines.decode import AudioStream
    from voice_companion.runtime.runner import run_recording

    recording = AudioStream(args.input)  # read from disk as it is answered, never held whole
    engines = app.build_engines(config)
    log.info("answering %s (about %.1f s of audio)", args.input, recording.duration_s)
    summary = asyncio.run(
        run_recording(
            config, engines, recording, args.output, args.realtime, args.trace, args.remember
        )
    )
    if summary.turns == 0:
        log.warning("heard no speech in %s; %s holds no reply", args.input, args.output)
    else:
        log.info(
            "answered %d utterance(s); wrote %.1f s of speech to %s",
            summary.turns,
            summary.output_s,
            args.output,
        )
    return EXIT_OK


def _run_live(config: Config, args: argparse.Namespace) -> int:
    from voice_companion import app
    from voice_companion.control.server import default_socket_path
    from voice_companion.errors import AudioDeviceError

    control_path = default_socket_path()
    try:
        app.check_devices(config)  # before loading the models: a quick answer
        # The memory (and its key, when encrypted) before the models: a refusal is quick.
        dialogue = app.build_dialogue(config)
        daemon = app.build_daemon(
            config, app.build_engines(config, dialogue.persona), control_path, args.trace, dialogue
        )
    except AudioDeviceError as exc:
        if not sys.stdin.isatty():
            raise
        print(f"voice-companion: {exc}", file=sys.stderr)
        print("voice-companion: opening the text chat instead (Ctrl-D to leave)", file=sys.stderr)
        return _cmd_chat(config, argparse.Namespace(json=False))
    asyncio.run(daemon.run())
    return EXIT_OK


def _cmd_chat(config: Config, args: argparse.Namespace) -> int:
    from voice_companion import app
    from voice_companion.runtime.runner import TextChat

    interactive = sys.stdin.isatty()
    if getattr(args, "persona", None):
        config = dataclasses.replace(config, persona=PersonaConfig(name=args.persona))
    dialogue = app.build_dialogue(config)  # first: a persona that is not there fails at once
    model = app.build_model(config)
    chat = TextChat(config, model, dialogue)
    persona, care = dialogue.persona, dialogue.care
    name = persona.name
    if interactive:
        # That it is an AI comes before anything else; no greeting in the quiet hours.
        if care is not None and care.needs_disclosure(persona.key):
            print(f"{name}: {persona.ai_disclosure}")
            care.disclosed(persona.key)
        if care is None or not care.quiet_now():
            print(f"{name}: {persona.greeting_for()}")
        print("(Ctrl-D to leave, Ctrl-C to stop a reply)", file=sys.stderr)

    held = _HeldLogs()

    async def answer(line: str) -> str:
        pieces: list[str] = []
        if interactive:
            held.hold()  # a log line must not land inside the companion's words
            print(f"{name}: ", end="", flush=True)
        try:
            async for sentence in chat.reply(line):
                if interactive:
                    print(("" if not pieces else " ") + sentence, end="", flush=True)
                pieces.append(sentence)
        finally:
            if interactive:
                print(flush=True)
                held.release()
        return " ".join(" ".join(pieces).split())

    try:
        while True:
            try:
                line = input("you: ") if interactive else _read_message()
            except EOFError:
                break
            except UsageError as exc:  # one message refused; the next is read
                print(f"voice-companion: chat: {exc}", file=sys.stderr)
                continue
            if not line.strip():
                continue
            try:
                reply = asyncio.run(answer(line.strip()))
            except KeyboardInterrupt:
                if not interactive:
                    raise
                # Ctrl-C stops this reply (what was said of it is kept), not the chat.
                print("voice-companion: reply stopped (Ctrl-D leaves the chat)", file=sys.stderr)
                continue
            if not interactive:
                print(
                    json.dumps({"you": line.strip(), "reply": reply}) if args.json else reply,
                    flush=True,
                )
    finally:
        chat.close()
    return EXIT_OK


class _HeldLogs(logging.Filter):
    """Holds the companion's log records while the chat writes a reply line on the same
    terminal, and passes them on once the line is complete."""

    def __init__(self) -> None:
        super().__init__()
        self._held: list[logging.LogRecord] = []
        self._handlers = logging.getLogger("voice_companion").handlers

    def filter(self, record: logging.LogRecord) -> bool:
        self._held.append(record)
        return False

    def hold(self) -> None:
        for handler in self._handlers:
            handler.addFilter(self)

    def release(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self)
        held, self._held = self._held, []
        for record in dict.fromkeys(held):  # each handler saw it: pass it on once
            logging.getLogger(record.name).handle(record)


def _read_message() -> str:
    """One line of stdin, at most ``CHAT_MAX_CHARS``: ``chat < /dev/zero`` must not fill
    memory. ``EOFError`` at the end; ``UsageError`` for a longer line (read to its end)."""
    line = sys.stdin.readline(CHAT_MAX_CHARS + 1)
    if not line:
        raise EOFError
    if len(line) > CHAT_MAX_CHARS and not line.endswith("\n"):
        while (rest := sys.stdin.readline(CHAT_MAX_CHARS)) and not rest.endswith("\n"):
            pass
        raise UsageError(f"a message longer than {CHAT_MAX_CHARS} characters was skipped")
    return line.removesuffix("\n")


def _read_stdin_text() -> str:
    """All of stdin for ``say -``, at most ``SAY_STDIN_MAX_CHARS``."""
    text = sys.stdin.read(SAY_STDIN_MAX_CHARS + 1)
    if len(text) > SAY_STDIN_MAX_CHARS:
        raise UsageError(f"more than {SAY_STDIN_MAX_CHARS} characters on stdin")
    return text


def _cmd_say(config: Config, args: argparse.Namespace) -> int:
    from voice_companion import app
    from voice_companion.dialogue.sentences import speakable
    from voice_companion.engines.decode import write_wav
    from voice_companion.runtime.turn import spoken_sentences, synthesize_whole

    voices_cli.require_wav(args.output)
    text = _read_stdin_text() if args.text == "-" else args.text
    if args.output is None:
        if not text.strip():
            raise UsageError("nothing to say")
        control.send({"cmd": "say", "text": text})
        return EXIT_OK
    pieces = spoken_sentences(text, config.dialogue.sentence_max_chars)
    sentences = [s for s in (speakable(p) for p in pieces) if s]
    if not sentences:
        raise UsageError("nothing to say: the text has no speakable words")
    synthesizer = app.build_synthesizer(config)
    if len(sentences) > 3:
        log.info("speaking %d sentences", len(sentences))
    write_wav(args.output, synthesize_whole(sentences, synthesizer, config.tts.sentence_pause_ms))
    return EXIT_OK


def _cmd_transcribe(config: Config, args: argparse.Namespace) -> int:
    from voice_companion import app
    from voice_companion.engines.decode import read_audio

    # Whisper takes the file as one utterance: memory and time grow with its length.
    recording = read_audio(args.file, max_s=TRANSCRIBE_MAX_S)
    transcript = app.build_transcriber(config).transcribe(recording)
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(args.file),
                    "text": transcript.text,
                    "audio_s": round(recording.duration_s, 3),
                }
            )
        )
    else:
        print(transcript.text)
    return EXIT_OK


COMMANDS = {
    "run": _cmd_run,
    "chat": _cmd_chat,
    "say": _cmd_say,
    "transcribe": _cmd_transcribe,
    **control.COMMANDS,
    **service.COMMANDS,
    **memory_cli.COMMANDS,
    **bench_cli.COMMANDS,
    **voices_cli.COMMANDS,
    **persona_cli.COMMANDS,
}
