"""Push-to-talk from a keyboard key, read from the kernel's evdev devices.

Works without a desktop (headless, Wayland, X11 alike) because it reads ``/dev/input/event*``
directly; that needs membership of the ``input`` group. Standard library only: each event is
a ``struct input_event`` (a timeval, then type, code and value). Keyboards are found in
``/proc/bus/input/devices``; one that is unplugged is looked for again every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voice_companion.config import KEY_CODES as KEY_CODES  # parsed in config (validation)
from voice_companion.config import key_code as key_code

log = logging.getLogger(__name__)

EVENT = struct.Struct("@llHHi")
"""struct input_event on this machine: seconds, microseconds, type, code, value."""
EV_KEY = 1
PRESSED, RELEASED = 1, 0  # 2 is auto-repeat, ignored


@dataclass(frozen=True)
class InputDevice:
    name: str
    path: Path


def keyboards(devices_list: Path, dev_dir: Path, name_part: str) -> list[InputDevice]:
    """Keyboards listed in ``/proc/bus/input/devices`` whose name contains ``name_part``."""
    try:
        text = devices_list.read_text(errors="replace")
    except OSError:
        return []
    found = []
    for block in text.split("\n\n"):
        name = re.search(r'^N: Name="(.*)"$', block, re.M)
        handlers = re.search(r"^H: Handlers=(.*)$", block, re.M)
        if not name or not handlers:
            continue
        words = handlers.group(1).split()
        event = next((w for w in words if w.startswith("event")), None)
        if "kbd" in words and event and name_part.lower() in name.group(1).lower():
            found.append(InputDevice(name.group(1), dev_dir / event))
    return found


class KeyboardTrigger:
    """Calls ``on_press`` and ``on_release`` when ``key`` goes down and up on any matching
    keyboard, until cancelled. Missing permission is said once, with the fix."""

    def __init__(
        self,
        key: int,
        keyboard: str,
        on_press: Callable[[], object],
        on_release: Callable[[], object],
        devices_list: Path = Path("/proc/bus/input/devices"),
        dev_dir: Path = Path("/dev/input"),
        rescan_s: float = 2.0,
    ) -> None:
        self._key = key
        self._keyboard = keyboard
        self._on_press = on_press
        self._on_release = on_release
        self._devices_list = devices_list
        self._dev_dir = dev_dir
        self._rescan_s = rescan_s
        self._readers: dict[Path, asyncio.Task[None]] = {}
        self._told_permission = False
        self.status = "looking for a keyboard"

    async def run(self) -> None:
        try:
            while True:
                for device in keyboards(self._devices_list, self._dev_dir, self._keyboard):
                    task = self._readers.get(device.path)
                    if task is None or task.done():
                        self._readers[device.path] = asyncio.create_task(
                            self._read(device), name=f"ptt-key {device.path.name}"
                        )
                if not any(not t.done() for t in self._readers.values()):
                    self.status = "no keyboard found; looking again"
                await asyncio.sleep(self._rescan_s)
        finally:
            for task in self._readers.values():
                task.cancel()
            await asyncio.gather(*self._readers.values(), return_exceptions=True)

    async def _read(self, device: InputDevice) -> None:
        try:
            fd = os.open(device.path, os.O_RDONLY | os.O_NONBLOCK)
        except PermissionError:
            if not self._told_permission:
                self._told_permission = True
                log.warning(
                    "cannot read the keyboard %r: add yourself to the input group "
                    "(sudo usermod -aG input $USER, then log in again); push-to-talk from "
                    "the keyboard is off until then",
                    device.name,
                )
            return
        except OSError as exc:
            log.debug("cannot open %s: %s", device.path, exc)
            return
        self.status = f"push-to-talk key on {device.name}"
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        pending = b""
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = os.read(fd, EVENT.size * 64)
                except BlockingIOError:
                    continue
                except OSError:  # ENODEV: unplugged
                    data = b""
                if not data:
                    log.info("keyboard %r went away", device.name)
                    return
                pending += data
                whole = len(pending) // EVENT.size * EVENT.size
                for offset in range(0, whole, EVENT.size):
                    _, _, kind, code, value = EVENT.unpack_from(pending, offset)
                    if kind == EV_KEY and code == self._key:
                        if value == PRESSED:
                            self._on_press()
                        elif value == RELEASED:
                            self._on_release()
                pending = pending[whole:]
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
            os.close(fd)
