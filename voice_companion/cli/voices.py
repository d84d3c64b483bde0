"""`voice-companion voices list|try`: see the voices, and hear one."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from voice_companion.audio.chunk import AudioChunk
from voice_companion.config import Config
from voice_companion.errors import CompanionError, ConfigError, UsageError
from voice_companion.persona.values import EXPRESSIVENESS_RANGE, SPEED_RANGE
from voice_companion.persona.voices import Voice

log = logging.getLogger(__name__)

EXIT_OK = 0
STREAM_SETTLE_S = 0.3
SAMPLE_TEXT = "Hello! This is how I sound. I hope you like my voice."
"""Spoken by `voices try` when no text is given."""
PLAY_TAIL_S = 0.5
"""Kept playing after the audio's own length, for the sound server's buffer to drain."""


def add_parsers(commands: Any) -> None:
    voices = commands.add_parser(
        "voices",
        help="list the voices, or hear one",
        description="list: every voice, where it comes from and whether it can be used. "
        "try NAME [TEXT]: speak a sample in that voice. Add a voice by putting a piper "
        "X.onnx with its X.onnx.json in <data dir>/voices (~/.local/share/voice-companion/"
        'voices); use one with [tts] voice = "X".',
    )
    actions = voices.add_subparsers(dest="voices_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list the voices")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    trying = actions.add_parser(
        "try",
        help="speak a sample in a voice",
        description="Speak TEXT (or a sample sentence) in the voice NAME on the output device, "
        "or into a WAV file with --output. NAME may also be 'bundled' or a .onnx path.",
    )
    trying.intermixed = True  # `try NAME --output f.wav "text"`: options anywhere
    trying.add_argument("name", metavar="NAME", help="a voice from `voices list`")
    trying.add_argument(
        "text", metavar="TEXT", nargs="?", default=SAMPLE_TEXT, help="what to say (a sample)"
    )
    trying.add_argument("--output", type=Path, metavar="FILE", help="write a WAV file instead")
    trying.add_argument(
        "--speed",
        type=ranged_float("speed", SPEED_RANGE),
        default=1.0,
        metavar="X",
        help=f"{SPEED_RANGE[0]} to {SPEED_RANGE[1]}, times the voice's own pace (default 1.0)",
    )
    trying.add_argument(
        "--expressiveness",
        type=ranged_float("expressiveness", EXPRESSIVENESS_RANGE),
        default=1.0,
        metavar="Y",
        help=f"{EXPRESSIVENESS_RANGE[0]} (flat) to {EXPRESSIVENESS_RANGE[1]}, times the voice's "
        "own (default 1.0)",
    )


def require_wav(path: Path | None) -> None:
    """``--output`` writes WAV audio: a name that says otherwise ("x.mp3") is refused."""
    if path is not None and path.suffix.lower() != ".wav":
        raise UsageError(f"--output writes WAV audio: name the file .wav, not {path.name!r}")


def ranged_float(key: str, allowed: tuple[float, float]) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not allowed[0] <= value <= allowed[1]:
            raise argparse.ArgumentTypeError(
                f"{key} {text!r}: give a number from {allowed[0]} to {allowed[1]}"
            )
        return value

    return parse


def cmd_voices(config: Config, args: argparse.Namespace) -> int:
    if args.voices_action == "list":
        return _list(config, args.json)
    return _try(config, args)


def _list(config: Config, as_json: bool) -> int:
    from voice_companion import app
    from voice_companion.persona.voices import list_voices, user_voices_dir

    user_dir = user_voices_dir(config.data_dir)
    in_use, whose = config.tts.voice, "tts.voice"
    with contextlib.suppress(ConfigError):  # a broken persona must not hide the voices
        persona = app.current_persona(config)
        if persona.voice.name:
            in_use, whose = persona.voice.name, f"{persona.name}'s voice"
    rows = [_row(v, in_use) for v in list_voices(user_dir)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print(f"no voices; add a piper X.onnx with its X.onnx.json to {user_dir}")
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["in_use"] else " "
        details = ", ".join(
            part
            for part in (
                r["source"],
                r["language"],
                r["quality"],
                f"{r['speakers']} speakers" if r["speakers"] > 1 else "",
                f"speed {r['speed']:g}" if r["speed"] != 1 else "",
                f"expressiveness {r['expressiveness']:g}" if r["expressiveness"] != 1 else "",
            )
            if part
        )
        text = r["description"] if r["usable"] else f"UNUSABLE: {r['problem']}"
        print(f"{mark} {r['name']:<{width}}  {details}" + (f"  - {text}" if text else ""))
    print(f"({whose} = {in_use!r}, marked *; add your own voices to {user_dir})")
    return EXIT_OK


def _row(voice: Voice, configured: str) -> dict[str, Any]:
    return {
        "name": voice.name,
        "source": voice.source,
        "usable": voice.usable,
        "problem": voice.problem,
        "description": voice.description,
        "language": voice.language,
        "quality": voice.quality,
        "speakers": voice.num_speakers,
        "speaker_names": list(voice.speaker_names),
        "speaker": voice.speaker,
        "speed": voice.speed,
        "expressiveness": voice.expressiveness,
        "model": str(voice.model_path),
        "definition": str(voice.definition_path) if voice.definition_path else None,
        "in_use": voice.name == configured,
    }


def _try(config: Config, args: argparse.Namespace) -> int:
    from voice_companion import app
    from voice_companion.dialogue.sentences import speakable
    from voice_companion.engines.decode import write_wav
    from voice_companion.runtime.turn import spoken_sentences, synthesize_whole

    require_wav(args.output)
    try:
        voice = app.voice_for(
            config, args.name, speed=args.speed, expressiveness=args.expressiveness
        )
    except ConfigError as exc:
        # The voice named on this command line is the work that failed, not the config.
        raise CompanionError(str(exc)) from exc
    pieces = spoken_sentences(args.text, config.dialogue.sentence_max_chars)
    sentences = [s for s in (speakable(p) for p in pieces) if s]
    if not sentences:
        raise UsageError("nothing to say: the text has no speakable words")
    synthesizer = app.build_synthesizer(config, voice)
    audio = synthesize_whole(
        sentences, synthesizer, config.tts.sentence_pause_ms, trailing_pause=False
    )
    if args.output is not None:
        write_wav(args.output, audio)
    else:
        asyncio.run(_play(config, audio))
    log.info(
        "%s: %.1f s of speech%s",
        voice.name,
        audio.duration_s,
        f" written to {args.output}" if args.output else "",
    )
    return EXIT_OK


async def _play(config: Config, audio: AudioChunk) -> None:
    from voice_companion.audio.speaker import SpeakerSink
    from voice_companion.engines.audio_device import PlaybackStream, find_device

    device = find_device(config.audio.output_device, "output")
    sink = SpeakerSink(PlaybackStream(device))
    loop = asyncio.get_running_loop()
    # ALSA over PulseAudio may underrun as a stream starts and then race through what is
    # queued, unheard: let the stream settle on silence first (the daemon's stream is long
    # open when it speaks).
    await asyncio.sleep(STREAM_SETTLE_S)
    started = loop.time()
    try:
        # A stalled device must not hang the command: give up well after the audio's end.
        await asyncio.wait_for(sink.write(audio), timeout=audio.duration_s + 10)
        # The write is done once the sound server has the last sample, and it may hold a
        # second or more: closing the stream now would cut the end off.
        await asyncio.sleep(max(0.0, started + audio.duration_s + PLAY_TAIL_S - loop.time()))
    except TimeoutError as exc:
        raise CompanionError(f"the output device {device.name!r} stopped playing") from exc
    finally:
        await sink.close()


COMMANDS = {"voices": cmd_voices}
