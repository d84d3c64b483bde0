"""The OS keyring (``keyring``): GNOME Keyring / KWallet / KeePassXC over the Secret Service.

Imported only when a key is looked up: ``keyring`` takes ~60 ms to import and may talk to
D-Bus. ``PYTHON_KEYRING_BACKEND`` picks a backend explicitly (keyring's own variable).
"""

from __future__ import annotations

import os

from voice_companion.errors import MemoryKeyError


def get_secret(service: str, username: str) -> str | None:
    """The stored secret, None when none is stored; ``MemoryKeyError`` when no keyring works."""
    import keyring
    import keyring.errors

    try:
        return keyring.get_password(service, username)
    except keyring.errors.NoKeyringError as exc:
        raise MemoryKeyError(
            "no OS keyring is available (no Secret Service is running): start one, or choose "
            "another memory.key_source"
        ) from exc
    except Exception as exc:  # D-Bus and backend failures come in many types
        raise MemoryKeyError(f"the OS keyring failed: {exc}".splitlines()[0]) from exc


def set_secret(service: str, username: str, secret: str) -> str:
    """Store a secret; returns the backend's name. Refuses a backend keyring itself calls
    "not recommended" (such as a plaintext file) unless it was chosen explicitly."""
    import keyring
    import keyring.errors

    backend = keyring.get_keyring()
    name = type(backend).__name__
    if float(getattr(backend, "priority", 0)) < 1 and not os.environ.get("PYTHON_KEYRING_BACKEND"):
        raise MemoryKeyError(
            f"the only keyring here ({name}) is not a safe one: start a Secret Service "
            "(GNOME Keyring, KWallet, KeePassXC) or use another key source"
        )
    try:
        keyring.set_password(service, username, secret)
    except Exception as exc:  # NoKeyringError, PasswordSetError, D-Bus errors
        raise MemoryKeyError(f"cannot store the key in the keyring ({name}): {exc}") from exc
    return f"{type(backend).__module__}.{name}"
