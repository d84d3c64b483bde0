"""`voice-companion bench latency`: response latency per stage, beside the sequential baseline.

Hooked into the ``bench`` group with ``add_latency_parser(bench_subparsers)``; the command
function is ``cmd_latency(config, args)``.
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
        f" on {report.machine['cores']} cores"
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
    return value
