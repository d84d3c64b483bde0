"""Privacy by default: no network, and the user's words stay out of the logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG, words

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
    tmp_path: Path, jfk_path: Path, prefix: list[str], *flags: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["AUDIT_LOG"] = str(tmp_path / "audit.json")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
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
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_answers_with_no_network_and_opens_no_outside_socket(
    tmp_path: Path, jfk_path: Path
) -> None:
    # A network namespace with only loopback: nothing outside this machine is reachable.
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    prefix = ["unshare", "-n"] if probe.returncode == 0 else []
    result = run_answering(tmp_path, jfk_path, prefix)
    assert result.returncode == 0, result.stderr
    assert "network access" not in result.stderr
    events = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert any(e["event"] == "first_audio" for e in events)
    assert (tmp_path / "out.wav").stat().st_size > 10_000
    assert probe.returncode == 0, "unshare -n is not permitted here: ran without the namespace"


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
