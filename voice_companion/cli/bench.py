"""`voice-companion bench ...`: the benchmarks that report numbers.

``add_parsers`` creates the ``bench`` group; each benchmark hooks itself in with its own
``add_<name>_parser(bench_subparsers)``, which sets the ``bench_handler`` it runs:

    latency   response latency per stage, beside the sequential baseline
    soak      memory, file descriptors, threads and latency drift over a long run
    crash     kill -9 at random moments during a stream of turns: nothing confirmed is lost
    recall    memory recall@k and retrieval latency on LoCoMo-format conversations
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from voice_companion.config import Config
from voice_companion.errors import CompanionError

log = logging.getLogger("voice_companion")

EXIT_OK = 0


def add_parsers(commands: Any) -> None:
    """Add the ``bench`` command group to the top-level subparsers."""
    bench = commands.add_parser("bench", help="benchmarks")
    kinds = bench.add_subparsers(dest="bench_command", metavar="BENCH", parser_class=type(bench))
    kinds.required = True
    add_latency_parser(kinds)
    add_soak_parser(kinds)
    add_crash_parser(kinds)
    add_recall_parser(kinds)
    add_knows_me_parser(kinds)


def cmd_bench(config: Config, args: argparse.Namespace) -> int:
    """`bench BENCH ...`: run the benchmark the subcommand chose."""
    return int(args.bench_handler(config, args))


def add_latency_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``latency`` to the ``bench`` subcommands; returns its parser."""
    latency: argparse.ArgumentParser = bench_subparsers.add_parser(
        "latency",
        help="response latency (end of speech to first reply audio) and per stage",
        description="Feed the fixed set of recorded utterances at real-time pace through the "
        "real pipeline with the configured models; report p50/p95 of the response latency "
        "and of each stage, the same utterances answered sequentially (whole transcript, "
        "whole reply, whole synthesis, then play) and the ratio, the time from process "
        "start to ready, and the first turn against the later ones.",
    )
    latency.add_argument(
        "--utterances",
        type=Path,
        metavar="DIR",
        help="folder with manifest.json and the recordings (default: tests/data/utterances)",
    )
    latency.add_argument(
        "--limit", type=positive_int, metavar="N", help="only the first N utterances"
    )
    latency.add_argument("--no-baseline", action="store_true", help="skip the sequential baseline")
    latency.add_argument(
        "--cold", action="store_true", help="no warm-up before the first utterance"
    )
    latency.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    latency.set_defaults(bench_command="latency", bench_handler=cmd_latency)
    return latency


def cmd_latency(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.bench import latency

    folder = args.utterances or latency.default_utterances_dir()
    utterances = latency.load_utterances(folder, args.limit)
    log.info("answering %d utterances in real time; this takes a few minutes", len(utterances))
    report = latency.run(
        config,
        utterances,
        baseline=not args.no_baseline,
        warm=not args.cold,
        progress=log.info,
    )
    print(format_report(report))
    if args.json:
        try:
            args.json.write_text(json.dumps(report.as_dict(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CompanionError(f"cannot write {args.json}: {exc}") from exc
    return EXIT_OK


def format_report(report: Any) -> str:
    """The human table: one row per stage, p50 and p95, streaming then sequential."""
    from voice_companion.bench.latency import SEQUENTIAL_STAGES, STREAMING_STAGES

    lines = [f"response latency over {report.utterances} utterances (seconds)"]
    lines.append(f"{'streaming':<30} {'p50':>7} {'p95':>7} {'n':>4}")
    for key, label in STREAMING_STAGES:
        lines.append(_row(label, report.streaming.summary([key])[key]))
    if report.sequential is not None:
        lines.append(f"{'sequential baseline':<30} {'p50':>7} {'p95':>7} {'n':>4}")
        for key, label in SEQUENTIAL_STAGES:
            lines.append(_row(label, report.sequential.summary([key])[key]))
        lines.append(
            f"baseline / streaming: {_num(report.ratio('p50'))}x at p50, "
            f"{_num(report.ratio('p95'))}x at p95"
        )
    ready = report.ready
    lines.append(
        f"process start to ready: {_num(ready['process_start_to_ready_s'])} s "
        f"(models {_num(ready['model_load_s'])} s, warm-up {_num(ready['warm_up_s'])} s)"
    )
    first = report.first_turn()
    lines.append(
        f"first turn: {_num(first['first_s'])} s; later turns p50 {_num(first['later_p50_s'])} s"
        f" (first / later = {_num(first['ratio'])})"
    )
    agreement = report.trace_agreement()
    lines.append(
        f"trace vs benchmark latency: at most {_num(agreement)} s apart "
        "(trace: end of speech as the voice detector saw it)"
    )
    abandoned = sum(int(t.get("abandoned", 0)) for t in report.streaming.turns)
    missing = sum(1 for t in report.streaming.turns if t.get("response_latency_s") is None)
    lines.append(
        f"speculative turns abandoned: {abandoned}; utterances without a reply: {missing}; "
        f"load average {report.streaming.loadavg_before} -> {report.machine['loadavg_at_end']}"
        f" on {report.machine['cores']} cores; malloc: {report.machine['malloc']}"
    )
    return "\n".join(lines)


def _row(label: str, stats: dict[str, Any]) -> str:
    return f"  {label:<28} {_num(stats['p50']):>7} {_num(stats['p95']):>7} {stats['n']:>4}"


def _num(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    if value > MAX_COUNT:  # SQLite takes 64-bit integers at most: no OverflowError later
        raise argparse.ArgumentTypeError(f"{text!r} must be at most {MAX_COUNT:,}")
    return value


MAX_COUNT = 10**9
"""Largest count (a limit, a number of turns or runs) a command takes."""


# -- bench soak --------------------------------------------------------------------------------


def add_soak_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``soak`` to the ``bench`` subcommands; returns its parser."""
    soak: argparse.ArgumentParser = bench_subparsers.add_parser(
        "soak",
        help="memory, file descriptors, threads and latency drift over a long run",
        description="Loop the recorded utterances, conversation after conversation, through "
        "the real pipeline with the configured models; report resident memory growth (MB per "
        "hour after the warm-up, from a fitted line), open file descriptors and threads at the "
        "start and the end, and the median response latency of the first quarter of the turns "
        "against the last quarter.",
    )
    soak.add_argument(
        "--minutes",
        type=positive_float,
        default=10.0,
        metavar="N",
        help="how long to run, minutes (10; fractions allowed; checked between conversations)",
    )
    soak.add_argument("--turns", type=positive_int, metavar="N", help="stop after N turns")
    soak.add_argument(
        "--warm-up",
        type=positive_float,
        metavar="MIN",
        help="minutes left out of the memory fit (default: the first conversation or a fifth "
        "of the run, whichever is longer, at most half of it)",
    )
    soak.add_argument(
        "--conversation",
        type=positive_int,
        default=8,
        metavar="N",
        help="utterances per conversation (8)",
    )
    soak.add_argument(
        "--utterances",
        type=Path,
        metavar="DIR",
        help="folder with manifest.json and the recordings (default: tests/data/utterances)",
    )
    soak.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    soak.set_defaults(bench_command="soak", bench_handler=cmd_soak)
    return soak


def cmd_soak(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.bench import latency, soak

    folder = args.utterances or latency.default_utterances_dir()
    utterances = latency.load_utterances(folder)
    log.info("soaking for %g minutes with the configured models", args.minutes)
    report = soak.run(
        config,
        utterances,
        minutes=args.minutes,
        max_turns=args.turns,
        conversation_turns=args.conversation,
        progress=log.info,
        warm_up_minutes=args.warm_up,
    )
    results = report.as_dict()
    print(format_soak(results))
    _write_json(args.json, results)
    return EXIT_OK


def format_soak(results: dict[str, Any]) -> str:
    """The human table: memory, descriptors, threads, latency drift."""
    rss, fds, threads = results["rss_mb"], results["fds"], results["threads"]
    latency = results["latency_p50_s"]
    return "\n".join(
        [
            f"soak: {results['conversations']} conversations, {results['turns']} turns "
            f"({results['replies']} answered) in {results['seconds'] / 60:.1f} min; "
            f"warm-up {results['warm_up_s']:.0f} s",
            f"{'':<26} {'start':>9} {'end':>9} {'max':>9}",
            f"{'resident memory (MB)':<26} {rss['start']:>9.1f} {rss['end']:>9.1f} "
            f"{rss['max']:>9.1f}",
            f"{'open file descriptors':<26} {fds['start']:>9} {fds['end']:>9} {fds['max']:>9}",
            f"{'threads (Python)':<26} {threads['start']:>9} {threads['end']:>9} "
            f"{threads['max']:>9}",
            f"{'threads (OS)':<26} {threads['os_start']:>9} {threads['os_end']:>9} "
            f"{threads['os_max']:>9}",
            f"resident memory growth after warm-up: {_num(rss['growth_mb_per_h'])} MB/h "
            f"(line fitted through {rss['samples_fitted']} samples; target under 5)",
            f"response latency p50: first quarter {_num(latency['first_quarter'])} s, "
            f"last quarter {_num(latency['last_quarter'])} s",
            f"load average {results['machine']['loadavg_before']} -> "
            f"{results['machine']['loadavg_after']} on {results['machine']['cores']} cores; "
            f"malloc: {results['machine'].get('malloc', 'system')}",
        ]
    )


# -- bench crash -------------------------------------------------------------------------------


def add_crash_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``crash`` to the ``bench`` subcommands; returns its parser."""
    crash: argparse.ArgumentParser = bench_subparsers.add_parser(
        "crash",
        help="kill -9 the chat at random moments; count turns lost and integrity failures",
        description="Start `voice-companion chat --json` on a scratch data folder, feed it "
        "turns, kill it with SIGKILL at a random moment, check memory.db (every turn whose "
        "reply was printed must be there; PRAGMA integrity_check must say ok), and again. "
        "The language model is a scripted OpenAI-compatible server in this process: the "
        "memory store is what is under test.",
    )
    crash.add_argument("--runs", type=positive_int, default=1000, metavar="N", help="kills (1000)")
    crash.add_argument("--seed", type=int, metavar="N", help="seed for the kill moments")
    crash.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep it (memory.db, the chat's stderr); default: a temporary one",
    )
    crash.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    crash.set_defaults(bench_command="crash", bench_handler=cmd_crash)
    return crash


def cmd_crash(config: Config, args: argparse.Namespace) -> int:
    import tempfile

    from voice_companion.bench import crash

    log.info("killing the chat %d times; this takes a while", args.runs)
    if args.keep is not None:
        report = crash.run(args.runs, args.keep, args.seed, progress=log.info)
    else:
        with tempfile.TemporaryDirectory(prefix="vc-crash-") as tmp:
            report = crash.run(args.runs, Path(tmp), args.seed, progress=log.info)
    results = report.as_dict()
    print(format_crash(results))
    _write_json(args.json, results)
    return EXIT_OK if results["turns_lost"] == 0 and not results["integrity_failures"] else 1


def format_crash(results: dict[str, Any]) -> str:
    lines = [
        f"crash: {results['runs']} kills (seed {results['seed']}) in {results['seconds']:.0f} s",
        f"  turns sent {results['turns_sent']}, confirmed (reply printed) "
        f"{results['turns_confirmed']}, lost {results['turns_lost']}",
        f"  integrity_check ok after {results['integrity_ok']} of {results['runs']} kills",
        f"  killed mid-turn after a confirmed turn: {results['killed_mid_turn']}; "
        f"before the first reply: {results['killed_before_first_reply']} (kills within "
        f"{results['start_window_s']:.2f} s of the start, or {results['turn_window_s']:.2f} s "
        "after the first reply)",
        f"  turns in memory.db at the end: {results['store_turns']}",
    ]
    lines += [f"  LOST: {text}" for text in results["lost"]]
    lines += [f"  INTEGRITY: {text}" for text in results["integrity_failures"]]
    return "\n".join(lines)


def _write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CompanionError(f"cannot write {path}: {exc}") from exc


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


# -- bench knows-me ----------------------------------------------------------------------------


def add_knows_me_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``knows-me`` to the ``bench`` subcommands; returns its parser."""
    knows: argparse.ArgumentParser = bench_subparsers.add_parser(
        "knows-me",
        help="does it know you: questions about earlier sessions, right / didn't know / made up",
        description="Run scripted conversations of several users (sessions on given dates, "
        "through the real chat path, a fresh chat each: only memory.db carries over), then "
        "ask each user's questions in fresh sessions and score every reply against the "
        "answers written in the scenario: correct (the answer and no corrected value), "
        "didn't know (says so, no answer; the right reply to what was never said), made up "
        "(anything else). Also the share of replies that speak about 'the user' or read the "
        "prompt's framing aloud, and the LoCoMo-format retrieval figures. Two models in one "
        "run: the configured one, and a reference: a scripted OpenAI-compatible server started "
        "on 127.0.0.1 that is not a language model: asked a question, it answers with the "
        "prompt line sharing the most content words with it, or says it doesn't know. It "
        "measures what memory hands a model, not a model's reasoning.",
    )
    knows.add_argument(
        "--scenario",
        type=Path,
        metavar="FILE",
        help="scenario TOML (default: the bundled voice_companion/bench/data/knows_me.toml)",
    )
    knows.add_argument("--users", metavar="ID,...", help="only these users of the scenario")
    knows.add_argument(
        "--model",
        choices=("both", "configured", "reference"),
        default="both",
        help="which model answers (both)",
    )
    knows.add_argument("--no-recall", action="store_true", help="skip the recall figures")
    knows.add_argument(
        "--locomo",
        type=Path,
        metavar="FILE",
        help="LoCoMo JSON for the recall figures (default: tests/data/locomo_mini.json)",
    )
    knows.add_argument("--k", type=positive_int, default=5, help="recall top k (5)")
    knows.add_argument("--json", type=Path, metavar="OUT", help="also write everything as JSON")
    knows.set_defaults(bench_command="knows-me", bench_handler=cmd_knows_me)
    return knows


def cmd_knows_me(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.bench import knows_me
    from voice_companion.errors import UsageError

    only = [u.strip() for u in (args.users or "").split(",") if u.strip()]
    scenario = knows_me.load_scenario(args.scenario or knows_me.default_scenario_path(), only)
    locomo = None
    if args.locomo is not None and not args.no_recall:
        if not args.locomo.is_file():
            raise UsageError(f"no LoCoMo file {args.locomo} (give --locomo FILE or --no-recall)")
        locomo = args.locomo
    elif not args.no_recall:
        locomo = knows_me.default_locomo_path()
        if not locomo.is_file():  # an installed copy has no tests/data
            log.warning("no %s here: the recall figures are left out", locomo)
            locomo = None
    models = {
        "both": (knows_me.CONFIGURED, knows_me.REFERENCE),
        "configured": (knows_me.CONFIGURED,),
        "reference": (knows_me.REFERENCE,),
    }[args.model]
    log.info(
        "%d users, %d sessions, %d questions, %s; this takes a few minutes",
        len(scenario.users),
        scenario.sessions,
        scenario.questions,
        " and ".join(models),
    )
    report = knows_me.run(config, scenario, models, locomo, args.k, progress=log.info)
    results = report.as_dict()
    print(format_knows_me(results))
    _write_json(args.json, results)
    return EXIT_OK


def format_knows_me(results: dict[str, Any]) -> str:
    """The human table: per model the shares by verdict, framing and clean answers; per
    kind of question; then the recall figures."""

    def pct(value: float) -> str:
        return f"{100 * value:.1f}%"

    lines = [
        f"knows-me: {results['users']} users, {results['sessions']} sessions, "
        f"{results['questions']} questions ({results['scenario']})",
        f"{'model':<12} {'correct':>8} {'dont know':>10} {'made up':>8} {'framing':>8} "
        f"{'correct+clean':>14}  time",
    ]
    for run in results["models"]:
        s = run["summary"]
        dont_know = s["didn't know"]
        lines.append(
            f"{run['label']:<12} {pct(s['correct']):>8} {pct(dont_know):>10} "
            f"{pct(s['made up']):>8} {pct(s['framing']):>8} {pct(s['correct_and_clean']):>14}"
            f"  {run['seconds']:.0f} s"
        )
    for run in results["models"]:
        lines.append(f"{run['label']}: {run['description']}; by kind (correct/didn't know/made up)")
        for kind, s in run["by_kind"].items():
            dont_know = s["didn't know"]
            lines.append(
                f"  {kind:<14} {s['questions']:>3}  {pct(s['correct']):>6} "
                f"{pct(dont_know):>6} {pct(s['made up']):>6}"
            )
    lines.append(
        "framing: share of all replies (told and answered) that say 'the user', 'User:', "
        "'data point', 'instruction'; correct+clean: correct and none of that"
    )
    lines.append(f"reference: {results['reference_model']}")
    recall = results.get("recall")
    if recall:
        lines.append(
            f"LoCoMo-format retrieval ({results['recall_source']}, "
            f"{recall.get('locomo_turns', '?')} turns, {recall.get('questions', '?')} questions):"
        )
        for method, by_k in (recall.get("recall") or {}).items():
            figures = ", ".join(f"@{k} {v:.3f}" for k, v in by_k.items())
            lines.append(f"  {method:<14} {figures}")
    lines.append(f"took {results['seconds']:.0f} s")
    return "\n".join(lines)


# -- bench recall ------------------------------------------------------------------------------


def add_recall_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``recall`` to the ``bench`` subcommands; returns its parser."""
    recall: argparse.ArgumentParser = bench_subparsers.add_parser(
        "recall",
        help="memory recall@k and latency on LoCoMo-format conversations",
        description="recall@k (share of each question's evidence turns in the top k) of "
        "LoCoMo categories 1-4, one store per conversation: BM25 alone (the floor), the "
        "fusion without re-ranking (hybrid-before) and the configured ranking (hybrid); then "
        "recall and retrieval latency with every conversation in one store grown with "
        "synthetic turns.",
    )
    recall.add_argument("file", type=Path, metavar="FILE", help="LoCoMo JSON file")
    recall.add_argument(
        "--k", type=sizes, default=(1, 3, 5, 10), metavar="K,K,...", help="top k (1,3,5,10)"
    )
    recall.add_argument(
        "--sizes",
        type=sizes,
        default=(1000, 10_000, 100_000),
        metavar="N,N,...",
        help="store sizes for the latency test (1000,10000,100000)",
    )
    recall.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    recall.set_defaults(bench_command="recall", bench_handler=cmd_bench_recall)
    return recall


def sizes(text: str) -> tuple[int, ...]:
    """Whole numbers separated by commas ("1000,10000")."""
    return tuple(positive_int(part.strip()) for part in text.split(",") if part.strip())


def cmd_bench_recall(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.bench import recall as bench
    from voice_companion.bench.locomo import read_locomo
    from voice_companion.config import threads_for
    from voice_companion.memory.longterm import shared_minilm

    samples = read_locomo(args.file)
    embedder = shared_minilm(threads_for(config.memory.embed_threads))
    report = bench.run(samples, args.k, args.sizes, embedder, config.memory, log.info)
    print(format_recall(report, args.file.name))
    if args.json:
        _write_json(args.json, report.as_dict())
    return EXIT_OK


def format_recall(report: Any, source: str) -> str:
    """The human table: recall@k per method, by category, then latency per store size."""
    from voice_companion.bench.recall import METHODS

    ks = [str(k) for k in report.ks]
    head = "".join(f"{'@' + k:>7}" for k in ks)
    lines = [
        f"recall@k over {report.questions} questions, one store per conversation "
        f"({report.locomo_turns} LoCoMo turns in {source}; categories 1-4)",
        f"{'method':<16}{head}",
    ]
    lines += [f"{m:<16}" + "".join(f"{report.recall[m][k]:>7.3f}" for k in ks) for m in METHODS]
    lines.append(f"by LoCoMo category (recall@{ks[-1]}):")
    lines.append(f"{'category':<16}" + "".join(f"{m:>15}" for m in METHODS) + "  questions")
    for category, scores in report.by_category.items():
        row = "".join(f"{scores[m][ks[-1]]:>15.3f}" for m in METHODS)
        lines.append(f"{category:<16}{row}  {report.category_questions[category]:>9}")
    if report.sizes:
        lines.append(
            "among distractors: recall@k and one retrieval's p50 / p95 ms (query embedding "
            "included)"
        )
        for row in report.sizes:
            lines.append(f"{row.turns:>8} turns, {row.questions} questions")
            for m in METHODS:
                lat = row.latency_ms[m]
                recall = "".join(f"{row.recall[m][k]:>7.3f}" for k in ks)
                lines.append(f"  {m:<14}{recall}   {lat['p50']:>6.1f} / {lat['p95']:<6.1f}")
    lines.append(
        f"embedding: {report.embed_ms_per_turn:.1f} ms per turn (batched, off the reply's "
        f"path); {report.embed_query_ms:.1f} ms per query"
    )
    return "\n".join(lines)


COMMANDS = {"bench": cmd_bench}
