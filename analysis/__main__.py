"""`python -m analysis COMMAND`: a sweep's report, or one of its figures, from tracked MLflow runs.

    python -m analysis report --experiment NAME [--sweep RUN_ID | --all-sweeps] [--out DIR]
    python -m analysis convergence --experiment NAME [--x steps] --out convergence.png

Every command reads the latest sweep of the experiment unless told otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

from harness import names

matplotlib.use("Agg")  # files only, no window

from . import figures, summary  # noqa: E402
from .loader import DEFAULT_URI, AnalysisError, client_for  # noqa: E402
from .report import choose_runs, rules, write_report  # noqa: E402
from .summary import ACCURACY, COST  # noqa: E402

X_AXES = ["epoch", names.STEPS, names.EXAMPLES, names.TRAIN_TIME]


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
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sweep", metavar="RUN_ID", help="this sweep (its parent run's id); default: the latest sweep")
    which.add_argument("--all-sweeps", action="store_true", help="every run of the experiment, mixing its sweeps")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow tracking URI (default: {DEFAULT_URI})")


def target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target-cost", type=positive, metavar="X",
                        help="training cost to reach (default: the study's study.target_cost, else halfway on a log "
                             "scale from the untrained network to the best run)")
    parser.add_argument("--target-accuracy", type=positive, metavar="Y",
                        help="validation accuracy to reach, a fraction (default: the study's study.target_accuracy, "
                             "else 90%% of the way from chance to the best run)")


def steps_figure(runs, args):
    return figures.steps_to_target(runs, summary.study(runs, args.target_cost, args.target_accuracy))


def noise_figure(runs, args):
    found = summary.study(runs, args.target_cost, args.target_accuracy)
    if not figures.noise_measured(found):
        raise AnalysisError("gradient noise scale: no run of a best configuration measured B_simple on its way to a "
                            "target (measure.noise_scale_every)")
    return figures.gradient_noise_scale(runs, found)


def rule_figure(name: str):
    """The figure of a scaling rule's section, or one line saying the sweep cannot judge the rule."""
    def draw(runs, args):
        judged = rules(runs)
        found = [section for section in judged.sections() if section.name == name]
        if not found:
            raise AnalysisError(f"{name.replace('_', ' ')}: the sweep does not vary m and η (and n) along the rule's lines, "
                                "or each of its lines starts under-trained")
        return judged.draw(found[0])
    return draw


FIGURES = {
    "convergence": ("cost vs epoch, updates, examples or seconds; panel = batch size, colour = lr",
                    lambda runs, a: figures.convergence(runs, a.metric, a.x)),
    "tuned": ("each batch size at its best lr, against updates, examples and training time",
              lambda runs, a: figures.tuned(runs, a.metric)),
    "heatmap": ("final training cost and validation accuracy over lr × batch size, best lr per batch size boxed",
                lambda runs, a: figures.heatmaps(runs)),
    "final-vs-lr": ("final training cost vs lr for each batch size, best lr starred, diverged runs marked",
                    lambda runs, a: figures.final_vs_lr(runs)),
    "steps-to-target": ("updates to reach a target vs batch size at the best lr, log-log, slope -1 line",
                        steps_figure),
    "gradient-noise": ("gradient noise scale B_simple vs fraction of the updates to each target, a line per batch size",
                       noise_figure),
    "linear-scaling": ("final test accuracy vs batch size along lines of constant lr/m (linear scaling)",
                       rule_figure("linear_scaling")),
    "noise-scale": ("final test accuracy vs noise scale g = lr*n/m, a line per training set size (equal noise scale)",
                    rule_figure("noise_scale")),
}


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser("report", help="folder with report.md, report.html and the figures; logged on the sweep's parent run",
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
        if name in ("steps-to-target", "gradient-noise"):
            target_options(command)
        if name in ("convergence", "tuned"):
            command.add_argument("--metric", default=COST, help=f"metric (default: {COST})")
    return main


def run(args: argparse.Namespace) -> None:
    if args.command == "report":
        folder = write_report(args.experiment, args.tracking_uri, args.sweep, args.out, args.target_cost,
                              args.target_accuracy, log=not args.no_log, all_sweeps=args.all_sweeps)
        print(f"wrote {folder / 'report.html'} and {folder / 'report.md'}")
        return
    if args.command in ("steps-to-target", "gradient-noise"):
        summary.check_target(args.target_accuracy, ACCURACY)
    runs, _, scope = choose_runs(client_for(args.tracking_uri), args.experiment, args.tracking_uri, args.sweep, args.all_sweeps)
    figure = FIGURES[args.command][1](runs[runs.status == "FINISHED"], args)
    png, pdf = figures.save(figure, args.out.with_suffix(""))
    print(f"wrote {png} and {pdf} from {scope}")


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    try:
        run(args)
    except AnalysisError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
