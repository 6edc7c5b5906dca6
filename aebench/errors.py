"""Exceptions that carry a message meant for the user, not a traceback."""


class UserError(Exception):
    """A mistake in the user's input (config, name, path, data); the CLI prints it and exits 2."""


class SkipCell(Exception):
    """A cell cannot run here (e.g. pretrained weights unavailable); recorded as ``skipped``."""


class CellFailure(Exception):
    """A cell cannot give an honest result (a non-finite loss or metric, no training step); recorded ``failed``."""


class MachineFault(Exception):
    """The machine failed the run (disk full, read-only or unwritable file); the CLI prints one line and exits 1."""


def exception_line(exc: BaseException) -> str:
    """``Type: message`` of an exception on one line (its first), at most 300 characters: for one-line errors."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
