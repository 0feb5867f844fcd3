"""structlog set-up: JSON lines in production, readable lines in a terminal.

The per-request line carries timings, counts and findings (rule, action, position), never
a header value or any text a stage held or redacted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog

LogFormat = Literal["auto", "json", "console"]

# C0 and C1 controls, DEL, and the bidi/line separators a terminal acts on.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(text: str) -> str:
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def escape_controls(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Escape control characters in the parts of a console line printed verbatim.

    A client chooses some logged text (its ``model``, the path, what an exception message
    quotes); written raw, an escape sequence in it would reach the operator's terminal and
    could rewrite what it shows. The console renderer prints key-value pairs with ``repr``
    (escaped), but the event name and a formatted traceback verbatim; those are escaped
    here, the traceback keeping its newlines. JSON lines escape everything already.
    """
    for key in ("event", "exception"):
        value = event.get(key)
        if isinstance(value, str) and _UNSAFE.search(value):
            if key == "exception":
                event[key] = "\n".join(_escape(line) for line in value.split("\n"))
            else:
                event[key] = _escape(value)
    return event


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured.

    Loggers are cached on first use; bound to one stream object they would keep writing to
    it after it is swapped (a test's capture closed, a daemon's stderr redirected).
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(fmt: LogFormat = "auto", level: str = "info") -> None:
    """Route structlog to stderr as JSON, or as colourless console text on a TTY."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *([escape_controls] if use_console else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )
