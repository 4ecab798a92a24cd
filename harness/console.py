"""What reaches the terminal: the harness's own lines. What Hydra, MLflow and other libraries say
(banners, notices, Python warnings) goes to the log files only: the job's log file in its folder,
and for a sweep's launching process `multirun.log` in the sweep's folder (conf/config.yaml's
`hydra.job_logging` and `hydra.hydra_logging`). `verbose=true` shows it all on the terminal too.
"""

import logging
import os

HARNESS = "harness"  # the logger of the harness's own lines


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
