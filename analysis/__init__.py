"""Reading tracked runs back from MLflow into pandas, and drawing the figures and the report of a sweep.

    from analysis import load_runs, figures, summary
    runs = load_runs("harness")            # tidy: one row per (run, metric, step)
    figures.convergence(runs, x="steps")   # a matplotlib Figure
    summary.study(runs).best               # the best learning rate of each batch size, and why
"""

from . import figures, summary
from .loader import AnalysisError, load_runs

__all__ = ["AnalysisError", "figures", "load_runs", "summary"]
