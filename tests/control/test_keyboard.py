"""Push-to-talk from a keyboard key: the reader on the kernel's evdev byte format.

There is no /dev/input on the test machines, so the "device" is a fifo in the same format the
kernel writes (struct input_event), listed in a devices file of the same layout as
/proc/bus/input/devices."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from voice_companion.control.keyboard import (
    EV_KEY,
    EVENT,
    KEY_CODES,
    KeyboardTrigger,
    key_code,
    keyboards,
)
from voice_companion.errors import ConfigError

DEVICES = """I: Bus=0011 Vendor=0001 Product=0001 Version=ab41
N: Name="AT Translated Set 2 keyboard"
P: Phys=isa0060/serio0/input0
H: Handlers=sysrq kbd leds event{n}
B: EV=120013

I: Bus=0011 Vendor=0002 Product=0013 Version=0006
N: Name="VirtualPS/2 VMware VMMouse"
H: Handlers=mouse0 event9
B: EV=b
"""


def key_event(code: int, value: int) -> bytes:
    return EVENT.pack(0, 0, EV_KEY, code, value)


def test_key_names() -> None:
    assert key_code("F12") == 88 == key_code("KEY_F12") == key_code("88")
    assert key_code("rightctrl") == KEY_CODES["RIGHTCTRL"] == 97
    with pytest.raises(ConfigError, match=r"push_to_talk\.key = 'F99'"):
        key_code("F99")


def test_keyboards_are_found_by_name(tmp_path: Path) -> None:
    listing = tmp_path / "devices"
    listing.write_text(DEVICES.format(n=3))
    found = keyboards(listing, tmp_path, "")
    assert [d.path for d in found] == [tmp_path / "event3"]  # the mouse is not a keyboard
    assert keyboards(listing, tmp_path, "translated")
    assert not keyboards(listing, tmp_path, "logitech")


def test_press_release_and_a_keyboard_unplugged_and_plugged_back(tmp_path: Path) -> None:
    listing = tmp_path / "devices"
    listing.write_text(DEVICES.format(n=4))
    seen: list[str] = []

    async def scenario() -> None:
        trigger = KeyboardTrigger(
            key_code("F12"),
            "",
            lambda: seen.append("press"),
            lambda: seen.append("release"),
            devices_list=listing,
            dev_dir=tmp_path,
            rescan_s=0.1,
        )
        runner = asyncio.create_task(trigger.run())

        async def plug_in(n: int) -> int:
            device = tmp_path / f"event{n}"
            os.mkfifo(device)
            listing.write_text(DEVICES.format(n=n))
            # opening the write end waits until the trigger has opened the read end
            return await asyncio.to_thread(os.open, device, os.O_WRONLY)

        async def until(count: int) -> None:
            while len(seen) < count:
                await asyncio.sleep(0.01)

        fd = await asyncio.wait_for(plug_in(4), 10)
        os.write(fd, key_event(30, 1) + key_event(88, 1) + key_event(88, 2))  # a, F12, repeat
        await asyncio.wait_for(until(1), 5)
        os.write(fd, key_event(88, 0)[:10])  # half an event: nothing yet
        await asyncio.sleep(0.2)
        assert seen == ["press"]
        os.write(fd, key_event(88, 0)[10:])
        await asyncio.wait_for(until(2), 5)
        os.close(fd)  # unplugged
        (tmp_path / "event4").unlink()
        fd = await asyncio.wait_for(plug_in(5), 10)  # plugged back, as another event node
        os.write(fd, key_event(88, 1) + key_event(88, 0))
        await asyncio.wait_for(until(4), 5)
        os.close(fd)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert seen == ["press", "release", "press", "release"]
