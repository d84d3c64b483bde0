"""Privacy by default: no network, and the user's words stay out of the logs."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG, words
from voice_companion.control.client import request

# Runs the CLI with an audit hook that records every socket address the process connects,
# binds or sends to, and refuses any that is not on this machine.
AUDITED = """
import ipaddress, json, os, runpy, socket, sys
seen = []
def hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo"):
        address = args[1] if event != "socket.getaddrinfo" else (args[0], args[1])
        seen.append([event, repr(address)])
        host = address[0] if isinstance(address, tuple) else None
        if isinstance(host, str) and host not in ("localhost", ""):
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = False
            if not local:
                raise PermissionError(f"network access to {address!r} in the default setup")
sys.addaudithook(hook)
try:
    sys.argv = ["voice-companion", *sys.argv[1:]]
    runpy.run_module("voice_companion", run_name="__main__")
finally:
    with open(os.environ["AUDIT_LOG"], "w") as f:
        json.dump(seen, f)
"""


def run_answering(
    tmp_path: Path,
    jfk_path: Path,
    prefix: list[str],
    *flags: str,
    home: Path | None = None,
    realtime: bool = False,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["AUDIT_LOG"] = str(tmp_path / "audit.json")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    if home is not None:  # where onnxruntime's telemetry would keep its device id and events
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    return subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            AUDITED,
            *flags,
            "--config",
            str(SHIPPED_CONFIG),
            "--data-dir",
            str(tmp_path / "data"),
            "run",
            "--input",
            str(jfk_path),
            "--output",
            str(tmp_path / "out.wav"),
            "--trace",
            str(tmp_path / "trace.jsonl"),
            *(["--realtime"] if realtime else []),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


# What strace shows of a socket address: the family, then the address and port.
_ADDRESS = re.compile(
    r"sa_family=(AF_INET6?)[^}]*?(?:sin6?_port=htons\((\d+)\))[^}]*?"
    r'(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")'
)
_SENDING = re.compile(r"^\d+\s+(connect|sendto|sendmsg|sendmmsg)\(")


def outside_traffic(strace_log: Path) -> list[str]:
    """The lines of ``strace -f -e trace=network`` where any thread of the process connected or
    sent to an address off this machine, or made a DNS query (port 53) to any address. Unix
    sockets (the control socket, PulseAudio) are local by nature."""
    found = []
    for line in strace_log.read_text(errors="replace").splitlines():
        if not _SENDING.match(line):
            continue
        for _, port, ipv4, ipv6 in _ADDRESS.findall(line):
            host = ipv4 or ipv6
            loopback = ipaddress.ip_address(host).is_loopback or host == "::"
            if port == "53" or not loopback:
                found.append(line)
    return found


def traced(log: Path) -> list[str]:
    """A command prefix: run under strace, every thread and child, network calls only."""
    return ["strace", "-f", "-qq", "-e", "trace=network", "-o", str(log)]


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(
        ["strace", "-f", "-o", os.devnull, "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


needs_strace = pytest.mark.skipif(
    not _strace_works(), reason="needs strace, allowed to trace (make installs it)"
)


@pytest.mark.models
@needs_strace
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_answers_with_no_network_and_opens_no_outside_socket(
    tmp_path: Path, jfk_path: Path
) -> None:
    # A network namespace with only loopback: nothing outside this machine is reachable. And
    # strace sees what the audit hook cannot: sockets opened from native code (onnxruntime's
    # telemetry looked up mobile.events.data.microsoft.com from C++), from any thread. The
    # recording is fed at real-time pace: the look-ups came some 10 s after the models loaded.
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    prefix = ["unshare", "-n"] if probe.returncode == 0 else []
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "strace.txt"
    result = run_answering(tmp_path, jfk_path, [*prefix, *traced(log)], home=home, realtime=True)
    assert result.returncode == 0, result.stderr
    assert "network access" not in result.stderr
    events = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert any(e["event"] == "first_audio" for e in events)
    assert (tmp_path / "out.wav").stat().st_size > 10_000
    assert log.read_text().strip()  # strace followed it (what it sees: the test below)
    assert outside_traffic(log) == []
    # onnxruntime's telemetry keeps a device id and events here when it is on.
    assert not (home / ".cache" / "Microsoft").exists()
    assert probe.returncode == 0, "unshare -n is not permitted here: ran without the namespace"


@needs_strace
def test_the_strace_check_would_catch_a_lookup_from_native_code(tmp_path: Path) -> None:
    # The check above can fail: glibc's resolver (C, as onnxruntime's telemetry uses it),
    # called from a thread, is seen and refused.
    log = tmp_path / "strace.txt"
    code = (
        "import socket, threading\n"
        "def look():\n"
        "    try: socket.getaddrinfo('mobile.events.data.microsoft.com', 443)\n"
        "    except OSError: pass\n"
        "t = threading.Thread(target=look); t.start(); t.join()\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'x', ('192.0.2.1', 9))\n"
    )
    subprocess.run([*traced(log), sys.executable, "-c", code], timeout=60, check=True)
    caught = outside_traffic(log)
    assert any("192.0.2.1" in line for line in caught), log.read_text()
    if Path("/etc/resolv.conf").exists():
        assert any("htons(53)" in line for line in caught), log.read_text()


def test_the_audit_hook_would_catch_an_outside_connection(tmp_path: Path) -> None:
    # The guard above can fail: a configured remote LLM server is refused by it.
    config = tmp_path / "remote.toml"
    config.write_text(
        '[llm]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://192.0.2.1:9/v1"\n'
        "connect_timeout_s = 1.0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["AUDIT_LOG"] = str(tmp_path / "audit.json")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            AUDITED,
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "chat",
        ],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    seen = json.loads((tmp_path / "audit.json").read_text())
    assert any("192.0.2.1" in address for _, address in seen)
    assert "sorry" in result.stdout.lower()  # refused, and the user still got an answer


@pytest.mark.models
def test_no_words_of_the_conversation_in_the_log_at_the_default_level(
    tmp_path: Path, jfk_path: Path
) -> None:
    result = run_answering(tmp_path, jfk_path, [])
    assert result.returncode == 0, result.stderr
    events = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    said = " ".join(str(e["text"]) for e in events if e["event"] in ("transcript", "reply"))
    # Canary: every distinctive word of what was said and answered, none in the log.
    log_words = set(words(result.stderr))
    distinctive = {w for w in words(said) if len(w) >= 7}
    assert distinctive, "the conversation had words to look for"
    assert not distinctive & log_words, distinctive & log_words
    # The canary can sing: at debug level (-vv) the same words are there.
    debug = run_answering(tmp_path, jfk_path, [], "-vv")
    assert distinctive & set(words(debug.stderr))


@pytest.mark.models
@needs_strace
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pulseaudio") is None, reason="needs pulseaudio (make)")
def test_the_running_companion_opens_no_outside_socket(tmp_path: Path) -> None:
    # The daemon on a real (null) sound server, watched by strace for half a minute after it
    # is ready: onnxruntime's telemetry looked up its server 12 s after start, then again.
    from tests.live.pulse import PulseRig

    rig = PulseRig()
    rig.start()
    runtime = Path(tempfile.mkdtemp(prefix="vcp-"))  # short: a socket path has 107 bytes
    home = tmp_path / "home"
    data = tmp_path / "data"
    data.mkdir()
    (data / "disclosed").write_text("robin\n")  # it says nothing before it is spoken to
    log = tmp_path / "strace.txt"
    env = {k: v for k, v in rig.env.items() if not k.startswith("VOICE_COMPANION_")}
    cookie = Path(env.get("HOME", "/nonexistent")) / ".config" / "pulse" / "cookie"
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_RUNTIME_DIR=str(runtime),
        PULSE_SERVER=f"unix:{rig.runtime / 'pulse' / 'native'}",
        VOICE_COMPANION_CARE_QUIET_HOURS="00:00-00:00",
    )
    if cookie.exists():
        env["PULSE_COOKIE"] = str(cookie)
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    prefix = ["unshare", "-n"] if probe.returncode == 0 else []
    command = [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG)]
    daemon = subprocess.Popen(
        [*prefix, *traced(log), *command, "--data-dir", str(data), "run"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr.txt").open("w"),
        start_new_session=True,  # strace and the daemon under it go together (killpg)
    )
    socket_path = runtime / "voice-companion" / "control.sock"
    try:
        deadline = time.monotonic() + 120
        while not socket_path.exists():
            assert daemon.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the daemon never opened its control socket"
            time.sleep(0.1)
        said = request(socket_path, {"cmd": "say", "text": "Nothing leaves this room."}, 10)
        assert said.get("ok"), said
        time.sleep(30)
        assert daemon.poll() is None, (tmp_path / "stderr.txt").read_text()
    finally:
        # The whole group: a SIGTERM to strace alone can leave the daemon it traced running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        rig.stop()
        shutil.rmtree(runtime, ignore_errors=True)
    assert "AF_UNIX" in log.read_text()  # it did talk: to the sound server, to its socket
    assert outside_traffic(log) == []
    assert not (home / ".cache" / "Microsoft").exists()


def test_every_entry_point_turns_the_engines_telemetry_off(tmp_path: Path) -> None:
    from tests.conftest import shipped_config
    from voice_companion import OFFLINE, TELEMETRY_OFF
    from voice_companion.cli.service import unit_text

    # A program using the package: importing it is enough, whatever the environment said
    # about telemetry; its own choice about the hub stands.
    env = {k: v for k, v in os.environ.items() if k not in {*TELEMETRY_OFF, *OFFLINE}}
    env.update(ORT_DISABLE_TELEMETRY="0", HF_HUB_OFFLINE="0")
    names = [*TELEMETRY_OFF, *OFFLINE]
    code = f"import os, voice_companion.engines; print([os.environ.get(k) for k in {names!r}])"
    seen = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == repr(["1", "1", "1", "0", "1"])
    # The systemd unit: private files and no telemetry even before Python starts.
    unit = unit_text(shipped_config(tmp_path))
    assert "UMask=0077" in unit
    assert "ORT_DISABLE_TELEMETRY=1" in unit
