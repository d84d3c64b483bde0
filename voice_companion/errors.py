"""One exception hierarchy for the whole companion.

::

    CompanionError                 anything the companion raises on purpose
    ├── UsageError                 a command was given arguments it cannot use (exit code 2)
    ├── ConfigError                a user's configuration is wrong (exit code 2)
    │   ├── ModelNotFoundError     a configured model file or folder does not exist
    │   ├── PersonaError           a persona file is invalid, missing or cannot be installed
    │   └── CardError              a character card file cannot be read or written
    ├── AudioError                 audio could not be read, decoded or written
    │   ├── AudioFileError         an input file is missing, empty or not audio
    │   └── AudioDeviceError       no usable microphone or speaker
    ├── ControlError               the control socket failed, or a request on it is malformed
    │   └── DaemonNotRunningError  no companion is listening on the control socket
    ├── MemoryStoreError           the long-term memory (memory.db) cannot be used
    │   ├── MemoryBusyError        the database stayed locked past the busy timeout
    │   ├── MemoryFullError        the disk (or the database's page limit) is full
    │   ├── MemoryCorruptError     the database fails its integrity check
    │   ├── MemoryNotFoundError    no memory has the id that was asked for
    │   ├── MemoryFormatError      an export or LoCoMo file is malformed
    │   └── MemoryKeyError         encrypted memory: no key, a wrong key, or plaintext
    ├── EngineError                a third-party engine failed at run time
    │   ├── VadError
    │   ├── SttError
    │   ├── TtsError
    │   ├── EmbedderError          the sentence-embedding model failed
    │   ├── SentimentError         the text-sentiment lexicon (VADER) failed
    │   └── LlmError
    │       ├── LlmTimeoutError    the model did not answer in time
    │       └── LlmReplyCutError   a reply went past its time or length limit and was cut
    └── BenchError                 a benchmark cannot run: its inputs are missing or malformed
        ├── CrashBenchError        the crash benchmark's chat would not start or answer
        └── SoakError              the soak benchmark cannot run (no /proc, no minutes)

    OSError                        Python's: a file could not be opened, read or written
    ├── SymlinkRefusedError        a path to write is a symbolic link (private.py)
    └── NotRegularFileError        a file to read is a device, a pipe, a socket or too big

The two ``OSError`` classes are not ``CompanionError`` on purpose: every place that opens a
file the user named already turns an ``OSError`` into its own one-line error with the path
and the key (``ConfigError``, ``CardError``, ``MemoryFormatError``...), and these two must
take that same road rather than escape it.

Library exceptions are wrapped at the engine boundary (``raise SttError(...) from exc``) so
that stages and the CLI only ever catch these. Every message is one line a user can act on.
"""

from __future__ import annotations

import errno
from pathlib import Path


class CompanionError(Exception):
    """Base of every error the companion raises on purpose."""


class UsageError(CompanionError):
    """A command was given arguments it cannot use."""


class ConfigError(CompanionError):
    """The configuration (file, environment or flags) is invalid."""


class ModelNotFoundError(ConfigError):
    """A configured model file or folder does not exist."""


class PersonaError(ConfigError):
    """A persona file is invalid, missing, or cannot be installed; the message names it."""


class CardError(ConfigError):
    """A character card file cannot be read or written; the message names the problem."""


class AudioError(CompanionError):
    """Audio could not be read, decoded, resampled or written."""


class AudioFileError(AudioError):
    """An input recording is missing, empty, or not audio."""


class AudioDeviceError(AudioError):
    """No usable audio device, or it could not be opened."""


class MemoryStoreError(CompanionError):
    """The long-term memory database cannot be opened, read or written."""


class MemoryBusyError(MemoryStoreError):
    """Another process kept the memory database locked for longer than the busy timeout."""


class MemoryFullError(MemoryStoreError):
    """The disk (or the database's page limit) is full: nothing more can be written for now."""


class MemoryCorruptError(MemoryStoreError):
    """The memory database fails its integrity check: it is not written to."""


class MemoryNotFoundError(MemoryStoreError):
    """No turn or fact has the id that was asked for."""


class MemoryFormatError(MemoryStoreError):
    """A memory export or a LoCoMo conversation file is not in the expected layout."""


class MemoryKeyError(MemoryStoreError):
    """memory.db encryption: no key is available, the key is wrong, or the file's state
    (encrypted or plaintext) does not match ``memory.encrypt``."""


class EngineError(CompanionError):
    """A third-party engine failed while running."""


class VadError(EngineError):
    """Voice-activity detection failed."""


class SttError(EngineError):
    """Speech-to-text failed."""


class TtsError(EngineError):
    """Text-to-speech failed."""


class EmbedderError(EngineError):
    """The sentence-embedding model could not be loaded or run."""


class SentimentError(EngineError):
    """The text-sentiment lexicon (VADER) could not be loaded or run."""


class LlmError(EngineError):
    """The language model failed or returned something unusable."""


class LlmTimeoutError(LlmError):
    """The language model did not answer within its timeout."""


class LlmReplyCutError(LlmError):
    """A reply went on past ``llm.reply_timeout_s`` or its length cap; what came before it
    stands (the rest is not waited for)."""


class ControlError(CompanionError):
    """The control socket could not be served or reached, or a request on it is malformed."""


class DaemonNotRunningError(ControlError):
    """No companion is listening on the control socket."""


class BenchError(CompanionError):
    """A benchmark's inputs are missing or malformed, or it cannot run as asked."""


class CrashBenchError(BenchError):
    """The crash benchmark could not run (the chat process would not start or answer)."""


class SoakError(BenchError):
    """The soak benchmark cannot run as asked."""


class SymlinkRefusedError(OSError):
    """A path to write is a symbolic link: neither followed nor replaced."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            errno.ELOOP, "it is a symbolic link; not following or replacing it (give the "
            "path of a file, or of the file the link points to)", str(path),
        )  # fmt: skip

    def __str__(self) -> str:
        return str(self.strerror)


class NotRegularFileError(OSError):
    """A file to read is a device, a pipe, a socket or too big: refused, never read."""

    def __str__(self) -> str:
        return str(self.strerror)
