"""What the parallel launcher's helper process says goes to a log file, not the terminal.

joblib starts a resource tracker beside its worker processes, and starts it again if it dies;
a tracker started again does not know the shared folders the workers then release, and prints
a traceback for each. Its output goes to `resource_tracker.log` in the sweep's folder; the
terminal gets one line when it is started again.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

LOG = "resource_tracker.log"


def tracker_output_to(folder: Path) -> None:
    """Start joblib's resource tracker (now, and whenever it is started again) with its stderr on
    `folder`/LOG; say in one line on the terminal when it is started again."""
    from joblib.externals.loky.backend import resource_tracker

    tracker_class = type(resource_tracker._resource_tracker)
    if getattr(tracker_class._launch, "to_log", False):
        return
    launch = tracker_class._launch
    warnings.filterwarnings("ignore", message="resource_tracker: process died unexpectedly", category=UserWarning)
    started = []

    def to_log(tracker) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if started:
            print(f"warning: joblib's resource tracker died and was started again; what it says is in "
                  f"{folder / LOG}", file=sys.stderr, flush=True)
        terminal = os.dup(2)  # the tracker inherits this process's stderr when it starts
        try:
            with open(folder / LOG, "a") as log:
                os.dup2(log.fileno(), 2)
                launch(tracker)
        finally:
            os.dup2(terminal, 2)
            os.close(terminal)
        started.append(tracker._pid)

    to_log.to_log = True
    tracker_class._launch = to_log
