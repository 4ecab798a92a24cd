"""The error for a setting that cannot run, how any error is said in one line, and how the
command line stops with one."""

import logging
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


class OneLine(logging.Formatter):
    """A log record in one line: its level, its logger, the first line of its message and, if it
    carries an exception, that exception's one line."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines()
        line = f"{record.levelname.lower()}: {record.name}: {lines[0] if lines else ''}"
        return line + (f" ({describe(record.exc_info[1])})" if record.exc_info and record.exc_info[1] else "")


class Once(logging.Filter):
    """Lets through each line once per process: a failing store says the same at every write."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        line = OneLine().format(record)
        new = line not in self.seen
        self.seen.add(line)
        return new


def library_logs_in_one_line(loggers=("mlflow", "sqlalchemy.engine", "alembic")) -> None:
    """Each record of these libraries' loggers in one line on the terminal, once, and whole in the log
    files of the root logger (a Hydra job's log file): MLflow logs each failed SQL statement with
    its tracebacks, some 45 lines, and a full disk fails every write. A log file that cannot be
    written (that same full disk) drops the record instead of printing a traceback of its own."""
    logging.raiseExceptions = False
    files = [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]
    for name in loggers:
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler) and not isinstance(handler.formatter, OneLine):
                handler.setFormatter(OneLine())
                handler.addFilter(Once())
        logger.handlers = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)] + files
