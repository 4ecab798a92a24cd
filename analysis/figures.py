"""The figures of a sweep, drawn from the loader's tidy DataFrame. Each function takes that
DataFrame and returns a matplotlib Figure (usable as is in a notebook); `save` writes PNG and PDF.

Conventions, the same in every figure (summary.AVERAGING): a line is the geometric mean over seeds
of a cost (arithmetic of an accuracy) and its band or bars span the seeds themselves, minimum to
maximum; learning rates and batch sizes are ordered quantities, so their colours run along one
colour-blind-safe sequential map (viridis) on a log scale, dark = small; counts spanning decades
go on log axes (the untrained network, at 0, is then off the axis); a diverged run is drawn
dashed up to its last finite point and ends in an ×; a configuration that did not learn is
dotted; a best η at the edge of its grid is flagged, since the grid may not bracket it.
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

from harness import names

from . import gradient_noise, scaling, summary, uncertainty
from .loader import tracked
from .summary import ACCURACY, CONFIG, COST, TEST_ACCURACY, batch_label, batch_sizes

AXIS_LABELS = {
    "epoch": "epoch",
    names.STEPS: "updates (parameter steps)",
    names.EXAMPLES: "examples seen",
    names.TRAIN_TIME: "training time (s)",
    "lr": "learning rate η",
    "batch_size": "mini-batch size m",
}
METRIC_LABELS = {
    names.TRAIN_COST: "training cost C",
    names.VALIDATION_COST: "validation cost C",
    names.TEST_COST: "test cost C",
    names.BATCH_COST: "mini-batch cost C",
    names.VALIDATION_ACCURACY: "validation accuracy (fraction correct)",
    names.TEST_ACCURACY: "test accuracy (fraction correct)",
}
THEME = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.15),
         "axes.titleweight": "bold", "legend.frameon": False}
DIVERGED = {"marker": "x", "markersize": 8, "markeredgewidth": 2, "linestyle": "none", "gid": "diverged"}
VERDICT_GIDS = {scaling.HOLDS: "holds", scaling.BREAKS: "breaks", scaling.UNDECIDED: "undecided",
                scaling.NOT_JUDGED: "not-judged"}
VERDICT_MARKERS = {  # a rule's verdict at a point (scaling.judge): filled, hollow, half; a dot where not judged
    scaling.HOLDS: lambda colour: {"ms": 5.5, "mew": 1.4, "color": colour, "mfc": colour},
    scaling.BREAKS: lambda colour: {"ms": 5.5, "mew": 1.4, "color": colour, "mfc": "white"},
    scaling.UNDECIDED: lambda colour: {"ms": 5.5, "mew": 1.4, "color": colour, "fillstyle": "left", "mfcalt": "white"},
    scaling.NOT_JUDGED: lambda colour: {"ms": 2.5, "mew": 0, "color": colour},
}
PANEL = (3.4, 2.9)  # inches per panel
COLOURMAP = mpl.colormaps["viridis"].resampled(256)
EDGE_NOTE = {"lowest": "best η is the lowest tried", "highest": "best η is the highest tried",
             "only": "one η tried: untuned"}


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


def ordered_colours(levels, n: int | None = None) -> dict:
    """A colour per learning rate or batch size, along viridis on a log scale (dark = small);
    `full` sits at n (or past the largest m when n is unknown). Stops short of viridis's pale
    yellow end, which vanishes on white."""
    values = {level: summary.batch_size_value(level, n) for level in levels}
    finite = [v for v in values.values() if np.isfinite(v)]
    top = max(finite, default=1.0)
    values = {k: (v if np.isfinite(v) else 2 * top) for k, v in values.items()}
    low, high = min(values.values()), max(values.values())
    norm = LogNorm(low, high) if high > low else (lambda v: 0.0)
    return {level: COLOURMAP(0.85 * float(norm(value))) for level, value in values.items()}


def spans_decades(values) -> bool:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return len(values) > 0 and values.min() > 0 and values.max() / values.min() > 10


def log_y(metric: str, values) -> bool:
    return not names.is_accuracy(metric) and spans_decades(values)


def fit_to_runs(ax, values, log: bool) -> None:
    """Fit the value axis to the values the runs reached."""
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


def scale_y(ax, metric: str, values) -> None:
    log = log_y(metric, values)
    if log:
        ax.set_yscale("log")
    fit_to_runs(ax, values, log)


def log_x(x: str, values) -> bool:
    """Updates, examples and seconds span decades between batch sizes: a log axis (from the first
    positive value; no 0 tick to collide with the decades)."""
    positive = np.asarray(values, dtype=float)
    return x != "epoch" and spans_decades(positive[positive > 0])


def set_log_x(ax, values) -> None:
    """A log x axis labelled at the decades, and at 2 and 5 times them when the values span less
    than two decades; never at every minor tick, whose labels collide."""
    ax.set_xscale("log")
    values = np.asarray(values, dtype=float)
    values = values[values > 0]
    if values.max() / values.min() < 100:
        ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def grid(n_panels: int, sharex: bool = True, sharey: bool = True):
    columns = min(n_panels, 4)
    rows = math.ceil(n_panels / columns)
    figure = Figure(figsize=(PANEL[0] * columns + 1.8, PANEL[1] * rows + 0.7), layout="constrained")
    axes = figure.subplots(rows, columns, sharex=sharex, sharey=sharey, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes[:n_panels]


def draw_seeds(ax, agg: pd.DataFrame, x: str, colour, name: str, style: str = "-", width: float = 1.8) -> None:
    """The seeds' average as a line and their range as a band."""
    xs = agg[x + "_mean"]
    ax.plot(xs, agg["mean"], color=colour, lw=width, ls=style, label=name, gid="mean")
    if (agg["n"] > 1).any():
        ax.fill_between(xs, agg["low"], agg["high"], color=colour, alpha=0.18, lw=0, gid="range")


def draw_diverged(ax, curve: pd.DataFrame, x: str, y: str, colour) -> None:
    """A diverged run: its finite part thin and dashed, an × at its last finite point."""
    curve = curve.sort_values("epoch")
    ax.plot(curve[x], curve[y], color=colour, lw=0.8, ls="--", alpha=0.7, gid="diverged-run")
    ax.plot(curve[x].iloc[-1:], curve[y].iloc[-1:], color=colour, **DIVERGED)


def diverged_handle(count: int) -> Line2D:
    return Line2D([], [], color="0.2", label=f"diverged ({count} run{'s' * (count != 1)}): last finite point",
                  **{k: v for k, v in DIVERGED.items() if k != "gid"})


def stalled_handle() -> Line2D:
    return Line2D([], [], color="0.2", ls=":", lw=1.8, label="dotted: did not learn")


def suptitle(figure: Figure, text: str) -> None:
    """A title over the whole figure, wrapped to its width so that a one-panel figure shows it all."""
    figure.suptitle(textwrap.fill(text, width=max(30, int(figure.get_figwidth() * 9))))


def seeds_note(runs: pd.DataFrame) -> str:
    seeds = runs.groupby(CONFIG).seed.nunique()
    low, high = int(seeds.min()), int(seeds.max())
    n = f"{low}" if low == high else f"{low}–{high}"
    return f"{n} seed{'s' if high != 1 else ''}" + (", band: range over seeds" if high > 1 else "")


def title(text: str) -> str:
    return text[:1].upper() + text[1:]


def curves_against(runs: pd.DataFrame, metric: str, x: str) -> pd.DataFrame:
    """Per (run, point): the run's columns, `metric` and `x`. Against updates, the scheduled
    evaluations (`*_by_update`) are used where the runs have them; each point is an `epoch` row.
    Only measured points: a training split evaluated every k-th epoch leaves the others out."""
    if x == names.STEPS and names.by_update(metric) in tracked(runs):
        points = summary.measured(runs, metric).rename(columns={"updates": x, "value": metric})
        points["epoch"] = points.groupby("run_id").cumcount()  # the point's rank: seeds share update counts
        return runs[summary.RUN].drop_duplicates("run_id").merge(points, on="run_id")
    return summary.per_epoch(runs, [metric] + ([x] if x != "epoch" else [])).dropna(subset=[metric])


@themed
def convergence(runs: pd.DataFrame, metric: str = COST, x: str = "epoch") -> Figure:
    """`metric` against epoch (or updates `steps`, examples seen `examples`, seconds `train_time`):
    one panel per batch size, one colour per lr."""
    curves = curves_against(runs, metric, x)
    outcome = summary.finals(runs).groupby(CONFIG).outcome.agg(lambda o: (o == summary.STALLED).all())
    batches, lrs = batch_sizes(curves.batch_size), sorted(curves.lr.unique())
    colour = ordered_colours(lrs)
    log = log_x(x, curves[x])
    if log:
        curves = curves[curves[x] > 0]
    agg = summary.spread(curves[~curves.diverged], CONFIG, x, metric)
    # a budget in updates gives m = 10 a hundredth of GD's epochs, squeezed into a sliver on a shared linear axis
    lengths = curves.groupby("batch_size")[x].max()
    figure, axes = grid(len(batches), sharex=bool(log or lengths.max() <= 2 * lengths.min()))
    for ax, batch_size in zip(axes, batches):
        for lr in lrs:
            config = agg[(agg.batch_size == batch_size) & (agg.lr == lr)]
            if len(config):
                stalled = outcome.get((batch_size, lr), False)
                draw_seeds(ax, config, x, colour[lr], f"η = {lr:g}", ":" if stalled else "-")
        for _, curve in curves[(curves.batch_size == batch_size) & curves.diverged].groupby("run_id"):
            draw_diverged(ax, curve, x, metric, colour[curve.lr.iloc[0]])
        ax.set_title(batch_label(batch_size))
        ax.set_xlabel(label(x))
        if log:
            set_log_x(ax, curves[x])
    for ax in axes:
        scale_y(ax, metric, curves[metric])
    for ax in axes[:: min(len(batches), 4)]:
        ax.set_ylabel(label(metric))
    handles = [Line2D([], [], color=colour[lr], lw=2, label=f"η = {lr:g}") for lr in lrs]
    n_diverged = curves[curves.diverged].run_id.nunique()
    handles += [diverged_handle(n_diverged)] if n_diverged else []
    handles += [stalled_handle()] if outcome.any() else []
    figure.legend(handles=handles, loc="outside right center", title="learning rate")
    if x == "epoch":
        for ax in axes:
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=5, integer=True))
    suptitle(figure, f"{title(label(metric))} vs {label(x)} ({seeds_note(curves)})")
    return figure


def edge_mark(edge: str) -> str:
    return f" [{EDGE_NOTE[edge]}]" if edge else ""


@themed
def tuned(runs: pd.DataFrame, metric: str = COST, found: summary.Study | None = None) -> Figure:
    """Each batch size at its own best η, against updates, examples seen and training time: the
    comparison of batch sizes that does not depend on one η suiting them all. `found`: the sweep's
    summary.study, computed here (with its default targets) when not given."""
    best = (found or summary.study(runs)).best
    best = best[best.lr.notna()]
    chosen = runs.merge(best[CONFIG], on=CONFIG)
    axes_x = [names.STEPS, names.EXAMPLES, names.TRAIN_TIME]
    batches = batch_sizes(best.batch_size)
    colour = ordered_colours(batches, summary.full_batch_size(runs))
    figure, axes = grid(3, sharex=False, sharey=True)
    handles, drawn = [], []
    for ax, x in zip(axes, axes_x):
        curves = curves_against(chosen, metric, x)
        log = log_x(x, curves[x])
        if log:
            curves = curves[curves[x] > 0]
            set_log_x(ax, curves[x])
        for b in best.itertuples():
            config = curves[curves.batch_size == b.batch_size]
            draw_seeds(ax, summary.spread(config, CONFIG, x, metric), x, colour[b.batch_size], "")
        drawn.append(curves[metric])
        ax.set_xlabel(label(x))
    scale_y(axes[0], metric, pd.concat(drawn))  # the axes share y: fit it to every panel at once
    for b in best.itertuples():
        handles.append(Line2D([], [], color=colour[b.batch_size], lw=2,
                              label=f"{batch_label(b.batch_size)}, η = {b.lr:g}{edge_mark(b.edge)}"))
    axes[0].set_ylabel(label(metric))
    figure.legend(handles=handles, loc="outside right center", title="batch size at its best η")
    what = "Full-batch GD and mini-batch SGD" if "full" in batches else "Each batch size"
    suptitle(figure, f"{what}, each at its own best learning rate ({seeds_note(chosen)})")
    return figure


def heatmap_panel(ax, means: pd.DataFrame, title_text: str, norm, cmap: str, batches: list, lrs: list, best: pd.DataFrame,
                  digits: str) -> None:
    grid_ = means["mean"].unstack("lr").reindex(index=batches, columns=lrs)
    text = np.full(grid_.shape, "", dtype=object)
    for i, batch_size in enumerate(batches):
        for j, lr in enumerate(lrs):
            if (batch_size, lr) not in means.index:
                continue
            row = means.loc[(batch_size, lr)]
            if row.diverged == row.runs:
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor="0.85", hatch="xx", edgecolor="0.5", lw=0, gid="diverged"))
                ax.text(j + 0.5, i + 0.5, "diverged", ha="center", va="center", fontsize=7, color="0.2")
            else:
                text[i, j] = (format(row["mean"], digits) + ("\nno learning" if row.stalled == row.runs else "")
                              + (f"\n({row.diverged:.0f}/{row.runs:.0f} div.)" if row.diverged else ""))
    sns.heatmap(grid_, ax=ax, annot=text, fmt="", cmap=cmap, norm=norm, linewidths=0.5, linecolor="white",
                annot_kws={"fontsize": 7}, xticklabels=[f"{lr:g}" for lr in lrs],
                yticklabels=[batch_label(b).removeprefix("m = ") for b in batches])
    for b in best[best.lr.notna()].itertuples():
        i, j = batches.index(b.batch_size), lrs.index(b.lr)
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="crimson" if b.edge else "black", lw=2.2, gid="best"))
    ax.set_xlabel(label("lr"))
    ax.set_ylabel(label("batch_size"))
    ax.set_title(title_text)
    ax.tick_params(axis="y", rotation=0)


def config_means(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per configuration: average of `column` over its non-diverged runs (AVERAGING), runs,
    diverged runs, runs that did not learn."""
    mean = summary.geometric_mean if column == "final_cost" else np.mean
    return table.groupby(CONFIG).agg(mean=(column, lambda v: mean(v.dropna()) if v.notna().any() else np.nan),
                                     runs=("run_id", "size"), diverged=("diverged", "sum"),
                                     stalled=("outcome", lambda o: (o == summary.STALLED).sum()))


@themed
def heatmaps(runs: pd.DataFrame, found: summary.Study | None = None) -> Figure:
    """Final training cost and final validation accuracy over lr × batch size; a box marks each
    batch size's best η (red when at the edge of the grid); a hatched cell is a configuration all
    of whose runs diverged."""
    found = found or summary.study(runs)
    table, best = found.table, found.best
    has_accuracy = f"final_{ACCURACY}" in table
    batches, lrs = batch_sizes(table.batch_size), sorted(table.lr.unique())
    width = 0.75 * len(lrs) + 2.2
    figure = Figure(figsize=(width * (2 if has_accuracy else 1) + 0.4, 0.5 * len(batches) + 1.9), layout="constrained")
    axes = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False).ravel()
    costs = config_means(table, "final_cost")
    finite = costs["mean"].dropna()
    norm = LogNorm(finite.min(), finite.max()) if spans_decades(finite) else None
    heatmap_panel(axes[0], costs, f"final {label(COST)}", norm, "viridis_r", batches, lrs, best, ".2g")
    if has_accuracy:
        heatmap_panel(axes[1], config_means(table, f"final_{ACCURACY}"), "final validation accuracy", None, "viridis",
                      batches, lrs, best, ".0%")
    flagged = best.edge.ne("").any()
    suptitle(figure, f"After {summary.run_length(runs, table)} ({seeds_note(table).split(',')[0]}); box: best η per m"
             + ("; red box: at the edge of the η grid" if flagged else ""))
    return figure


@themed
def final_vs_lr(runs: pd.DataFrame, found: summary.Study | None = None) -> Figure:
    """Final training cost against lr, one line per batch size, the seeds' range as bars, the
    untrained network's cost for reference; each batch size's best η is a star (hollow when at the
    edge of the grid); an × at the top marks each lr where a run of that batch size diverged."""
    found = found or summary.study(runs)
    table, best = found.table, found.best.set_index("batch_size")
    batches = batch_sizes(table.batch_size)
    colour = ordered_colours(batches, summary.full_batch_size(runs))
    figure = Figure(figsize=(7.6, 4.4), layout="constrained")
    ax = figure.subplots()
    for k, batch_size in enumerate(batches):
        rows = table[table.batch_size == batch_size]
        stable = rows[~rows.diverged].groupby("lr").final_cost.agg(["min", "max", summary.geometric_mean])
        if len(stable):
            mean = stable["geometric_mean"]
            ax.errorbar(stable.index, mean, yerr=[mean - stable["min"], stable["max"] - mean], color=colour[batch_size],
                        marker="o", ms=4, lw=1.6, capsize=3, label=batch_label(batch_size), gid="mean")
        b = best.loc[batch_size]
        if np.isfinite(b.lr):
            ax.plot([b.lr], [b.cost], marker="*", ms=14, color=colour[batch_size], mfc="none" if b.edge else colour[batch_size],
                    mew=1.5, ls="none", gid="best")
        for lr, group in rows[rows.diverged].groupby("lr"):
            ax.plot([lr], [0.97 - 0.045 * k], transform=ax.get_xaxis_transform(), color=colour[batch_size], clip_on=False,
                    **DIVERGED)
            ax.annotate(f"{len(group)}/{len(rows[rows.lr == lr])}", (lr, 0.97 - 0.045 * k), xycoords=ax.get_xaxis_transform(),
                        xytext=(6, -3), textcoords="offset points", fontsize=7, color=colour[batch_size])
    ax.axhline(summary.geometric_mean(table.initial_cost), color="0.4", ls=":", lw=1.2, label="untrained network (epoch 0)")
    ax.set_xscale("log")
    lrs = sorted(table.lr.unique())
    ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])  # the grid itself, which a log axis's decades would hide
    ax.minorticks_off()
    scale_y(ax, COST, pd.concat([table.final_cost, table.initial_cost]))
    ax.set_xlabel(label("lr"))
    ax.set_ylabel(f"final {label(COST)}")
    handles = ax.get_legend_handles_labels()[0]
    handles.append(Line2D([], [], marker="*", ms=12, color="0.2", ls="none", label="best η: fewest updates to the targets\n(hollow: at the grid's edge)"))
    n_diverged = int(table.diverged.sum())
    handles += [diverged_handle(n_diverged)] if n_diverged else []
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), title="batch size")
    suptitle(figure, f"Final {short_label(COST)} vs learning rate")
    marks = "; × k/n: k of n runs diverged" if table.diverged.any() else ""
    seeds = seeds_note(table).split(",")[0]
    ax.set_title(("1 seed: no range" if seeds == "1 seed" else f"geometric mean, bars: range over {seeds}") + marks, fontsize=8)
    return figure


def steps_panel(ax, reached: pd.DataFrame, target: summary.Target, best: pd.DataFrame, n: int | None,
                spread: uncertainty.Estimate | None = None) -> None:
    """One target's panel of steps_to_target; `spread`: B_crit with its interval, for the title."""
    row = summary.at_best(reached, best)
    row["x"] = [summary.batch_size_value(b, n) for b in row.batch_size]
    row = row[row.x.notna()]
    seeds = reached.merge(row[CONFIG + ["x"]], on=CONFIG)
    blue = COLOURMAP(0.3)
    hit = seeds[seeds.updates.notna()]
    ax.plot(hit.x, hit.updates, "o", color=blue, ms=4, alpha=0.6, gid="seed")
    ax.vlines(hit.x, hit.before, hit.updates, color=blue, lw=3, alpha=0.25, gid="resolution",
              label="a seed's measurements before and at the target")
    complete = row[row.updates.notna()]
    ax.plot(complete.x, complete.updates, "-", color=blue, lw=1.8, marker="s", ms=6, gid="mean",
            label="geometric mean over seeds")
    spans = [summary.reach_estimate(reached, r.batch_size, r.lr) for r in complete.itertuples()]
    if any(found.has_interval for found in spans):
        ax.errorbar(complete.x, complete.updates, yerr=[[max(u - f.low, 0) for u, f in zip(complete.updates, spans)],
                                                        [max(f.high - u, 0) for u, f in zip(complete.updates, spans)]],
                    fmt="none", ecolor=blue, elinewidth=1.2, capsize=4, gid="interval",
                    label=f"interval over seeds and resolution ({uncertainty.interval_name(max(f.seeds for f in spans))})")
    bound = complete[complete.bound]
    if len(bound):
        ax.plot(bound.x, bound.updates, "s", color=blue, mfc="white", ms=6, mew=1.5, ls="none", gid="bound",
                label="a seed met it at its first measurement:\nat most this many updates")
    missed = seeds[seeds.updates.isna()]
    if len(missed):
        ax.plot(missed.x, missed.last_update, "^", color="crimson", mfc="none", ms=8, mew=1.5, gid="censored",
                label="not reached by this update (censored)")
    for r in row.itertuples():
        edge = best.set_index("batch_size").edge.get(r.batch_size, "")
        ax.annotate(f"η={r.lr:g}" + ("!" if edge else ""), (r.x, r.updates if np.isfinite(r.updates) else r.censored),
                    xytext=(5, 5), textcoords="offset points", fontsize=8, color="crimson" if edge else "0.1")
    if len(complete):
        first = complete.iloc[0]
        xs = np.array([row.x.min(), row.x.max()])
        ax.plot(xs, first.updates * first.x / xs, color="0.4", ls="--", lw=1.2, label="perfect scaling (slope −1)", gid="ideal")
    fitted = complete[~complete.bound]  # a target met at the first measurement gives only an upper bound
    fit = summary.critical_batch(fitted.x, fitted.updates)
    if fit:
        b_crit, s_min = fit
        xs = np.geomspace(fitted.x.min(), fitted.x.max(), 50)  # over the batch sizes fitted, not beyond
        ax.plot(xs, s_min * (1 + b_crit / xs), color="darkorange", lw=1.2, gid="fit", label="fit S_min (1 + B_crit / m)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    fit_to_runs(ax, pd.concat([seeds.updates, missed.last_update]), log=True)
    ax.set_xticks(row.x, [f"full\n(n={n})" if b == "full" else f"{b}" for b in row.batch_size])
    ax.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1, 1.5, 2, 3, 5, 7)))  # labels within a decade too
    ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.minorticks_off()
    ax.set_xlabel(label("batch_size"))
    ax.set_ylabel("updates to reach the target")
    ax.set_title(target.describe() + (f"\nB_crit = {spread.brief()}" if spread else ""), fontsize=9)


@themed
def steps_to_target(runs: pd.DataFrame, found: summary.Study | None = None) -> Figure:
    """Updates needed to reach each target against batch size, each batch size at its best lr,
    log–log with the slope −1 line of perfect scaling (Shallue et al. 2018) and, where three or
    more batch sizes reach it, the fit of McCandlish et al.'s S_min(1 + B_crit/m). Each seed is a dot; a seed
    that never reached the target is a hollow triangle at its last measured update."""
    found = found or summary.study(runs)
    n = summary.full_batch_size(runs)
    figure, axes = grid(len(found.targets), sharex=False, sharey=False)
    for ax, target in zip(axes, found.targets):
        steps_panel(ax, found.reached[target], target, found.best, n, found.critical_batches[target])
    handles = {text: handle for ax in axes for handle, text in zip(*ax.get_legend_handles_labels())}
    figure.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=2, fontsize=8)
    flagged = " (η=…!: best η at the edge of its grid)" if found.best.edge.ne("").any() else ""
    suptitle(figure, f"Updates to reach a target vs batch size, each at its best η{flagged}")
    return figure


def save(figure: Figure, stem: Path | str) -> list[Path]:
    """Write `stem`.png (for screens and reports) and `stem`.pdf (vector, for papers)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    figure.savefig(paths[0], dpi=150)
    figure.savefig(paths[1])
    return paths


def accuracy_points(ax, frame: pd.DataFrame, x: str, y: str, colour, name: str, seeds: str, scale: float = 1.0) -> None:
    """One configuration per point along x: the mean over seeds, marked by its `verdict`
    (VERDICT_MARKERS), × where a seed diverged; each seed a thin line (`seeds`: a column of {seed: value}, times
    `scale`)."""
    for seed in sorted({seed for values in frame[seeds] for seed in values}):
        ax.plot(frame[x], [scale * values.get(seed, np.nan) for values in frame[seeds]], color=colour, lw=0.7, alpha=0.55,
                gid="seed")
    ax.plot(frame[x], frame[y], color=colour, lw=1.6, label=name, gid="mean")
    for verdict, points in frame.groupby("verdict"):
        ax.plot(points[x], points[y], "o", ls="none", gid=VERDICT_GIDS[verdict], **VERDICT_MARKERS[verdict](colour))
    diverged = frame[frame.diverged > 0]
    ax.plot(diverged[x], diverged[y].fillna(0), color=colour, **DIVERGED)


def batch_size_axis(ax, values) -> None:
    values = sorted(set(values))
    ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])  # the grid itself
    ax.minorticks_off()
    ax.set_xlabel(label("batch_size"))


def change_range(points: pd.DataFrame) -> tuple[float, float]:
    """(floor, top) in points for the seeds' changes (`changes`, a column of {seed: change}), their
    intervals (`low`–`high`) and the `tolerance` they are judged by: a break of tens of points, or
    the wide interval of a few seeds, would flatten the changes near 0, so the floor stops a little
    below −8 and an interval's top a little above +8, or beyond the largest tolerance; an interval
    reaching further runs off the edge."""
    each = 100 * np.array([value for values in points.changes for value in values.values()], dtype=float)
    each = each[np.isfinite(each)]
    low, high = 100 * points.low.min(), 100 * points.high.max()  # NaN without intervals: ignored by min and max
    widest = 100 * points.tolerance.max()
    floor = min(max(np.nanmin([each.min(initial=0), low]), -8), -widest)
    top = max(each.max(initial=0), min(np.nanmax([0, high]), 8), widest)
    return floor - 0.5, top + 0.5


def changes_panel(ax, frame: pd.DataFrame, x: str, colour, floor: float) -> None:
    """Changes in points (`change`, per seed `changes`) along x, each mean with its seed interval
    (`low`–`high`) as a bar; a mean beyond `floor` sits on it as ▼."""
    shown = frame.assign(change=100 * frame.change, low=100 * frame.low, high=100 * frame.high)
    inside = shown[shown.change >= floor]
    accuracy_points(ax, inside, x, "change", colour, "", "changes", scale=100)
    ax.errorbar(inside[x], inside.change, yerr=[inside.change - inside.low, inside.high - inside.change], fmt="none",
                ecolor=colour, elinewidth=1, capsize=2.5, gid="interval")
    below = shown[shown.change < floor]
    if len(below):  # an empty unclipped line would still claim the figure's corner in the layout
        ax.plot(below[x], [floor] * len(below), "v", color=colour, ms=7, clip_on=False, gid="below")


def change_axis(ax, floor: float, top: float) -> None:
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylim(floor - 0.3, top)


def rule_handles(colours: dict, name, tolerance) -> list:
    """The legend of a rule's figure: a handle per line, then the seeds, a broken point and the
    `tolerance` it is judged by."""
    return [*(Line2D([], [], color=colour, marker="o", lw=1.6, label=name(level)) for level, colour in colours.items()),
            Line2D([], [], color="0.2", lw=0.7, alpha=0.55, label="each seed"),
            Line2D([], [], color="0.2", marker="o", ls="none", label="holds: interval within"),
            Line2D([], [], color="0.2", marker="o", mfc="white", ls="none", label="breaks: interval beyond"),
            Line2D([], [], color="0.2", marker="o", fillstyle="left", mfcalt="white", ls="none",
                   label="the seeds cannot tell"),
            Line2D([], [], color="0.2", marker="o", ms=2.5, ls="none", label="not judged: under-trained"),
            Line2D([], [], color="0.2", marker="|", ms=9, ls="none", label=f"{scaling.LEVEL:.0%} interval over seeds"),
            tolerance]


def seeds_title(frame: pd.DataFrame) -> str:
    seeds = int(frame.seeds.max())
    return f"thick: mean of {seeds} seed{'s' if seeds != 1 else ''}, thin: each seed"


@themed
def linear_scaling(points: pd.DataFrame, n: int, epochs: int) -> Figure:
    """Final test accuracy against m along each line of constant η/m (scaling.linear_scaling), on
    `n` training inputs after `epochs` epochs: left as it is, right as the change from the line's
    smallest m, seed by seed, where the rule holds while no seed falls below the line's tolerance
    (scaling.tolerance), dashed in its colour."""
    figure = Figure(figsize=(11.5, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    ratios = sorted(points.ratio.unique())
    colour = ordered_colours(ratios)
    floor, top = change_range(points)
    for ratio in ratios:
        line = points[points.ratio == ratio]
        accuracy_points(left, line, "m", "test", colour[ratio], f"η/m = {ratio:.3g}", "by_seed")
        changes_panel(right, line, "m", colour[ratio], floor)
        right.hlines(-100 * line.tolerance.iloc[0], line.m.min(), line.m.max(), color=colour[ratio], ls="--", lw=1,
                     gid="tolerance")
    change_axis(right, floor, top)
    for ax in (left, right):
        batch_size_axis(ax, points.m)
    left.set_ylabel(f"final {short_label(TEST_ACCURACY)}")
    left.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
    right.set_ylabel("change in test accuracy from the\nline's smallest m (points)")
    tolerance = Line2D([], [], color="0.2", ls="--", lw=1, label="−tolerance: an interval below it breaks")
    handles = rule_handles(colour, lambda ratio: f"η/m = {ratio:.3g}", tolerance)
    n_diverged = int(points.diverged.sum())
    handles += [diverged_handle(n_diverged)] if n_diverged else []
    figure.legend(handles=handles, loc="outside right center", title="line of constant η/m")
    suptitle(figure, f"Linear scaling: test accuracy vs m with η ∝ m (n = {n:,}, {epochs} epochs; {seeds_title(points)})")
    return figure


@themed
def noise_scale(configs: pd.DataFrame, changes: pd.DataFrame, epochs: int) -> Figure:
    """Final test accuracy against the noise scale g = η·n/m, a column per batch size compared, a
    colour per training set size n: top as it is, bottom as the change from the largest n at the
    same m and g, seed by seed (scaling.size_changes); where equal g gives equal test accuracy,
    every seed stays in the grey band, the tolerance at each g (scaling.tolerance)."""
    batches = sorted(changes.m.unique())
    sizes = sorted(configs.train_size.unique())
    colour = ordered_colours(sizes)
    figure = Figure(figsize=(2.9 * len(batches) + 2.2, 6.4), layout="constrained")
    axes = figure.subplots(2, len(batches), sharex=True, sharey="row", squeeze=False)
    floor, top = change_range(changes)
    verdicts = changes.groupby(["m", "noise_scale"]).verdict.agg(scaling.overall)  # the largest n's point: its comparison
    for (above, below), m in zip(axes.T, batches):
        for n in sizes:
            line = configs[(configs.m == m) & (configs.train_size == n)].sort_values("noise_scale")
            line = line.assign(verdict=[verdicts.get((m, g), scaling.NOT_JUDGED) for g in line.noise_scale])
            accuracy_points(above, line, "noise_scale", "test", colour[n], f"n = {n:,}", "by_seed")
            changed = changes[(changes.m == m) & (changes.train_size == n)].sort_values("noise_scale")
            if len(changed):
                changes_panel(below, changed, "noise_scale", colour[n], floor)
        band = changes[changes.m == m].drop_duplicates("noise_scale").sort_values("noise_scale")
        below.fill_between(band.noise_scale, -100 * band.tolerance, 100 * band.tolerance, color="0.85", lw=0, zorder=0,
                           gid="equal")
        change_axis(below, floor, top)
        above.set_title(f"m = {m:g}")
        above.set_xscale("log")
        above.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        below.set_xlabel("noise scale g = η·n/m")
    axes[0, 0].set_ylabel(f"final {short_label(TEST_ACCURACY)}")
    axes[1, 0].set_ylabel(f"change from n = {max(sizes):,}\n(points of test accuracy)")
    equal_handle = Rectangle((0, 0), 1, 1, color="0.85", label="± tolerance: equal")
    handles = rule_handles(colour, lambda n: f"n = {n:,}", equal_handle)
    n_diverged = int(configs[configs.m.isin(batches)].diverged.sum())
    handles += [diverged_handle(n_diverged)] if n_diverged else []
    figure.legend(handles=handles, loc="outside right center", title="training set size")
    suptitle(figure, f"Equal noise scale: test accuracy vs g = η·n/m at the same m, for each training set size n "
                     f"({epochs} epochs; {seeds_title(configs)})")
    return figure


def noise_measured(found: summary.Study) -> list[summary.Target]:
    """The targets on whose way a run of a best configuration measured B_simple."""
    return [target for target in found.targets if len(found.noise_scales[target])]


@themed
def gradient_noise_scale(runs: pd.DataFrame, found: summary.Study | None = None) -> Figure:
    """The gradient noise scale B_simple against the fraction of the updates to each target (a
    panel per target where it was measured), a line per batch size at its best η: the geometric
    mean over seeds of each seed's median estimate in twelfths of the way (gradient_noise.along),
    the band spanning the seeds; dotted: the thirds the report reads B_simple in; dashed: B_crit
    for that target where it is measured, its interval shaded (summary.critical_batch_estimate)."""
    found = found or summary.study(runs)
    measured = noise_measured(found)
    figure, axes = grid(len(measured), sharex=True, sharey=True)
    batches = batch_sizes(pd.concat([found.noise_scales[t].batch_size for t in measured]))
    colour = ordered_colours(batches)
    for ax, target in zip(axes, measured):
        points = gradient_noise.along(found.noise_scales[target])
        for batch_size in batches:
            line = points[points.batch_size == batch_size].sort_values("fraction")
            ax.fill_between(line.fraction, line.lowest, line.highest, color=colour[batch_size], alpha=0.2, lw=0, gid="seeds")
            ax.plot(line.fraction, line.b_simple, color=colour[batch_size], lw=1.6, marker="o", ms=3, gid="mean",
                    label=batch_label(batch_size))
        for third in (1 / 3, 2 / 3):
            ax.axvline(third, color="0.6", ls=":", lw=1)
        b_crit = found.critical_batches[target]
        if b_crit:
            ax.axhline(b_crit.value, color="darkorange", ls="--", lw=1.2, gid="b-crit", label="B_crit (fit of the updates)")
            if b_crit.has_interval:
                ax.axhspan(b_crit.low, b_crit.high, color="darkorange", alpha=0.12, lw=0, gid="b-crit-interval",
                           label=f"B_crit's interval ({uncertainty.interval_name(b_crit.seeds)})")
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of the updates to the target")
        ax.set_ylabel("B_simple (inputs)")
        ax.set_title(target.describe())
    handles = {text: handle for ax in axes for handle, text in zip(*ax.get_legend_handles_labels())}
    figure.legend(handles.values(), handles.keys(), loc="outside right center", fontsize=8)
    seeds = seeds_note(found.table).split(",")[0]
    suptitle(figure, f"B_simple on the way to each target, each m at its best η ({seeds}: geometric mean; band: range)")
    return figure
