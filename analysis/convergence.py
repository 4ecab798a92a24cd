"""Convergence figure: training cost vs epoch, one line per lr, one panel per batch_size.

    python -m analysis.convergence --experiment harness --out convergence.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import seaborn as sns  # noqa: E402

from .loader import DEFAULT_URI, load_runs  # noqa: E402


def convergence_figure(runs, metric: str = "train_cost"):
    curves = runs[runs.metric == metric].rename(columns={"step": "epoch", "value": metric})
    curves = curves.assign(batch_size=curves.batch_size.astype(str))
    grid = sns.relplot(data=curves, x="epoch", y=metric, hue="lr", col="batch_size", kind="line",
                       palette="colorblind", errorbar=("ci", 95), facet_kws={"sharey": True})
    grid.set(yscale="log")
    return grid.figure


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="harness", help="MLflow experiment name (default: harness)")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow tracking URI (default: {DEFAULT_URI})")
    parser.add_argument("--metric", default="train_cost")
    parser.add_argument("--out", default="convergence.png", help="PNG file to write")
    args = parser.parse_args(argv)
    figure = convergence_figure(load_runs(args.experiment, args.tracking_uri), args.metric)
    figure.savefig(args.out, dpi=150, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
