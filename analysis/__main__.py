"""`python -m analysis COMMAND`: a sweep's report, or one of its figures, from tracked MLflow runs.

    python -m analysis report --experiment NAME [--sweep RUN_ID] [--out DIR]
    python -m analysis convergence --experiment NAME [--x steps] --out convergence.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window

from . import figures, summary  # noqa: E402
from .loader import DEFAULT_URI, AnalysisError, load_runs  # noqa: E402
from .report import ACCURACY, COST, write_report  # noqa: E402

X_AXES = ["epoch", "steps", "examples", "train_time"]


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number > 0")
    return value


def source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", default="harness", help="MLflow experiment name (default: harness)")
    parser.add_argument("--sweep", metavar="RUN_ID", help="only the runs of this sweep (its parent run's id)")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow tracking URI (default: {DEFAULT_URI})")


def target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target-cost", type=positive, metavar="X",
                        help="training cost to reach (default: the hardest one every batch size reaches)")
    parser.add_argument("--target-accuracy", type=positive, metavar="Y",
                        help="validation accuracy to reach, a fraction (default: as for the cost)")


FIGURES = {
    "convergence": ("cost vs epoch, updates, examples or seconds; panel = batch size, colour = lr",
                    lambda runs, a: figures.convergence(runs, a.metric, a.x)),
    "heatmap": ("final cost and best accuracy over lr × batch size",
                lambda runs, a: figures.final_heatmaps(runs, a.metric, ACCURACY)),
    "final-vs-lr": ("final cost vs lr for each batch size, showing where training diverges",
                    lambda runs, a: figures.final_vs_lr(runs, a.metric)),
    "steps-to-target": ("updates to reach a target vs batch size at the best lr, log-log, slope -1 line",
                        lambda runs, a: figures.steps_to_target(runs, a.target_cost, a.target_accuracy)),
    "gd-vs-sgd": ("each batch size at its best lr, at equal examples and at equal training time",
                  lambda runs, a: figures.gd_vs_sgd(runs, a.metric)),
}


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser("report", help="folder with every figure, report.md and report.html; logged on the sweep's parent run",
                                 description="Write a report folder and log it on the sweep's parent run.")
    source_options(report)
    report.add_argument("--out", type=Path, metavar="DIR", help="report folder (default: reports/EXPERIMENT[-SWEEP])")
    target_options(report)
    report.add_argument("--no-log", action="store_true", help="do not log the report on the parent run")
    for name, (help_text, _) in FIGURES.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        source_options(command)
        command.add_argument("--out", type=Path, default=Path(f"{name}.png"), metavar="FILE",
                             help=f"PNG to write; a PDF is written beside it (default: {name}.png)")
        if name == "convergence":
            command.add_argument("--x", choices=X_AXES, default="epoch", help="horizontal axis (default: epoch)")
        if name == "steps-to-target":
            target_options(command)
        else:
            command.add_argument("--metric", default=COST, help=f"cost metric (default: {COST})")
    return main


def run(args: argparse.Namespace) -> None:
    if args.command == "report":
        folder = write_report(args.experiment, args.tracking_uri, args.sweep, args.out, args.target_cost,
                              args.target_accuracy, log=not args.no_log)
        print(f"wrote {folder / 'report.html'} and {folder / 'report.md'}")
        return
    if args.command == "steps-to-target":
        summary.check_target(args.target_accuracy, ACCURACY)
    figure = FIGURES[args.command][1](load_runs(args.experiment, args.tracking_uri, args.sweep), args)
    png, pdf = figures.save(figure, args.out.with_suffix(""))
    print(f"wrote {png} and {pdf}")


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    try:
        run(args)
    except AnalysisError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
