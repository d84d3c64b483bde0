"""Encryption at rest for memory.db: where the key comes from, and what to refuse.

With ``memory.encrypt = true`` the database is opened only through SQLCipher with a key; when
no key can be found the companion refuses to start rather than open or create a plaintext
file. A plaintext memory.db is never opened as if it were encrypted, nor the other way round:
the user is told the one command or setting that fixes it.

Key sources (``memory.key_source``), tried in this order by ``auto``: the environment variable
``VOICE_COMPANION_PASSPHRASE``, the OS keyring (service ``voice-companion``, user ``memory``),
the systemd credential ``memory-key`` (``$CREDENTIALS_DIRECTORY/memory-key``), and a prompt on
the terminal. The passphrase itself is never logged.
"""

from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from voice_companion.config import MemoryConfig
from voice_companion.errors import MemoryKeyError, MemoryStoreError
from voice_companion.memory.store import FILENAME, Connector, MemoryDb, connect_plain

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

ENV_PASSPHRASE = "VOICE_COMPANION_PASSPHRASE"
"""Not ``VOICE_COMPANION_MEMORY_...``: that prefix is reserved for ``[memory]`` config keys."""
KEYRING_SERVICE = "voice-companion"
KEYRING_USER = "memory"
CREDENTIAL_NAME = "memory-key"
SOURCES = ("env", "keyring", "credential", "prompt")
PLAINTEXT_HEADER = b"SQLite format 3\x00"


class FileState(Enum):
    MISSING = "missing"
    PLAINTEXT = "plaintext"
    ENCRYPTED = "encrypted"


def file_state(path: Path) -> FileState:
    """Whether ``path`` is absent (or empty), a plaintext SQLite file, or anything else (which
    SQLCipher files look like: their first page, header included, is ciphertext)."""
    try:
        with path.open("rb") as f:
            head = f.read(len(PLAINTEXT_HEADER))
    except FileNotFoundError:
        return FileState.MISSING
    except OSError as exc:
        raise MemoryStoreError(f"cannot read {path}: {exc}") from exc
    if not head:
        return FileState.MISSING
    return FileState.PLAINTEXT if head == PLAINTEXT_HEADER else FileState.ENCRYPTED


@dataclass(frozen=True)
class MemoryKey:
    """A passphrase and where it came from (for messages); the passphrase is never shown."""

    passphrase: str = field(repr=False)
    source: str


def _tty_prompt(question: str) -> str:
    return getpass.getpass(question)


@dataclass(frozen=True)
class KeySources:
    """Where keys are looked up: seams for tests, the real process state by default."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    keyring_get: Callable[[str, str], str | None] | None = None
    prompt: Callable[[str], str] = _tty_prompt
    interactive: bool = field(default_factory=lambda: sys.stdin.isatty())

    def lookup(self, source: str, confirm: bool = False) -> MemoryKey | None:
        """The key from one source; None when that source has none."""
        if source == "env":
            value = self.env.get(ENV_PASSPHRASE, "")
            return MemoryKey(value, f"${ENV_PASSPHRASE}") if value else None
        if source == "keyring":
            get = self.keyring_get or _keyring_get
            value = get(KEYRING_SERVICE, KEYRING_USER) or ""
            return MemoryKey(value, "the OS keyring") if value else None
        if source == "credential":
            return self._credential()
        if source == "prompt":
            return self._ask(confirm)
        raise MemoryKeyError(f"unknown memory.key_source {source!r}")

    def _credential(self) -> MemoryKey | None:
        folder = self.env.get("CREDENTIALS_DIRECTORY", "")
        if not folder:
            return None
        path = Path(folder) / CREDENTIAL_NAME
        try:
            # systemd-creds output and `echo` both end with a newline that is not the key's.
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise MemoryKeyError(f"cannot read the systemd credential {path}: {exc}") from exc
        return MemoryKey(value, f"the systemd credential {CREDENTIAL_NAME}") if value else None

    def _ask(self, confirm: bool) -> MemoryKey | None:
        if not self.interactive:
            return None
        try:
            value = self.prompt("Passphrase for the companion's memory: ")
            if value and confirm and self.prompt("The same passphrase again: ") != value:
                raise MemoryKeyError("the two passphrases differ; nothing was changed")
        except EOFError:
            return None
        return MemoryKey(value, "the terminal") if value else None

    def find(self, key_source: str, why: str, confirm: bool = False) -> MemoryKey:
        """The key from ``key_source`` ("auto": the first source that has one), or a one-line
        ``MemoryKeyError`` starting with ``why`` and saying where to put one. ``confirm`` asks
        a prompt twice (a key that will encrypt, where a typo would lock the memory away)."""
        order = SOURCES if key_source == "auto" else (key_source,)
        for source in order:
            try:
                found = self.lookup(source, confirm)
            except MemoryKeyError as exc:
                if key_source != "auto":
                    raise MemoryKeyError(f"memory.key_source = {source!r}: {exc}") from exc
                if source != "keyring":  # a mistyped prompt or unreadable credential: say so
                    raise
                log.debug("no memory key from %s: %s", source, exc)  # no keyring on this machine
                continue
            if found is not None:
                log.debug("memory key from %s", found.source)
                return found
        raise MemoryKeyError(
            f"{why} but no key was found ({_tried(key_source)}): "
            f"{_where_to_put_one(key_source)}; memory.db was not touched"
        )


def _keyring_get(service: str, username: str) -> str | None:
    from voice_companion.engines.keystore import get_secret

    return get_secret(service, username)


def _tried(key_source: str) -> str:
    names = {
        "env": f"${ENV_PASSPHRASE} is unset",
        "keyring": "none in the OS keyring",
        "credential": f"no systemd credential {CREDENTIAL_NAME}",
        "prompt": "no terminal to ask on",
    }
    order = SOURCES if key_source == "auto" else (key_source,)
    return ", ".join(names[s] for s in order)


def _where_to_put_one(key_source: str) -> str:
    return {
        "auto": "store one with `voice-companion memory set-key`, or set "
        f"${ENV_PASSPHRASE}, or run from a terminal",
        "env": f"set ${ENV_PASSPHRASE}",
        "keyring": "store one with `voice-companion memory set-key`",
        "credential": f"give the unit LoadCredentialEncrypted={CREDENTIAL_NAME}:FILE",
        "prompt": "run it from a terminal, or choose another memory.key_source",
    }[key_source]


def open_memory_db(
    data_dir: Path, config: MemoryConfig, sources: KeySources | None = None
) -> MemoryDb:
    """memory.db in ``data_dir``, opened the way ``memory.encrypt`` says, or a one-line refusal.

    Never opens a plaintext file when encryption is on, never creates one without a key, and
    does not misreport an encrypted file as corrupt when encryption is off.
    """
    path = data_dir / FILENAME
    state = file_state(path)
    if not config.encrypt:
        if state is FileState.ENCRYPTED:
            raise MemoryKeyError(
                f"{path} is encrypted (or not a database): set memory.encrypt = true and give "
                "its key (see memory.key_source), or move the file aside to start afresh"
            )
        return MemoryDb(path, config.busy_timeout_ms, connect_plain)
    if state is FileState.PLAINTEXT:
        raise MemoryKeyError(
            f"memory.encrypt is on but {path} is not encrypted: convert it with "
            "`voice-companion memory encrypt` (or set memory.encrypt = false)"
        )
    key = (sources or KeySources()).find(
        config.key_source, "memory.encrypt is on", confirm=state is FileState.MISSING
    )
    return MemoryDb(path, config.busy_timeout_ms, _sqlcipher_connector(key))


def _sqlcipher_connector(key: MemoryKey) -> Connector:
    def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
        from voice_companion.engines import sqlcipher

        try:
            return sqlcipher.connect(path, key.passphrase, timeout_s)
        except MemoryKeyError as exc:
            raise MemoryKeyError(
                f"{exc}: the key from {key.source} is wrong (or the file is not a memory "
                "database); give the right one, nothing was changed"
            ) from exc

    return connect


@dataclass(frozen=True)
class Conversion:
    turns: int
    path: Path


def encrypt_in_place(
    data_dir: Path, config: MemoryConfig, sources: KeySources | None = None
) -> Conversion:
    """Convert a plaintext memory.db to SQLCipher, in place, leaving no plaintext behind.

    The encrypted copy is written beside it and renamed over it (atomic: a crash leaves one
    whole file or the other). The old file's bytes are then overwritten with zeros through a
    descriptor kept open across the rename (best effort: copy-on-write file systems and SSDs
    may keep old blocks), and its -wal and -shm files removed.
    """
    path = data_dir / FILENAME
    state = file_state(path)
    if state is FileState.ENCRYPTED:
        raise MemoryKeyError(f"{path} is already encrypted; nothing was changed")
    if state is FileState.MISSING:
        raise MemoryKeyError(
            f"there is no {path} to encrypt: with memory.encrypt = true the companion creates "
            "it encrypted"
        )
    key = (sources or KeySources()).find(config.key_source, "memory encrypt needs a key", True)
    from voice_companion.engines import sqlcipher

    target = path.with_name(path.name + ".encrypting")
    _remove(target)
    try:
        turns = sqlcipher.encrypt_copy(path, target, key.passphrase)
        os.chmod(target, stat.S_IMODE(path.stat().st_mode))  # as private as the original
        with path.open("r+b") as old:
            os.replace(target, path)
            _fsync_dir(path.parent)
            _overwrite(old)
    except BaseException:
        _remove(target)
        raise
    for suffix in ("-wal", "-shm", "-journal"):
        _remove(path.with_name(path.name + suffix))
    log.info("memory.db encrypted (%d turns); key from %s", turns, key.source)
    return Conversion(turns, path)


def _overwrite(f: BinaryIO) -> None:
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    block = b"\0" * (1 << 16)
    for start in range(0, size, len(block)):
        f.write(block[: min(len(block), size - start)])
    f.flush()
    os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise MemoryStoreError(f"cannot remove {path}: {exc}") from exc


def store_key(sources: KeySources | None = None) -> str:
    """Ask for a passphrase twice on the terminal and store it in the OS keyring; returns the
    keyring backend's name. It must be the key memory.db was (or will be) encrypted with."""
    sources = sources or KeySources()
    if not sources.interactive:
        raise MemoryKeyError("memory set-key asks for the passphrase: run it from a terminal")
    key = sources.lookup("prompt", confirm=True)
    if key is None:
        raise MemoryKeyError("an empty passphrase cannot encrypt anything; nothing was stored")
    from voice_companion.engines.keystore import set_secret

    return set_secret(KEYRING_SERVICE, KEYRING_USER, key.passphrase)


def memory_connector(config: MemoryConfig, sources: KeySources | None = None) -> Connector:
    """How memory.db is opened (plainly, or with SQLCipher and its key), for what must read it
    without opening it as a ``MemoryDb`` (``memory recover`` reads a damaged file)."""
    if not config.encrypt:
        return connect_plain
    return _sqlcipher_connector(
        (sources or KeySources()).find(config.key_source, "memory.encrypt is on")
    )
