"""`voice-companion service install|uninstall|status`: run as a systemd user service."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from voice_companion.config import Config
from voice_companion.errors import CompanionError

UNIT = "voice-companion.service"
TEMPLATE = Path(__file__).resolve().parents[2] / "systemd" / UNIT
EXIT_OK = 0


def add_parsers(commands: Any) -> None:
    service = commands.add_parser(
        "service",
        help="run the companion as a systemd user service",
        description="install: write ~/.config/systemd/user/voice-companion.service and start "
        "it at every login; uninstall: stop and remove it; status: ask systemd.",
    )
    service.add_argument("action", choices=["install", "uninstall", "status"])
    service.add_argument(
        "--no-start", action="store_true", help="install: only write the unit file"
    )


def unit_dir() -> Path:
    import os

    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def unit_text(config: Config) -> str:
    """The unit with this installation's command line (the same config and data dir)."""
    command = [sys.executable, "-m", "voice_companion"]
    if config.source != "defaults":
        command += ["--config", str(Path(config.source).resolve())]
    command += ["--data-dir", str(config.data_dir.resolve())]
    # Only the ExecStart line: the header comment speaks of @EXEC@ and must stay readable.
    return TEMPLATE.read_text().replace("ExecStart=@EXEC@", "ExecStart=" + shlex.join(command))


def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemctl") is None:
        raise CompanionError("systemctl not found: this system does not run systemd")
    result = subprocess.run(
        ["systemctl", "--user", *args], capture_output=True, text=True, timeout=30
    )
    if "Failed to connect to bus" in result.stderr:
        # No user session bus: su/sudo/ssh without a login session, or a container.
        reason = result.stderr.strip().splitlines()[-1]
        raise CompanionError(
            f"cannot reach your systemd user session ({reason}): run this in your desktop "
            "session, or log in as this user directly (ssh user@host, machinectl shell "
            "user@); with sudo -u, set XDG_RUNTIME_DIR=/run/user/$(id -u USER)"
        )
    return result


def cmd_service(config: Config, args: argparse.Namespace) -> int:
    path = unit_dir() / UNIT
    if args.action == "install":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unit_text(config))
        print(f"wrote {path}")
        if args.no_start:
            return EXIT_OK
        for step in (("daemon-reload",), ("enable", "--now", UNIT)):
            try:
                result = systemctl(*step)
            except CompanionError as exc:
                raise CompanionError(f"{exc}; then: systemctl --user enable --now {UNIT}") from None
            if result.returncode != 0:
                reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
                raise CompanionError(
                    f"systemctl --user {' '.join(step)} failed ({reason}); in your desktop "
                    f"session run: systemctl --user enable --now {UNIT}"
                )
        print(
            "installed: the companion starts now and at every login "
            f"(logs: journalctl --user -u {UNIT})"
        )
        return EXIT_OK
    if args.action == "uninstall":
        if path.exists():
            systemctl("disable", "--now", UNIT)
            path.unlink()
            systemctl("daemon-reload")
            print(f"removed {path}")
        else:
            print("not installed")
        return EXIT_OK
    result = systemctl("status", "--no-pager", UNIT)
    print(result.stdout.strip() or result.stderr.strip())
    return result.returncode


COMMANDS = {"service": cmd_service}
