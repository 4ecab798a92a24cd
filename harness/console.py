"""What reaches the terminal: the harness's own lines. What Hydra, MLflow and other libraries say
(banners, notices, Python warnings) goes to the log files only: the job's log file in its folder,
and for a sweep's launching process `multirun.log` in the sweep's folder (conf/config.yaml's
`hydra.job_logging` and `hydra.hydra_logging`). `verbose=true` shows it all on the terminal too.
"""

import logging
import os

HARNESS = "harness"  # the logger of the harness's own lines
# the loggers MLflow gives a handler of its own when imported (mlflow.utils.logging_utils), at its levels
MLFLOW_LOGGERS = {"mlflow": logging.INFO, "alembic": logging.WARNING, "sqlalchemy.engine": logging.WARNING,
                  "huey": logging.WARNING}


def terminal_loggers(verbose: bool) -> str:
    """`${terminal_loggers:${verbose}}`: the name a logging.Filter passes to the terminal, the
    harness's loggers, or every logger ("") with verbose."""
    return "" if verbose else HARNESS


def quiet(verbose: bool) -> None:
    """In this process: Python's warnings go through logging (to the log files, and to the
    terminal with verbose), and MLflow does not print a link to each run it ends (the sweep's
    last lines say how to browse them) unless verbose."""
    logging.captureWarnings(True)
    if not verbose:
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    through_the_root()


def through_the_root() -> None:
    """MLflow's loggers at MLflow's levels (so SQLAlchemy never logs its statements) but without
    the handlers MLflow gives them: their lines go through the root logger's handlers, as every
    library's do. Named in Hydra's logging config instead, they would cost each job's logging
    setup a pass over all of MLflow's loggers for each of them."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")  # read when MLflow is imported
    for name, level in MLFLOW_LOGGERS.items():  # and where it was imported already
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = [], True
        logger.setLevel(level)
