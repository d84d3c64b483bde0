"""Logs above DEBUG carry no words of the user's or the model's, not even inside error text.

Exception text is not ours to vouch for: a model server's HTTP 400 body can echo the whole
prompt, llama.cpp or piper can quote the text they failed on, a traceback can hold any of it.
So, below ``-vv``, ``PrivateErrorsFilter`` logs an exception passed as a log argument by its
class and our own summary only, and a traceback (``exc_info``) by its class only; ``-vv``
(DEBUG) shows everything.

Our summary is what our own messages say before their first ": ": an engine error names what
failed first and quotes the other side after a colon ("the LLM server at URL returned HTTP 400
Bad Request: <its body>"). For exceptions not ours only the class is kept, and for an
``OSError`` its system message ("No space left on device").
"""

from __future__ import annotations

import logging

from voice_companion.errors import CompanionError

HINT = "-vv shows the details"


def summary(exc: BaseException) -> str:
    """A one-line description of ``exc`` holding nothing quoted from elsewhere."""
    name = type(exc).__name__
    if isinstance(exc, CompanionError):
        own, quoted, _ = str(exc).partition(": ")
        own = " ".join(own.split())
        if not own:
            return name
        if not quoted:
            return own
        cause = exc.__cause__  # "Connection refused" says more than the class
        system = f"{cause.strerror}; " if isinstance(cause, OSError) and cause.strerror else ""
        return f"{own} ({system}{HINT})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    return name


class PrivateErrorsFilter(logging.Filter):
    """Installed on the command line's handler when it does not show DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True
        if isinstance(record.args, tuple) and any(
            isinstance(a, BaseException) for a in record.args
        ):
            record.args = tuple(
                summary(a) if isinstance(a, BaseException) else a for a in record.args
            )
        if record.exc_info and record.exc_info[1] is not None:
            kind = type(record.exc_info[1]).__name__
            record.msg = f"{record.getMessage()} ({kind}; {HINT})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
