"""A library's error on the terminal: one line, once, and the whole record in the job's log file."""

import logging
import sqlite3

import mlflow  # noqa: F401 - configures MLflow's loggers, as any job does
import pytest

from harness.errors import library_logs_in_one_line


@pytest.fixture
def job_log(tmp_path):
    """A log file on the root logger, as Hydra opens one per job; MLflow's handlers as they were, after."""
    handler = logging.FileHandler(tmp_path / "job.log")
    logging.getLogger().addHandler(handler)
    loggers = [logging.getLogger(name) for name in ("mlflow", "sqlalchemy.engine", "alembic")]
    saved = [(logger, list(logger.handlers), [(h, h.formatter, list(h.filters)) for h in logger.handlers])
             for logger in loggers]
    yield tmp_path / "job.log"
    logging.getLogger().removeHandler(handler)
    handler.close()
    for logger, handlers, formats in saved:
        logger.handlers = handlers
        for h, formatter, filters in formats:
            h.setFormatter(formatter)
            h.filters = filters


def test_a_library_error_with_its_traceback_is_one_line_once_on_the_terminal_and_whole_in_the_log_file(job_log, capsys):
    library_logs_in_one_line()
    for _ in range(3):  # a full disk fails every write the same way
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            logging.getLogger("mlflow.store.db.utils").error("SQLAlchemy database error. The following exception is "
                                                            "caught.\n(sqlite3.OperationalError) database or disk is full",
                                                            exc_info=True)
    assert capsys.readouterr().err.splitlines() == [
        "error: mlflow.store.db.utils: SQLAlchemy database error. The following exception is caught. "
        "(OperationalError: database or disk is full)"]
    logged = job_log.read_text()
    assert logged.count("Traceback (most recent call last)") == 3 and "database or disk is full" in logged
