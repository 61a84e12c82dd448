"""Errors that the command line turns into one line and exit status 2.

Every stage raises :class:`InputError` for bad user input (a file, a field, a flag) so the CLI can
report it without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


def one_line(text: object) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), so a message
    quoting a hostile value (a key holding a newline or a vertical tab) still prints as one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class DseError(Exception):
    """Base class for errors dse reports to the user as one line."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class InputError(DseError):
    """Bad input: names the file and/or field so the user can fix it."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = str(file) if file is not None else None
        self.field = field
        self.reason = message
        where = ": ".join(p for p in (self.file, self.field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class InvalidMapping(DseError):
    """A mapping the hardware cannot run (capacity, fanout, factor product); names the level."""

    def __init__(self, message: str, *, level: str | None = None):
        self.level = level
        super().__init__(f"{level}: {message}" if level else message)
