"""Commands that talk to the running daemon through its control socket, and `devices`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from voice_companion.config import Config
from voice_companion.errors import CompanionError

EXIT_OK, EXIT_FAILED = 0, 1


def add_parsers(commands: Any) -> None:
    status = commands.add_parser("status", help="what the running companion is doing")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    ptt = commands.add_parser(
        "ptt",
        help="push-to-talk: press, release or toggle",
        description="Push-to-talk for the running companion; bind `voice-companion ptt "
        "toggle` to a desktop hotkey (X11 or Wayland), or press/release for hold-to-talk.",
    )
    ptt.add_argument("action", choices=["press", "release", "toggle"])
    commands.add_parser("mute", help="stop listening (not one sound is processed)")
    commands.add_parser("unmute", help="listen again")
    commands.add_parser("stop", help="stop speaking now")
    commands.add_parser("quit", help="shut the running companion down")
    devices = commands.add_parser("devices", help="list audio devices, marking the chosen ones")
    devices.add_argument("--json", action="store_true", help="print the list as JSON")


def send(payload: dict[str, Any]) -> dict[str, Any]:
    from voice_companion.control.client import request
    from voice_companion.control.server import default_socket_path

    reply = request(default_socket_path(), payload)
    if not reply.get("ok"):
        raise CompanionError(str(reply.get("error", "the companion refused the request")))
    return reply


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    reply = send({"cmd": "status"})
    reply.pop("ok", None)
    if args.json:
        print(json.dumps(reply, indent=2))
        return EXIT_OK
    print(f"state:      {reply.get('state')} ({reply.get('mode')})")
    if reply.get("persona"):
        print(f"persona:    {reply.get('persona')}")
    if reply.get("mode") == "muted":  # the microphone stays open, but nothing is heard
        print("microphone: muted, nothing is heard (voice-companion unmute)")
    else:
        print(f"microphone: {reply.get('microphone')}")
    print(f"speaker:    {reply.get('output_device')}")
    print(f"uptime:     {reply.get('uptime_s')} s, {reply.get('turns')} turn(s)")
    last = reply.get("last_turn")
    if last:
        stages = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in last.items() if v)
        print(f"last turn:  {stages}")
    memory = reply.get("memory")
    if isinstance(memory, dict) and memory.get("saved"):
        print("memory:     saved")
    elif isinstance(memory, dict):
        print(
            f"memory:     NOT being saved ({memory.get('problem')}): {memory.get('queued')} "
            f"write(s) waiting, {memory.get('journalled')} of them safe in the journal"
        )
    return EXIT_OK


def cmd_ptt(config: Config, args: argparse.Namespace) -> int:
    send({"cmd": "ptt", "action": args.action})
    return EXIT_OK


def simple(name: str) -> Any:
    def command(config: Config, args: argparse.Namespace) -> int:
        send({"cmd": name})
        return EXIT_OK

    return command


@dataclass(frozen=True)
class ServerDevice:
    """A sink (speaker) or source (microphone) of the sound server, by PulseAudio's name."""

    kind: str
    """"output" or "input"."""
    name: str
    description: str
    default: bool


def server_devices() -> list[ServerDevice]:
    """The sound server's own devices (PulseAudio, or PipeWire's pulse server), by ``pactl``;
    PortAudio sees them only as "pulse"/"default". Empty when no server answers."""
    if shutil.which("pactl") is None:
        return []
    found: list[ServerDevice] = []
    try:
        info = _pactl("info")
        defaults = {
            key: line.split(":", 1)[1].strip()
            for line in info.splitlines()
            for key in ("Default Sink", "Default Source")
            if line.startswith(key + ":")
        }
        for kind, listing, default_key in (
            ("output", "sinks", "Default Sink"),
            ("input", "sources", "Default Source"),
        ):
            name = ""
            for line in _pactl("list", listing).splitlines():
                line = line.strip()
                if line.startswith("Name:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Description:") and name:
                    if not name.endswith(".monitor"):  # what a speaker plays, not a microphone
                        description = line.split(":", 1)[1].strip()
                        default = name == defaults.get(default_key)
                        found.append(ServerDevice(kind, name, description, default))
                    name = ""
    except (OSError, subprocess.SubprocessError):
        return []
    return found


def _pactl(*args: str) -> str:
    env = {**os.environ, "LC_ALL": "C"}  # the field names are parsed: never translated
    return subprocess.run(
        ["pactl", *args], capture_output=True, text=True, timeout=5, check=True, env=env
    ).stdout


def cmd_devices(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.engines.audio_device import find_device, list_devices

    devices = list_devices()
    chosen: dict[int, list[str]] = {}
    with contextlib.suppress(CompanionError):
        chosen.setdefault(find_device(config.audio.input_device, "input").index, []).append("input")
    with contextlib.suppress(CompanionError):
        chosen.setdefault(find_device(config.audio.output_device, "output").index, []).append(
            "output"
        )
    if args.json:
        rows = [
            {
                "index": d.index,
                "name": d.name,
                "inputs": d.max_input_channels,
                "outputs": d.max_output_channels,
                "rate_hz": d.default_rate_hz,
                "chosen": chosen.get(d.index, []),
            }
            for d in devices
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK if devices else EXIT_FAILED
    if not devices:
        print(
            "voice-companion: no audio devices: connect a microphone and a speaker, or start "
            "PulseAudio or PipeWire",
            file=sys.stderr,
        )
        return EXIT_FAILED
    for d in devices:
        mark = ",".join(chosen.get(d.index, [])) or "-"
        print(
            f"{d.index:3d}  {mark:12s} in {d.max_input_channels:2d}  out "
            f"{d.max_output_channels:2d}  {d.default_rate_hz:6d} Hz  {d.name}"
        )
    if server := server_devices():
        print("sound server devices (* default; choose with pactl set-default-sink/-source):")
        for sd in server:
            mark = "*" if sd.default else " "
            print(f"  {mark} {sd.kind:<6}  {sd.description}  ({sd.name})")
    for direction in ("input", "output"):
        if not any(getattr(d, f"max_{direction}_channels") > 0 for d in devices):
            print(f"voice-companion: no audio {direction} device", file=sys.stderr)
    return EXIT_OK


COMMANDS = {
    "status": cmd_status,
    "ptt": cmd_ptt,
    "mute": simple("mute"),
    "unmute": simple("unmute"),
    "stop": simple("stop"),
    "quit": simple("quit"),
    "devices": cmd_devices,
}
