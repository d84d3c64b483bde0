"""Commands that talk to the running daemon through its control socket, and `devices`."""

from __future__ import annotations

import argparse
import contextlib
import json
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
        return EXIT_OK
    for d in devices:
        mark = ",".join(chosen.get(d.index, [])) or "-"
        print(
            f"{d.index:3d}  {mark:12s} in {d.max_input_channels:2d}  out "
            f"{d.max_output_channels:2d}  {d.default_rate_hz:6d} Hz  {d.name}"
        )
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
