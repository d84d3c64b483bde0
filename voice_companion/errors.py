"""One exception hierarchy for the whole companion.

::

    CompanionError                 anything the companion raises on purpose
    ├── UsageError                 a command was given arguments it cannot use (exit code 2)
    ├── ConfigError                a user's configuration is wrong (exit code 2)
    │   └── ModelNotFoundError     a configured model file or folder does not exist
    ├── AudioError                 audio could not be read, decoded or written
    │   └── AudioFileError         an input file is missing, empty or not audio
    └── EngineError                a third-party engine failed at run time
        ├── VadError
        ├── SttError
        ├── TtsError
        └── LlmError
            └── LlmTimeoutError    the model did not answer in time

Library exceptions are wrapped at the engine boundary (``raise SttError(...) from exc``) so
that stages and the CLI only ever catch these. Every message is one line a user can act on.
"""


class CompanionError(Exception):
    """Base of every error the companion raises on purpose."""


class UsageError(CompanionError):
    """A command was given arguments it cannot use."""


class ConfigError(CompanionError):
    """The configuration (file, environment or flags) is invalid."""


class ModelNotFoundError(ConfigError):
    """A configured model file or folder does not exist."""


class AudioError(CompanionError):
    """Audio could not be read, decoded, resampled or written."""


class AudioFileError(AudioError):
    """An input recording is missing, empty, or not audio."""


class EngineError(CompanionError):
    """A third-party engine failed while running."""


class VadError(EngineError):
    """Voice-activity detection failed."""


class SttError(EngineError):
    """Speech-to-text failed."""


class TtsError(EngineError):
    """Text-to-speech failed."""


class LlmError(EngineError):
    """The language model failed or returned something unusable."""


class LlmTimeoutError(LlmError):
    """The language model did not answer within its timeout."""
