"""The figures of a sweep, drawn from the loader's tidy DataFrame. Each function takes that
DataFrame and returns a matplotlib Figure (usable as is in a notebook); `save` writes PNG and PDF.

Common conventions: the line is the mean over seeds and the band its 95% confidence interval;
colours come from seaborn's colour-blind-safe palettes; a cost axis is logarithmic when the cost
spans more than a decade; a diverged run is never averaged in nor dropped: its finite part is
drawn thin and dashed and ends in an × at its last finite point, and the legend counts them.
"""

from __future__ import annotations

import math
import textwrap
from functools import wraps
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from . import summary
from .summary import CONFIG, batch_label, batch_sizes

AXIS_LABELS = {
    "epoch": "epoch",
    "steps": "updates (parameter steps)",
    "examples": "examples seen",
    "train_time": "training time (s)",
    "lr": "learning rate η",
    "batch_size": "mini-batch size m",
}
METRIC_LABELS = {
    "train_cost": "training cost C",
    "validation_cost": "validation cost C",
    "test_cost": "test cost C",
    "batch_cost": "mini-batch cost C",
    "validation_accuracy": "validation accuracy (fraction correct)",
    "test_accuracy": "test accuracy (fraction correct)",
}
THEME = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.15),
         "axes.titleweight": "bold", "legend.frameon": False}
DIVERGED = {"marker": "x", "markersize": 8, "markeredgewidth": 2, "linestyle": "none", "gid": "diverged"}
PANEL = (3.4, 2.9)  # inches per panel


def label(name: str) -> str:
    return AXIS_LABELS.get(name) or METRIC_LABELS.get(name) or name


def short_label(name: str) -> str:
    return label(name).split(" (")[0]


def themed(draw):
    """Draw under the harness's seaborn theme without changing the caller's matplotlib settings."""
    @wraps(draw)
    def styled(*args, **kwargs):
        with mpl.rc_context(THEME):
            return draw(*args, **kwargs)
    return styled


def colours(levels) -> dict:
    levels = list(levels)
    return dict(zip(levels, sns.color_palette("colorblind" if len(levels) <= 10 else "viridis", len(levels))))


def spans_decades(values) -> bool:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return len(values) > 0 and values.min() > 0 and values.max() / values.min() > 10


def log_y(metric: str, values) -> bool:
    """A cost spanning decades goes on a log axis, where its seeds are averaged geometrically."""
    return not metric.endswith("accuracy") and spans_decades(values)


def scale_y(ax, metric: str, values) -> None:
    log = log_y(metric, values)
    if log:
        ax.set_yscale("log")
    fit_to_runs(ax, values, log)


def fit_to_runs(ax, values, log: bool) -> None:
    """Fit the y axis to the values the runs reached, not to their confidence intervals: with two or
    three seeds a 95% t-interval can reach decades beyond every run and flatten every curve."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & ((values > 0) if log else True)]
    if not len(values):
        return
    low, high = values.min(), values.max()
    if log:
        ax.set_ylim(low / 1.5, high * 1.5)
    else:
        pad = 0.05 * (high - low) or 0.05 * max(abs(high), 1)
        ax.set_ylim(low - pad, high + pad)


def scale_x(ax, x: str, values) -> None:
    """Updates, examples and seconds span decades between batch sizes: a log axis that keeps 0
    (epoch 0, the untrained network) on a short linear stretch below the smallest positive value."""
    positive = np.asarray(values, dtype=float)
    positive = positive[positive > 0]
    if x != "epoch" and spans_decades(positive):
        ax.set_xscale("symlog", linthresh=10 ** math.floor(math.log10(positive.min())), linscale=0.8)
        ax.set_xlim(left=0)


def grid(n_panels: int, sharex: bool = True, sharey: bool = True):
    columns = min(n_panels, 4)
    rows = math.ceil(n_panels / columns)
    figure = Figure(figsize=(PANEL[0] * columns + 1.6, PANEL[1] * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, sharex=sharex, sharey=sharey, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes[:n_panels]


def draw_mean(ax, agg: pd.DataFrame, x: str, colour, name: str) -> None:
    xs = agg[x + "_mean"]
    ax.plot(xs, agg["mean"], color=colour, lw=1.8, label=name, gid="mean")
    ax.fill_between(xs, agg["low"], agg["high"], color=colour, alpha=0.2, lw=0)


def draw_diverged(ax, curve: pd.DataFrame, x: str, y: str, colour) -> None:
    """A diverged run: its finite part thin and dashed, an × at its last finite point."""
    curve = curve.sort_values("epoch")
    ax.plot(curve[x], curve[y], color=colour, lw=0.8, ls="--", alpha=0.7, gid="diverged-run")
    ax.plot(curve[x].iloc[-1:], curve[y].iloc[-1:], color=colour, **DIVERGED)


def diverged_handle(count: int) -> Line2D:
    return Line2D([], [], color="0.2", label=f"diverged ({count} run{'s' * (count != 1)}): last finite point",
                  **{k: v for k, v in DIVERGED.items() if k != "gid"})


def suptitle(figure: Figure, text: str) -> None:
    """A title over the whole figure, wrapped to its width so that a one-panel figure shows it all."""
    figure.suptitle(textwrap.fill(text, width=max(30, int(figure.get_figwidth() * 9))))


def seeds_note(runs: pd.DataFrame, interval: str = "band", geometric: bool = False) -> str:
    seeds = runs.groupby(CONFIG).seed.nunique()
    low, high = int(seeds.min()), int(seeds.max())
    n = f"{low}" if low == high else f"{low}–{high}"
    mean = "geometric mean" if geometric else "mean"
    return f"{mean} over {n} seed{'s' if high != 1 else ''}" + (f", {interval}: 95% CI" if interval else "")


def title(text: str) -> str:
    return text[:1].upper() + text[1:]


@themed
def convergence(runs: pd.DataFrame, metric: str = "train_cost", x: str = "epoch") -> Figure:
    """`metric` against epoch (or updates `steps`, examples seen `examples`, seconds `train_time`):
    one panel per batch size, one colour per lr."""
    curves = summary.per_epoch(runs, [metric] + ([x] if x != "epoch" else []))
    batches, lrs = batch_sizes(curves.batch_size), sorted(curves.lr.unique())
    colour = colours(lrs)
    geometric = log_y(metric, curves[metric])
    agg = summary.aggregate(curves[~curves.diverged], CONFIG, x, metric, geometric)
    figure, axes = grid(len(batches))
    for ax, batch_size in zip(axes, batches):
        for lr in lrs:
            config = agg[(agg.batch_size == batch_size) & (agg.lr == lr)]
            if len(config):
                draw_mean(ax, config, x, colour[lr], f"η = {lr:g}")
        for _, curve in curves[(curves.batch_size == batch_size) & curves.diverged].groupby("run_id"):
            draw_diverged(ax, curve, x, metric, colour[curve.lr.iloc[0]])
        ax.set_title(batch_label(batch_size))
        ax.set_xlabel(label(x))
    for ax in axes:
        scale_x(ax, x, curves[x])
        scale_y(ax, metric, curves[metric])
    for ax in axes[:: min(len(batches), 4)]:
        ax.set_ylabel(label(metric))
    handles = [Line2D([], [], color=colour[lr], lw=2, label=f"η = {lr:g}") for lr in lrs]
    n_diverged = curves[curves.diverged].run_id.nunique()
    handles += [diverged_handle(n_diverged)] if n_diverged else []
    figure.legend(handles=handles, loc="outside right center", title="learning rate")
    if x == "epoch":
        axes[0].xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    suptitle(figure, f"{title(label(metric))} vs {label(x)} ({seeds_note(curves, geometric=geometric)})")
    return figure


def config_means(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per configuration: mean of `column` over its non-diverged runs, runs, diverged runs."""
    return table.groupby(CONFIG).agg(mean=(column, "mean"), runs=("run_id", "size"), diverged=("diverged", "sum"))


def heatmap_panel(ax, means: pd.DataFrame, title: str, norm, cmap: str, batches: list, lrs: list) -> None:
    grid_ = means["mean"].unstack("lr").reindex(index=batches, columns=lrs)
    text = np.full(grid_.shape, "", dtype=object)
    for i, batch_size in enumerate(batches):
        for j, lr in enumerate(lrs):
            if (batch_size, lr) not in means.index:
                continue
            row = means.loc[(batch_size, lr)]
            if row.diverged == row.runs:
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor="0.85", hatch="xx", edgecolor="0.5", lw=0, gid="diverged"))
                ax.text(j + 0.5, i + 0.5, "diverged", ha="center", va="center", fontsize=8, color="0.2")
            else:
                text[i, j] = f"{row['mean']:.3g}" + (f"\n({row.diverged:.0f}/{row.runs:.0f} div.)" if row.diverged else "")
    sns.heatmap(grid_, ax=ax, annot=text, fmt="", cmap=cmap, norm=norm, linewidths=0.5, linecolor="white",
                annot_kws={"fontsize": 8},
                xticklabels=[f"{lr:g}" for lr in lrs], yticklabels=[batch_label(b).removeprefix("m = ") for b in batches])
    ax.set_xlabel(label("lr"))
    ax.set_ylabel(label("batch_size"))
    ax.set_title(title)
    ax.tick_params(axis="y", rotation=0)


@themed
def final_heatmaps(runs: pd.DataFrame, cost: str = "train_cost", accuracy: str | None = "validation_accuracy") -> Figure:
    """Final cost (and best accuracy, if tracked) over lr × batch size, mean over seeds; a hatched
    cell is a configuration all of whose runs diverged, "(k/n div.)" counts the ones that did."""
    accuracy = accuracy if accuracy in set(runs.metric) else None
    table = summary.finals(runs, cost, accuracy)
    batches, lrs = batch_sizes(table.batch_size), sorted(table.lr.unique())
    figure = Figure(figsize=(1.2 * len(lrs) + 2.8, 0.6 * len(batches) + 1.6) if not accuracy else
                    (2.4 * len(lrs) + 5, 0.6 * len(batches) + 1.6), layout="constrained")
    axes = figure.subplots(1, 2 if accuracy else 1, squeeze=False).ravel()
    costs = config_means(table, "final_cost")
    finite = costs["mean"].dropna()
    norm = LogNorm(finite.min(), finite.max()) if spans_decades(finite) else None
    heatmap_panel(axes[0], costs, f"final {label(cost)}", norm, "viridis_r", batches, lrs)
    if accuracy:
        best = config_means(table.assign(best_accuracy=table.best_accuracy.where(~table.diverged)), "best_accuracy")
        heatmap_panel(axes[1], best, f"best {label(accuracy)}", None, "viridis", batches, lrs)
    suptitle(figure, f"After {int(table.last_epoch.max())} epochs ({seeds_note(table, interval='')})")
    return figure


@themed
def final_vs_lr(runs: pd.DataFrame, metric: str = "train_cost") -> Figure:
    """Final cost against lr, one line per batch size, with the untrained network's cost for
    reference; an × at the top marks each lr where a run of that batch size diverged."""
    table = summary.finals(runs, metric)
    batches = batch_sizes(table.batch_size)
    colour = colours(batches)
    geometric = log_y(metric, pd.concat([table.final_cost, table.initial_cost]))
    figure = Figure(figsize=(7.6, 4.4), layout="constrained")
    ax = figure.subplots()
    for k, batch_size in enumerate(batches):
        rows = table[(table.batch_size == batch_size)]
        stable = rows[~rows.diverged].groupby("lr").final_cost.apply(lambda v: pd.Series(summary.mean_ci(v, geometric)))
        stable = stable.unstack()
        if len(stable):
            ax.errorbar(stable.index, stable[0], yerr=[stable[0] - stable[1], stable[2] - stable[0]], color=colour[batch_size],
                        marker="o", ms=4, lw=1.6, capsize=3, label=batch_label(batch_size), gid="mean")
        for lr, group in rows[rows.diverged].groupby("lr"):
            ax.plot([lr], [0.97 - 0.045 * k], transform=ax.get_xaxis_transform(), color=colour[batch_size], clip_on=False,
                    **DIVERGED)
            ax.annotate(f"{len(group)}/{len(rows[rows.lr == lr])}", (lr, 0.97 - 0.045 * k), xycoords=ax.get_xaxis_transform(),
                        xytext=(6, -3), textcoords="offset points", fontsize=7, color=colour[batch_size])
    ax.axhline(table.initial_cost.mean(), color="0.4", ls=":", lw=1.2, label="untrained network (epoch 0)")
    ax.set_xscale("log")
    scale_y(ax, metric, pd.concat([table.final_cost, table.initial_cost]))
    ax.set_xlabel(label("lr"))
    ax.set_ylabel(f"final {label(metric)}")
    n_diverged = int(table.diverged.sum())
    handles = ax.get_legend_handles_labels()[0] + ([diverged_handle(n_diverged)] if n_diverged else [])
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), title="batch size")
    suptitle(figure, f"Final {short_label(metric)} vs learning rate")
    marks = "; × k/n: k of n runs diverged" if table.diverged.any() else ""
    ax.set_title(seeds_note(table, "bars", geometric) + marks, fontsize=8)
    return figure


def steps_panel(ax, runs: pd.DataFrame, metric: str, target: float, n: int | None) -> pd.DataFrame:
    reached = summary.to_target(runs, metric, target)
    best = summary.fastest_to_target(reached, geometric=True)
    best["x"] = [summary.batch_size_value(b, n) for b in best.batch_size]
    best = best[best.x.notna()]
    hit = best[best.lr.notna()]
    ax.errorbar(hit.x, hit.steps, yerr=[hit.steps - hit.low, hit.high - hit.steps], color=sns.color_palette("colorblind")[0],
                marker="o", ms=6, lw=1.8, capsize=3, label="best lr for each batch size", gid="mean")
    for _, row in hit.iterrows():
        ax.annotate(f"η={row.lr:g}", (row.x, row.steps), xytext=(5, 5), textcoords="offset points", fontsize=8)
    if len(hit):
        first = hit.iloc[0]
        xs = np.array([best.x.min(), best.x.max()])
        ax.plot(xs, first.steps * first.x / xs, color="0.4", ls="--", lw=1.2, label="perfect scaling (slope −1)", gid="ideal")
    for _, row in best[best.lr.isna()].iterrows():
        ax.plot([row.x], [0.95], transform=ax.get_xaxis_transform(), color="0.2", clip_on=False, **DIVERGED)
        ax.annotate("not reached", (row.x, 0.95), xycoords=ax.get_xaxis_transform(), xytext=(0, -12),
                    textcoords="offset points", ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    fit_to_runs(ax, reached.merge(hit[["batch_size", "lr"]]).steps_to_target, log=True)
    ax.set_xticks(best.x, [f"full\n(n={n})" if b == "full" else f"{b}" for b in best.batch_size])
    ax.minorticks_off()
    ax.set_xlabel(label("batch_size"))
    ax.set_ylabel("updates to reach the target")
    relation = "≥" if metric.endswith("accuracy") else "≤"
    ax.set_title(f"{short_label(metric)} {relation} {target:.3g}")
    return best


@themed
def steps_to_target(runs: pd.DataFrame, target_cost: float | None = None, target_accuracy: float | None = None,
                    cost: str = "train_cost", accuracy: str = "validation_accuracy") -> Figure:
    """Updates needed to reach a target cost (and accuracy, if tracked) against batch size, each
    batch size at its fastest lr (Shallue et al. 2018), log–log with the slope −1 line of perfect
    scaling. A target left as None is the hardest one every batch size reaches (see
    summary.default_target). Diverged runs never count as reaching it."""
    panels = [(cost, target_cost)] + ([(accuracy, target_accuracy)] if accuracy in set(runs.metric) else [])
    n = summary.full_batch_size(runs)
    figure, axes = grid(len(panels), sharex=False, sharey=False)
    for ax, (metric, target) in zip(axes, panels):
        summary.check_target(target, metric)
        steps_panel(ax, runs, metric, summary.default_target(runs, metric) if target is None else target, n)
    axes[-1].legend(loc="best", fontsize=8)
    suptitle(figure, f"Updates to reach a target vs batch size ({seeds_note(runs, 'bars', geometric=True)})")
    return figure


@themed
def gd_vs_sgd(runs: pd.DataFrame, metric: str = "train_cost") -> Figure:
    """Each batch size at its best lr (lowest mean final cost, no diverged run), at equal examples
    processed and at equal training time."""
    curves = summary.per_epoch(runs, [metric, "examples", "train_time"])
    best = summary.best_lr(summary.finals(runs, metric))
    batches = batch_sizes(curves.batch_size)
    colour = colours(batches)
    geometric = log_y(metric, curves[metric])
    figure, axes = grid(2, sharex=False, sharey=True)
    handles = []
    for batch_size in batches:
        if batch_size not in best:
            handles.append(Line2D([], [], color=colour[batch_size], label=f"{batch_label(batch_size)}: every lr diverged",
                                  **{k: v for k, v in DIVERGED.items() if k != "gid"}))
            continue
        config = curves[(curves.batch_size == batch_size) & (curves.lr == best[batch_size])]
        name = f"{batch_label(batch_size)}, η = {best[batch_size]:g}"
        for ax, x in zip(axes, ["examples", "train_time"]):
            draw_mean(ax, summary.aggregate(config, CONFIG, x, metric, geometric), x, colour[batch_size], name)
        handles.append(Line2D([], [], color=colour[batch_size], lw=2, label=name))
    for ax, x, title in zip(axes, ["examples", "train_time"], ["at equal examples processed", "at equal training time"]):
        scale_x(ax, x, curves[x])
        scale_y(ax, metric, curves[metric])
        ax.set_xlabel(label(x))
        ax.set_title(title)
    axes[0].set_ylabel(label(metric))
    figure.legend(handles=handles, loc="outside right center", title="batch size, best lr")
    suptitle(figure, f"Full-batch GD vs mini-batch SGD ({seeds_note(curves, geometric=geometric)})")
    return figure


def save(figure: Figure, stem: Path | str) -> list[Path]:
    """Write `stem`.png (for screens and reports) and `stem`.pdf (vector, for papers)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    figure.savefig(paths[0], dpi=200)
    figure.savefig(paths[1])
    return paths
