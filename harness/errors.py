"""The error for a setting that cannot run, how any error is said in one line, and how the
command line stops with one."""

import sys


class ConfigError(ValueError):
    """A setting that cannot be run; the message is one line naming the setting and its allowed values."""


def describe(error: BaseException) -> str:
    """`Type: message` in one line. SQLAlchemy puts a note on autoflush before the database's own
    message, and the statement after it; the database's message is what says what went wrong."""
    lines = [line for line in str(error).strip().splitlines() if not line.startswith("(raised as a result of")]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def exit_with(message: str, code: int) -> None:
    """Stop the command with one line on stderr and this exit code; SystemExit passes through
    Hydra's own error reporting untouched."""
    print(message, file=sys.stderr)
    sys.exit(code)
