"""A sweep's report: a folder with `report.md`, `report.html` and the figures (PNG and PDF) that
fit the sweep, logged under `report/` on the sweep's parent run to show in the MLflow UI.

The report opens with the answer, computed from the runs: first one or two sentences answering
the study's question (which batch size is fastest per epoch, update, example and second; how η
changes convergence; a published result beside the runs'), then what diverged or did not learn,
the critical batch size where the sweep measures one, targets not reached within the budget and
the conclusions resting on that, the resolution of the measurements, every best η at the edge of
its grid, and a table of each batch size at its best η. Every headline number carries its
interval over seeds (uncertainty.py) in the digits it allows, or is said to be undetermined; the
answers are also logged as metrics and a tag of the parent run (answers.py). Then, where
the sweep varies m and η along their lines, whether linear scaling and equal noise scale hold
(scaling.py), each with the tolerance its test set allows. Then
the figures, a table per configuration, and the config last. By default it covers the latest
sweep of the experiment; mixing sweeps is asked for (`all_sweeps`) and then said. The HTML page
embeds its images, so it renders alone, in a browser or in MLflow's artifact view.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import names

from . import answers, conditions, embed, figures, gradient_noise, scaling, summary, uncertainty
from .loader import DEFAULT_URI, AnalysisError, client_for, find_experiment, latest_sweep, load_runs, tracked
from .summary import ACCURACY, CONFIG, COST, TEST_ACCURACY, batch_label, batch_order, batch_sizes
from .uncertainty import rounded, significant, span

QUESTION_KEYS = ["study.question", "question", names.DESCRIPTION]  # params, then tags, of the parent or a run
SWEPT_ASIDE = {"tracking.uri", "tracking.experiment"}
BEST_CAPTION = ("Each batch size at its best η. Brackets: the interval over seeds (bootstrap: 95% from 4 seeds on, the "
                "seeds' range with 2 or 3) from the measurements "
                "before each target to those at it; with one seed, just those two measurements. ≤: a seed met the "
                "target at its first measurement; >: a seed stopped short of it, at its budget.")
BEST_RULE = "the fewest updates to every target on its slowest seed"
FAR_APART = 0.1  # a gap in test accuracy the report names the learning rates of: a collapse, not a drift


@dataclass
class Section:
    name: str
    caption: str
    files: list[Path] = field(default_factory=list)
    table: pd.DataFrame | None = None  # the figure's numbers, shown under it


def question(runs: pd.DataFrame, parent, experiment) -> str | None:
    """The study's question: `study.question` (param), `question` or the description of the
    parent run, then of the runs, then of the experiment."""
    sources = [parent.data.params | parent.data.tags] if parent is not None else []
    if "study.question" in runs:
        sources.append({"study.question": runs["study.question"].dropna().iloc[0]})
    sources.append(experiment.tags)
    for source in sources:
        for key in QUESTION_KEYS:
            if source.get(key):
                return str(source[key])
    return None


def sorted_values(key: str, values) -> list:
    """Swept values in their natural order: batch sizes by size (`full` last), numbers as numbers."""
    if key == "batch_size":
        return sorted(values, key=batch_order)
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)


def config_tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(settings that vary, with their values in order; settings shared by every run)."""
    first = runs.columns.get_loc("parent_run_id") + 1
    params = runs.drop_duplicates("run_id").iloc[:, first:runs.columns.get_loc("metric")].drop(columns=list(SWEPT_ASIDE), errors="ignore")
    values = {name: params[name].dropna().unique() for name in params}
    varied = pd.DataFrame([(k, ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted_values(k, vals)))
                           for k, vals in values.items() if len(vals) > 1], columns=["setting", "values"])
    shared = pd.DataFrame([(k, str(v[0])) for k, v in values.items() if len(v) == 1], columns=["setting", "value"])
    budget = summary.budget_of(runs)
    if budget:  # a budget ends every run, whatever `epochs` says
        shared.loc[shared.setting == "epochs", "value"] += f" (not used: a budget of {budget} ends each run)"
    return varied, shared


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def number(value: float) -> str:
    """Two significant digits, without an exponent: 0.61, 5.1, 180."""
    return f"{value:.2g}" if value < 100 else f"{value:,.0f}"


def count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def with_range(values: pd.Series, mean, fmt) -> str:
    """The average of the seeds (AVERAGING) and, with more than one, their range."""
    values = values.dropna()
    if values.empty:
        return "—"
    text = fmt(mean(values))
    return text + (f" [{fmt(values.min())}–{fmt(values.max())}]" if len(values) > 1 else "")


def configuration_table(table: pd.DataFrame, best: pd.DataFrame, reached: dict) -> pd.DataFrame:
    """Per configuration, in numeric order: runs and their outcomes, final training cost,
    validation and test accuracy, updates to each target."""
    best_lrs = {b.batch_size: b.lr for b in best.itertuples()}
    cost = lambda v: f"{v:.3g}"  # noqa: E731
    rows = []
    for batch_size in batch_sizes(table.batch_size):
        for lr in sorted(table[table.batch_size == batch_size].lr.unique()):
            group = table[(table.batch_size == batch_size) & (table.lr == lr)]
            outcomes = group.outcome.value_counts()
            row = {"batch size": batch_label(batch_size), "η": f"{lr:g}" + (" (best)" if best_lrs.get(batch_size) == lr else ""),
                   "runs": len(group),
                   "outcome": ", ".join(f"{n} {o}" for o, n in outcomes.items()),
                   "final training cost": with_range(group.final_cost, summary.geometric_mean, cost)}
            for metric, heading in ((ACCURACY, "final validation accuracy"), (TEST_ACCURACY, "final test accuracy")):
                if f"final_{metric}" in group:
                    row[heading] = with_range(group[f"final_{metric}"], pd.Series.mean, percent)
            for target, runs in reached.items():
                hit = runs[runs.run_id.isin(group.run_id)].updates
                row[f"updates to {target.describe()}"] = (f"{with_range(hit, summary.geometric_mean, lambda v: f'{v:,.0f}')} "
                                                          f"({hit.notna().sum()}/{len(group)})")
            rows.append(row)
    return pd.DataFrame(rows)


def grid_text(grid: list) -> str:
    return f"{grid[0]:g}" if len(grid) == 1 else f"{grid[0]:g}–{grid[-1]:g}, {len(grid)} values"


def configs_text(table: pd.DataFrame, outcome: str) -> list[str]:
    """'m = 10 at η = 30, 100 (2 of 3 runs)' for each batch size with runs of this outcome; the
    count after an η when only some of its runs had it."""
    found = []
    for b, runs in sorted(table.groupby("batch_size"), key=lambda item: batch_order(item[0])):
        parts = []
        for lr, group in sorted(runs.groupby("lr")):
            k = int((group.outcome == outcome).sum())
            if k:
                parts.append(f"{lr:g}" + (f" ({k} of {len(group)} runs)" if k < len(group) else ""))
        if parts:
            found.append(f"{batch_label(b)} at η = {', '.join(parts)}")
    return found


def noise_text(found: summary.Study, target: summary.Target, b_crit: float) -> str:
    """B_simple in the last third of the way to the target, per batch size, against the B_crit
    measured from updates ('' unmeasured)."""
    estimates = found.noise_scales[target]
    if estimates.empty:
        return ""
    last = gradient_noise.per_batch_size(estimates)
    last = last[last.stage == gradient_noise.STAGES[-1]]
    each = "; ".join(f"{batch_label(r.batch_size)}: {number(r.b_simple)}"
                     + (f" [{number(r.low)}–{number(r.high)}]" if pd.notna(r.low) else " (one seed)")
                     for r in last.itertuples())
    return (f" The gradient noise scale B_simple in the last third of the way there, where McCandlish et al. compare it "
            f"with B_crit (each batch size at its best η; geometric mean over seeds [its interval over them, as "
            f"B_crit's: {uncertainty.interval_name(int(last.seeds.max()))}]): {each}; that is "
            f"{span(last.b_simple / b_crit, number)}× B_crit.")


def gradient_noise_table(found: summary.Study) -> pd.DataFrame:
    """B_simple per target, batch size and third of the way to the target (gradient_noise)."""
    rows = []
    for target in figures.noise_measured(found):
        table = gradient_noise.per_batch_size(found.noise_scales[target])
        for batch_size, stages in table.groupby("batch_size", sort=False):
            row = {"target": target.describe(), "batch size": batch_label(batch_size), "seeds": stages.seeds.max()}
            row.update({f"B_simple, {r.stage}": number(r.b_simple) + (f" [{number(r.low)}–{number(r.high)}]"
                                                                       if pd.notna(r.low) else "")
                        for r in stages.itertuples()})
            rows.append(row)
    return pd.DataFrame(rows)


def lr_text(value: float) -> str:
    return f"{value:g}"


def reach_text(arm: summary.Arm) -> str:
    """What an arm took to its target, in updates, examples, epochs and seconds: each value with
    its interval [over seeds, from the measurements before the target to those at it; with one
    seed, those two measurements]; upper bounds (≤) where a seed met it at its first measurement;
    lower bounds (>) where a seed did not reach it within the budget."""
    units = {"updates": "updates", names.EXAMPLES: "examples", "epochs": "epochs", names.TRAIN_TIME: "s"}
    if arm.censored:
        return (f"not reached by {arm.seeds - arm.reached}/{arm.seeds} seeds: > "
                + ", ".join(f"{significant(arm.budget[column])} {unit}" for column, unit in units.items()))
    if arm.bound:
        return ("≤ " + ", ".join(f"{significant(arm.measures[column].value)} {unit}" for column, unit in units.items())
                + " (met at the first measurement)")
    texts, needed = [], []
    for column, unit in units.items():
        found = arm.measures[column]
        value, low, high = rounded(found.value, found.low, found.high)
        if found.answers() or found.seeds == 1:
            texts.append(f"{value} [{low}–{high}] {unit}")
        else:
            texts.append(f"[{low}–{high}] {unit}")
            needed.append(found.seeds_needed())
    wide = (f": {'all' if len(needed) == len(units) else 'some'} too wide to give a value"
            + (f" (about {max(needed)} seeds would)" if all(needed) else "") if needed else "")
    return ", ".join(texts) + wide + (" (1 seed)" if arm.seeds == 1 else "")


def interval_of(arm: summary.Arm, column: str) -> str:
    """'1,100–1,500 updates', or '> 1,200 updates (budget)' for a censored arm."""
    unit = summary.MEASURES[column] + "s"
    if arm.censored:
        return f"not reached within {significant(arm.budget[column])} {unit}"
    low, high = rounded(arm.measures[column].value, arm.low(column), arm.high(column))[1:]
    return f"{low}–{high} {unit}"


def separated(faster: summary.Arm, slower: summary.Arm, column: str) -> bool:
    """Whether `faster` is faster than `slower` beyond doubt: its interval (over seeds and
    resolution) ends where the other's starts or below (a run reaches a target after the
    measurement before it: the intervals are open at their low end), or where the other's budget
    ends when censored."""
    return bool(faster.high(column) <= slower.low(column))


def ranking(arms: list[summary.Arm], column: str) -> tuple[summary.Arm, list[summary.Arm]]:
    """The arm that needs the fewest `column` to the target (of those that reached it), and the
    others that cannot be separated from it."""
    top = min((arm for arm in arms if not arm.censored), key=lambda arm: arm.measures[column].value)
    return top, [arm for arm in arms if arm is not top and not separated(top, arm, column)]


def order_of(arms: list[summary.Arm], columns: list[str]) -> list:
    """What comparison_text says for each column, without the counts: batch sizes only."""
    order = []
    for column in columns:
        top, close = ranking(arms, column)
        order.append((top.batch_size, [arm.batch_size for arm in close]))
    return order


def comparison_text(arms: list[summary.Arm], column: str) -> str:
    """Which batch size needs the fewest `column` to the target (one of `arms` reached it), and
    whether the others can be told apart from it; where one that did not reach it cannot, its
    budget decides, not the data."""
    per = {"updates": "per update", "examples": "per example", "epochs": "per epoch", names.TRAIN_TIME: "per second"}[column]
    top, close = ranking(arms, column)
    others = [arm for arm in arms if arm is not top]
    name = batch_label(top.batch_size)
    if not close:
        against = "; ".join(f"{batch_label(arm.batch_size)} {interval_of(arm, column)}" for arm in others)
        return f"{per}, {name} is fastest ({interval_of(top, column)}; {against})"
    censored = [arm for arm in close if arm.censored]
    text = (f"{per}, {name} ({interval_of(top, column)}) cannot be separated from "
            + ", ".join(f"{batch_label(arm.batch_size)} ({interval_of(arm, column)})" for arm in close))
    if censored:
        text += (f" — {', '.join(batch_label(arm.batch_size) for arm in censored)} stopped short of the target within "
                 "a budget below the others' counts: the budget, not the data, leaves this open")
    return text


def seeds_range(table: pd.DataFrame) -> str:
    seeds = table.groupby(CONFIG).seed.nunique()
    return f"{seeds.min()}" + (f"–{seeds.max()}" if seeds.max() > seeds.min() else "") + f" seed{'s' if seeds.max() > 1 else ''}"


SEEDS_PART = 10.0  # seeds whose final costs lie this factor apart at one η no longer agree on what it does
OUTPUTS_OFF_COST = 0.5  # C = 1/(2n) Σ‖y − a‖² with one-hot y and every output a = 0: ‖y‖² = 1 per input


def sigmoid_outputs_with_quadratic_cost(runs: pd.DataFrame) -> bool:
    """Whether every run has sigmoid output units and the quadratic cost, where a cost of
    OUTPUTS_OFF_COST means saturated outputs (False where the runs do not say)."""
    return all(key in runs and set(runs[key].dropna().astype(str)) == {value}
               for key, value in (("model.output", "sigmoid"), ("model.cost", "quadratic")))


def lr_shape_text(table: pd.DataFrame, best: pd.Series, saturable: bool) -> str:
    """How η changes convergence at one batch size: where the final cost falls with η, the lowest
    final cost, where it rises again, from which η above it the seeds' final costs part by
    SEEDS_PART or more, where runs stalled (too small an η, or too large a one: with
    `saturable` outputs (sigmoid_outputs_with_quadratic_cost) a cost of OUTPUTS_OFF_COST is said to
    be saturated outputs) and from which η runs diverged."""
    by_lr = table.groupby("lr").agg(cost=("final_cost", lambda v: summary.geometric_mean(v.dropna()) if v.notna().any() else np.nan),
                                    learned=("outcome", lambda o: (o == summary.LEARNED_OUTCOME).all()),
                                    stalled=("outcome", lambda o: (o == summary.STALLED).any()),
                                    diverged=("outcome", lambda o: (o == summary.DIVERGED).sum()), runs=("outcome", "size"),
                                    lowest=("final_cost", "min"), highest=("final_cost", "max"))
    learned = by_lr[by_lr.learned]
    parts = []
    if len(learned):
        lowest = learned.cost.idxmin()
        first, last = learned.index.min(), learned.index.max()
        parts.append(f"the final training cost falls from {learned.cost[first]:.2g} at η = {first:g} to "
                     f"{learned.cost[lowest]:.2g} at η = {lowest:g}" if lowest > first else
                     f"the lowest final training cost is {learned.cost[lowest]:.2g} at η = {lowest:g}")
        if lowest < last:
            parts.append(f"rises again to {learned.cost[last]:.2g} at η = {last:g}")
        parting = learned[(learned.index > lowest) & (learned.highest >= SEEDS_PART * learned.lowest)]
        if len(parting):
            at = parting.index.min()
            parts.append(f"from η = {at:g} the seeds part (final training cost {learned.lowest[at]:.2g} to "
                         f"{learned.highest[at]:.2g}): the edge of stability, where a run's fate depends on its seed")
        slow = by_lr[by_lr.stalled & (by_lr.index < first)]
        if len(slow):
            parts.append(f"η ≤ {slow.index.max():g} is too small to learn in these epochs")
        saturated = by_lr[by_lr.stalled & (by_lr.index > last)]
        if len(saturated):
            stuck = summary.geometric_mean(table[table.lr.isin(saturated.index) & table.final_cost.notna()].final_cost)
            why = (f" ≈ {OUTPUTS_OFF_COST:g}, the cost of every output near 0: the output units saturate and their "
                   "gradient vanishes" if saturable and abs(stuck - OUTPUTS_OFF_COST) <= 0.01 else f" ≈ {stuck:.2g}")
            parts.append(f"from η = {saturated.index.min():g} runs stall (final training cost{why})")
    else:
        parts.append("no η learned on every seed")
    unstable = by_lr[by_lr.diverged > 0]
    if len(unstable):
        low = unstable.index.min()
        parts.append(f"stability ends at η = {low:g}, where {int(unstable.diverged[low])} of {int(unstable.runs[low])} "
                     "runs diverged" + (f", as every run from η = {unstable[unstable.diverged == unstable.runs].index.min():g}"
                                       if (unstable.diverged == unstable.runs).any() else ""))
    grid = sorted(table.lr.unique())
    return f"Over η = {grid_text(grid)} at {batch_label(best.batch_size)}: " + "; ".join(parts) + "."


def reference_text(runs: pd.DataFrame, table: pd.DataFrame, best: pd.DataFrame) -> str:
    """The runs' final test accuracy beside a published one (study.reference.*), at its η where
    the sweep ran that η, else at each batch size's best η; '' without a reference."""
    stated = {key: summary.stated(runs, f"reference.{key}") for key in ("test_accuracy", "lr")}
    if stated["test_accuracy"] is None or f"final_{TEST_ACCURACY}" not in table:
        return ""
    source = runs["study.reference.source"].dropna().iloc[0] if "study.reference.source" in runs else ""
    published = f"{100 * stated['test_accuracy']:g}%" + (f" ({source})" if source else "")
    texts = []
    for b in best.itertuples():
        lr = stated["lr"] if stated["lr"] is not None and (table.lr == stated["lr"]).any() else b.lr
        seeds = table[(table.batch_size == b.batch_size) & (table.lr == lr)].set_index("seed")[f"final_{TEST_ACCURACY}"]
        if pd.isna(lr) or seeds.isna().all():
            continue
        found = uncertainty.over_seeds(sorted(seeds.index), lambda picked: 100 * seeds[picked].mean())
        where = ("inside" if found.has_interval and found.low <= 100 * stated["test_accuracy"] <= found.high else
                 f"{abs(100 * stated['test_accuracy'] - found.value):.1f} points {'above' if found.value < 100 * stated['test_accuracy'] else 'below'}")
        texts.append(f"at {batch_label(b.batch_size)}, η = {lr:g} the final test accuracy, in %, is {found.text()}; the published "
                     f"{published} {'lying ' + where + ' its interval' if where == 'inside' else 'is ' + where + ' its value'}")
    return ("Against the published result: " + "; ".join(texts) + ".") if texts else ""


def headline(runs: pd.DataFrame, found: summary.Study) -> list[str]:
    """The answer to the study's question in one or two sentences, from what the runs contain:
    with several batch sizes, which reaches the first target fastest per epoch, update, example
    and second and, where measured, the critical batch size, then whether the order is the same
    for the other targets; with one batch size and several η,
    how η changes convergence; a published result beside the runs' where the study states one."""
    table, best = found.table, found.best
    target = found.targets[0]
    sentences = []
    if best.batch_size.nunique() > 1:
        arms = found.arms[target]
        order = ["epochs", "updates", "examples", names.TRAIN_TIME]
        if all(arm.censored for arm in arms):
            learned = best[best.lr.notna()]
            lowest = (f"; the lowest final training cost is {batch_label(learned.loc[learned.cost.idxmin()].batch_size)}'s "
                      f"({learned.cost.min():.3g})" if len(learned) else "")
            sentences.append(f"No batch size reached {target.describe()} at its best η within its budget "
                             f"({seeds_range(table)}){lowest}.")
        else:
            over = ("1 seed: intervals span only the measurements around the target, not the spread between seeds, "
                    "so what is fastest is this seed's" if table.seed.nunique() == 1 else
                    f"{seeds_range(table)}; intervals over seeds and the measurements around the target")
            sentences.append(f"To reach {target.describe()}, each batch size at its best η ({over}): "
                             + "; ".join(comparison_text(arms, column) for column in order) + ".")
            fit = found.critical_batches[target]
            if fit is not None:
                sentences.append(f"The critical batch size for it is B_crit = {fit.text()}.")
            for other in found.targets[1:]:
                others = found.arms[other]
                if all(arm.censored for arm in others):
                    sentences.append(f"No batch size reached {other.describe()} within its budget.")
                elif order_of(others, order) == order_of(arms, order):
                    sentences.append(f"To {other.describe()} the order is the same, told apart the same way.")
                else:
                    sentences.append(f"To reach {other.describe()}: "
                                     + "; ".join(comparison_text(others, column) for column in order) + ".")
    elif table.lr.nunique() > 1:
        sentences.append(lr_shape_text(table, best.iloc[0], sigmoid_outputs_with_quadratic_cost(runs)))
        b = best.iloc[0]
        if pd.notna(b.lr):
            arm = found.arms[target][0]
            chosen = found.best_lrs[b.batch_size]
            rule = (BEST_RULE if b.by == "updates to target" else
                    "the lowest final training cost, as no η got every seed to the targets")
            sentences.append(f"By {rule}, the best η is {chosen.text(lr_text)}; to {target.describe()} it takes "
                             f"{reach_text(arm)}.")
    else:
        b = best.iloc[0]
        sentences.append(f"At {batch_label(b.batch_size)}, η = {table.lr.iloc[0]:g} ({seeds_range(table)}): final training cost "
                         f"{with_range(table.final_cost, summary.geometric_mean, lambda v: f'{v:.3g}')}.")
    reference = reference_text(runs, table, best)
    return sentences + ([reference] if reference else [])


def best_table(found: summary.Study) -> pd.DataFrame:
    """Each batch size at its best η: the η with its interval over seeds, the final cost and
    accuracies, and per target the updates, examples, epochs and seconds to reach it."""
    best = found.best
    reach = {target: {arm.batch_size: arm for arm in arms} for target, arms in found.arms.items()}
    rows = []
    for b in best.itertuples():
        row = {"batch size": batch_label(b.batch_size)}
        if pd.isna(b.lr):
            row["best η"] = f"none learned on every seed (tried {grid_text(b.grid)})"
        else:
            estimate = found.best_lrs[b.batch_size]
            step = max((high / low for low, high in zip(b.grid, b.grid[1:])), default=1.0)
            row["best η"] = (estimate.text(lr_text, wide=max(uncertainty.WIDE, 1.01 * step))
                             + (f" ⚠ {figures.EDGE_NOTE[b.edge]}" if b.edge else "")
                             + ("; by final cost" if b.by != "updates to target" else ""))
        row["seeds"] = b.seeds
        row["final training cost"] = f"{b.cost:.3g}" if pd.notna(b.cost) else "—"
        for key, heading in (("accuracy", "final validation accuracy"), ("test_accuracy", "final test accuracy")):
            if pd.notna(getattr(b, key)):
                row[heading] = percent(getattr(b, key))
        for target, arms in reach.items():
            row[f"to {target.describe()}"] = reach_text(arms[b.batch_size])
        rows.append(row)
    return pd.DataFrame(rows)


def resolution_text(found: summary.Study) -> str:
    """How exactly the updates to each target are known: per batch size at its best η, how far
    apart the measurement before the target and the one at it are (geometric mean over seeds)."""
    parts = []
    for target, runs in found.reached.items():
        gaps = []
        for arm in found.arms[target]:
            if arm.censored or arm.bound:
                continue
            seeds = runs[(runs.batch_size == arm.batch_size) & (runs.lr == arm.lr)]
            gap = summary.geometric_mean(seeds.updates - seeds.before)
            ratio = summary.geometric_mean(seeds.updates / seeds.before) - 1
            gaps.append(f"{batch_label(arm.batch_size)}: {significant(gap)} updates apart (+{ratio:.0%})")
        if gaps:
            parts.append(f"{target.describe()}: " + ", ".join(gaps))
    if not parts:
        return ""
    return ("Resolution: a run reached a target between its last measurement before it and its first at it, which are "
            "this many updates apart at each batch size's best η (geometric mean over seeds) — "
            + "; ".join(parts) + ". Intervals span these gaps; batch sizes whose intervals overlap are not told apart.")


def censoring_text(found: summary.Study) -> list[str]:
    """Batch sizes that did not reach a target within their budget, and the conclusions that rest
    on that budget rather than on the data: B_crit fitted only below them."""
    lines = []
    for target, runs in found.reached.items():
        arms = found.arms[target]
        short = [arm for arm in arms if arm.censored]
        if not short:
            continue
        said = "; ".join(f"{batch_label(arm.batch_size)}" + (f" at η = {arm.lr:g}: {arm.reached} of {arm.seeds} seeds reached it,"
                                                             if pd.notna(arm.lr) else ": no η learned on every seed;")
                         + f" {'the rest' if arm.reached else 'they'} stopped at {significant(arm.budget['updates'])} updates "
                         f"({significant(arm.budget[names.EXAMPLES])} examples)" for arm in short)
        line = f"Did not reach {target.describe()} within the budget: {said}."
        reached = [summary.batch_size_value(arm.batch_size, found.n) for arm in arms if not arm.censored]
        if len(reached) >= 3 and any(summary.batch_size_value(arm.batch_size, found.n) > max(reached) for arm in short):
            line += (" B_crit and the slope of the updates against m above m = "
                     f"{max(reached):g} rest on these budgets, not on the data: the runs there only show they need more.")
        lines.append(line)
    return lines


def answer(found: summary.Study) -> list[str]:
    """The findings beyond the headline, one bullet each, computed from the runs."""
    table, best, reached = found.table, found.best, found.reached
    lines = []
    flagged = best[best.edge.ne("")]
    if len(flagged):
        lines.append("⚠ " + "; ".join(f"{batch_label(b.batch_size)}: {figures.EDGE_NOTE[b.edge]} ({grid_text(b.grid)})"
                                     for b in flagged.itertuples()) + ": the grid does not bracket the best η.")
    learned = best[best.lr.notna()]
    if len(learned) > 1:
        for target, runs in reached.items():
            at_best = summary.at_best(runs, best)
            fitted = at_best[~at_best.bound]
            fit = found.critical_batches[target]
            measured = fitted.updates.notna().sum()
            bound = at_best[at_best.bound]
            left_out = (f" Left out: {', '.join(batch_label(b) for b in bound.batch_size)}: a seed met it at its first "
                        "measurement, so the updates there are only an upper bound." if len(bound) else "")
            if fit:
                lines.append(f"Critical batch size for {target.describe()}: B_crit = {fit.text()} (fit of S_min(1 + B_crit/m) "
                             f"to the updates of {measured} batch sizes, each seed's resample refitted): below it, doubling m "
                             "about halves the updates needed; above it, it saves few." + left_out
                             + noise_text(found, target, fit.value))
            elif measured >= 3:
                lines.append(f"No critical batch size measured for {target.describe()}: the updates needed do not bend "
                             "between the smallest and the largest batch size that reached it." + left_out)
            elif len(bound):
                lines.append(f"No critical batch size measured for {target.describe()}: fewer than 3 batch sizes reached "
                             "it after their first measurement." + left_out)
    lines += censoring_text(found)
    resolution = resolution_text(found)
    lines += [resolution] if resolution else []
    for outcome, what in ((summary.DIVERGED, "Diverged"), (summary.STALLED, "Did not learn")):
        found = configs_text(table, outcome)
        if found:
            lines.append(f"{what}: {'; '.join(found)}." + (f" (A run did not learn when it got {summary.LEARNED_RULE}.)"
                                                           if outcome == summary.STALLED else ""))
    for target, runs in reached.items():
        cheats = runs[runs.run_id.isin(table[table.outcome == summary.STALLED].run_id) & runs.updates.notna()]
        if len(cheats):
            lines.append(f"⚠ Target {target.describe()} is reached by {count(len(cheats), 'run')} that did not learn: "
                         "it does not separate learning from chance.")
    return lines


def accuracy_change(value: float) -> str:
    return f"{100 * value:+.1f} points".replace("-", "−")


def sizes_text(sizes) -> str:
    sizes = [f"{n:,}" for n in sizes]
    return ", ".join(sizes[:-1]) + f" and {sizes[-1]}" if len(sizes) > 1 else sizes[0]


def seeds_text(changes: dict) -> str:
    return " and ".join(accuracy_change(changes[seed]).removesuffix(" points") for seed in sorted(changes))


def tolerance_text(tolerances: pd.Series, accuracies: pd.Series, test_sizes: pd.Series) -> str:
    """How far a seed's test accuracy may move before a rule calls it a change, and why: the
    `tolerances` of comparisons (scaling.tolerance) whose references reach test accuracies
    `accuracies` on `test_sizes` test inputs."""
    amount = span(100 * tolerances, lambda v: f"{v:.1f}") + " points"
    if test_sizes.isna().all():
        return f"{amount}, fixed, as the runs record no test set size"
    return (f"{amount}: {scaling.STANDARD_ERRORS} standard errors of a difference of two test accuracies near "
            f"{span(accuracies, percent)} on {span(test_sizes.dropna(), lambda v: f'{v:,.0f}')} test inputs, "
            f"and at least {100 * scaling.MIN_EQUAL:g} point")


def interval_text(change: float, low: float, high: float) -> str:
    """'−0.4 points [−1.2, +0.3]': a mean change and its seed interval (scaling.seed_interval)."""
    text = accuracy_change(change)
    if pd.isna(low):
        return text
    return f"{text} [{accuracy_change(low).removesuffix(' points')}, {accuracy_change(high).removesuffix(' points')}]"


def needed_text(seeds: float) -> str:
    """How many seeds might decide an undecided verdict (scaling.seeds_needed)."""
    return (f"more than {scaling.MAX_SEEDS} seeds would be needed" if seeds == float("inf")
            else f"about {seeds:.0f} seeds might decide")


def verdict_rule(seeds: int, two_sided: bool, reference: str) -> str:
    """How a verdict is reached, for the answer: against `reference`, below the tolerance only
    unless `two_sided`."""
    inside, outside = ("within ±", "entirely outside it") if two_sided else ("above −", "entirely below it")
    return (f"a rule holds where the {scaling.LEVEL:.0%} interval over the {seeds} seeds of each seed's change from its own "
            f"at {reference} lies {inside}tolerance, breaks where it lies {outside}, and otherwise the seeds cannot tell; "
            "tolerance")


def break_text(line) -> str:
    """Where a line (a row of scaling.lines) first breaks: 'η = 8: final test accuracy 90.0%,
    −5.0 points [−6.1, −3.9]; per seed −5.0 and −5.0', or that a seed diverged."""
    if line.break_diverged:
        return f"η = {line.break_lr:g}: a seed diverged"
    return (f"η = {line.break_lr:g}: final test accuracy {percent(line.break_test)}, "
            f"{interval_text(line.break_change, line.break_low, line.break_high)}; per seed {seeds_text(line.break_changes)}")


def linear_scaling_text(points: pd.DataFrame, n: int, epochs: int, best: float) -> str:
    """The answer for linear scaling: along the line from the best η at the smallest m (by
    validation accuracy), where the seeds show the test accuracy kept, where they show it broken
    and where they cannot tell; then over every line. `best`: the highest mean test accuracy on
    the training set, which a line's reference must be within the tolerance of to be judged."""
    found = scaling.lines(points)
    starts = found[found.m == found.m.min()]
    base = starts.loc[starts.validation.idxmax()]
    kept = tolerance_text(pd.Series([base.tolerance]), pd.Series([base.test]), pd.Series([base.test_size]))
    head = (f"**Linear scaling** (η ∝ m, Goyal et al. 2017; n = {n:,}, {epochs} epochs): from the best η at m = {base.m:g} "
            f"by validation accuracy (η = {base.lr:g}, η/m = {base.ratio:.3g}; final test accuracy {percent(base.test)}), "
            "multiplying η by the factor that multiplies m")
    line = points[points.ratio == base.ratio].iloc[1:]
    if not base.judged:
        margin = scaling.tolerance_at(best, base.test_size)
        head += (f" is not judged: its smallest m is under-trained (more than the tolerance, "
                 f"{tolerance_text(pd.Series([margin]), pd.Series([best]), pd.Series([base.test_size]))}, below the best "
                 f"configuration's {percent(best)}).")
    elif base.seeds < 2:
        inside = line[line.within]
        head += (f" cannot be judged from one seed, which gives no interval. Single-seed observation, not a verdict: "
                 f"within the tolerance below m = {base.m:g} ({kept}) at "
                 + (f"m = {', '.join(f'{m:g}' for m in inside.m)}" if len(inside) else "no larger m")
                 + f" of {', '.join(f'{m:g}' for m in line.m)}.")
    else:
        parts = [f"keeps the final test accuracy up to m = {base.holds_to:g}" if base.holds_to > base.m
                 else f"is not shown to keep the final test accuracy at any m above {base.m:g}"]
        if base.holds_at and base.holds_at[-1] > base.holds_to:
            parts.append(f"holds also at m = {', '.join(f'{m:g}' for m in base.holds_at if m > base.holds_to)}")
        if base.undecided_at:
            parts.append(f"the seeds cannot tell at m = {', '.join(f'{m:g}' for m in base.undecided_at)} "
                         f"({needed_text(base.seeds_needed)})")
        if pd.notna(base.breaks):
            parts.append(f"breaks at m = {base.breaks:g} ({break_text(base)})")
        head += f" {'; '.join(parts)} ({verdict_rule(base.seeds, False, f'm = {base.m:g}')} {kept})."
    return f"{head} {lines_overall(found, best)}"


def lines_overall(found: pd.DataFrame, best: float) -> str:
    """The verdicts over every line of constant η/m (scaling.lines)."""
    judged = found[found.judged]
    text = (f"Over all {count(len(found), 'line')} of constant η/m crossing {scaling.MIN_LINE} or more batch sizes "
            f"(starting at m = {span(found.m, lambda v: f'{v:g}')}):")
    if len(found) > len(judged):
        ratios = ", ".join(f"{r:.3g}" for r in found.ratio[~found.judged])
        text += (f" {len(found) - len(judged)} not judged, their smallest m under-trained (more than the tolerance below "
                 f"the best configuration's {percent(best)}; η/m = {ratios});")
    if judged.empty:
        return text + " none is left to judge."
    if judged.seeds.max() < 2:
        return text + f" the {count(len(judged), 'line')} with a trained smallest m cannot be judged from one seed."
    broken, undecided = judged[judged.breaks.notna()], judged[judged.undecided_at.map(len) > 0]
    whole = judged[judged.holds_to == judged.largest_m]
    text += f" of the {len(judged)} judged, {len(whole)} hold to their largest m"
    if len(broken):
        text += (f", {len(broken)} break, first at m = {span(broken.breaks, lambda v: f'{v:g}')} with η = "
                 f"{span(broken.break_lr, lambda v: f'{v:g}')}")
    if len(undecided):
        text += (f", {len(undecided)} have batch sizes where {judged.seeds.min()} seeds cannot tell "
                 f"({needed_text(undecided.seeds_needed.max())} at the hardest)")
    return text + f" (each line's tolerance: {span((100 * judged.tolerance).round(1), lambda v: f'{v:.1f}')} points)."


def noise_scale_text(configs: pd.DataFrame, comparisons: pd.DataFrame, epochs: int) -> str:
    """The answer for equal noise scale: in how many comparisons across training set sizes (same
    m, same g) the seeds show equal test accuracy, at which g, in how many they show it parted and
    in how many they cannot tell; how far apart the parted ones are, which size is ahead, and the
    η of the far-apart ones; the best g of each size."""
    sizes = sorted(configs.train_size.unique())
    judged = comparisons[comparisons.judged]
    equal, apart = judged[judged.verdict == scaling.HOLDS], judged[judged.verdict == scaling.BREAKS]
    undecided = judged[judged.verdict == scaling.UNDECIDED]
    stated = judged if len(judged) else comparisons
    within = tolerance_text(stated.tolerance, stated.reference.map(lambda c: c.test),
                            stated.reference.map(lambda c: c.test_size))
    line = (f"**Equal noise scale** (g = η·n/m, Smith & Le 2018; {epochs} epochs): at the same m and the same g, "
            f"training sets of n = {sizes_text(sizes)} inputs")
    if judged.empty:
        line += " are not compared:"
    elif judged.seeds.max() < 2:
        observed = sum(changes_within(configs, judged))
        line += (f" cannot be judged from one seed, which gives no interval. Single-seed observation, not a verdict: "
                 f"within the tolerance of each other ({within}) in {observed} of the {len(judged)} comparisons.")
    else:
        held = (f"in {len(equal)} of the {len(judged)} judged comparisons, at g = {span(equal.noise_scale, number)} (the largest: "
                f"g = {number(equal.iloc[-1].noise_scale)} at m = {equal.iloc[-1].m:g})" if len(equal)
                else f"in none of the {len(judged)} judged comparisons")
        line += (f" reach equal final test accuracy {held}; they part in {len(apart)}"
                 + (f", and {judged.seeds.min()} seeds cannot tell in {len(undecided)} "
                    f"({needed_text(undecided.seeds_needed.max())} at the hardest)" if len(undecided) else "")
                 + f" ({verdict_rule(judged.seeds.min(), True, f'n = {max(sizes):,}')} {within}).")
    if len(comparisons) > len(judged):
        line += (f" {count(len(comparisons) - len(judged), 'comparison')} not judged, every configuration in each "
                 "under-trained (more than the tolerance below the best configuration on its training set).")
    lines = [line]
    if len(apart):
        low, mid, high = 100 * apart.gap.quantile([0.25, 0.5, 0.75])
        ahead = int((apart.highest.map(lambda c: c.train_size) == max(sizes)).sum())
        widest = apart.loc[apart.gap.idxmax()]
        far = apart[apart.gap > FAR_APART]
        lines.append(f"Where they part ({count(len(apart), 'comparison')}), the mean test accuracies are {mid:.1f} points "
                     f"apart at the median (middle half {low:.1f}–{high:.1f}), n = {max(sizes):,} ahead in {ahead}; at "
                     f"most {100 * widest.gap:.1f} (g = {number(widest.noise_scale)}, m = {widest.m:g}: "
                     f"{percent(widest.lowest.test)} on n = {widest.lowest.train_size:,} at η = {widest.lowest.lr:g} "
                     f"against {percent(widest.highest.test)} on n = {widest.highest.train_size:,} at "
                     f"η = {widest.highest.lr:g}).")
        if len(far):
            lines.append(f"Of the {count(len(far), 'gap')} over {100 * FAR_APART:g} points, the lower configuration has "
                         f"η = {span(far.lowest.map(lambda c: c.lr), lambda v: f'{v:g}')} on n = "
                         f"{span(far.lowest.map(lambda c: c.train_size), lambda v: f'{v:,}')}.")
    best = scaling.best_noise_scale(configs)
    optimum = "; ".join(f"g = {number(b.noise_scale)} on n = {b.train_size:,} (m = {b.m:g}, η = {b.lr:g}: final test "
                        f"accuracy {percent(b.test)})" for b in best.itertuples())
    lines.append(f"Best g by validation accuracy: {optimum} (Smith & Le expect the same best g for every n).")
    return " ".join(lines)


def changes_within(configs: pd.DataFrame, comparisons: pd.DataFrame) -> list[bool]:
    """Per comparison: whether every size's mean change from the largest n lies within the tolerance."""
    changes = scaling.size_changes(configs, comparisons)
    return [bool(changes[(changes.noise_scale == c.noise_scale) & (changes.m == c.m)].within.all())
            for c in comparisons.itertuples()]


def linear_scaling_table(points: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for line in scaling.lines(points).itertuples():
        listed = lambda ms: ", ".join(f"{m:g}" for m in ms) or "—"  # noqa: E731
        broken = "—" if pd.isna(line.breaks) else f"m = {line.breaks:g}, {break_text(line)}"
        verdicts = ({"holds at m": listed(line.holds_at), "cannot tell at m": listed(line.undecided_at)
                     + (f" ({needed_text(line.seeds_needed)})" if line.undecided_at and line.seeds > 1 else ""),
                     "breaks first at (final test accuracy, change [interval])": broken} if line.judged else
                    {"holds at m": "not judged: smallest m under-trained", "cannot tell at m": "—",
                     "breaks first at (final test accuracy, change [interval])": "—"})
        rows.append({"η/m": f"{line.ratio:g}", "from": f"m = {line.m:g}, η = {line.lr:g}",
                     "final test accuracy there": percent(line.test), "tolerance": f"{100 * line.tolerance:.1f} points",
                     "seeds": line.seeds, **verdicts, "largest m": f"{line.largest_m:g}"})
    return pd.DataFrame(rows)


def noise_scale_table(configs: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    changes = scaling.size_changes(configs, comparisons)
    rows = []
    for c in comparisons.itertuples():
        mine = changes[(changes.noise_scale == c.noise_scale) & (changes.m == c.m)]
        verdict = (c.verdict + (f" ({needed_text(c.seeds_needed)})" if c.verdict == scaling.UNDECIDED and c.seeds > 1
                                else " (one seed: no interval)" if c.seeds < 2 and c.judged else "")
                   if c.judged else "not judged: every configuration under-trained")
        rows.append({"g": number(c.noise_scale), "m": f"{c.m:g}", "n compared": sizes_text(c.sizes),
                     "lowest final test accuracy": f"{percent(c.lowest.test)} (n = {c.lowest.train_size:,}, η = {c.lowest.lr:g})",
                     "highest": f"{percent(c.highest.test)} (n = {c.highest.train_size:,}, η = {c.highest.lr:g})",
                     f"change from n = {max(c.sizes):,} [interval]": "; ".join(
                         f"n = {d.train_size:,}: {interval_text(d.change, d.low, d.high)}" for d in mine.itertuples()),
                     "tolerance": f"{100 * c.tolerance:.1f} points", "equal": verdict})
    return pd.DataFrame(rows)


@dataclass
class Rules:
    """The scaling rules a sweep can judge (scaling.py): empty frames where it cannot."""
    configs: pd.DataFrame
    linear: pd.DataFrame  # scaling.linear_scaling
    noise: pd.DataFrame  # scaling.noise_scale
    epochs: int
    note: str = ""  # why the rules are not judged

    def answer(self) -> list[str]:
        lines = [self.note] if self.note else []
        if len(self.linear):
            n = int(self.configs.train_size.max())
            lines.append(linear_scaling_text(self.linear, n, self.epochs, scaling.best_tests(self.configs)[n]))
        if len(self.noise):
            lines.append(noise_scale_text(self.configs, self.noise, self.epochs))
        return lines

    def sections(self) -> list[Section]:
        found = []
        interval = (f"Bars: the {scaling.LEVEL:.0%} interval over seeds of the mean change; filled: the rule holds (the "
                    "interval within the tolerance), hollow: it breaks (entirely beyond it, or a seed diverged), half: the "
                    "seeds cannot tell; small dot: not judged, as under-trained.")
        if len(self.linear) and self.linear.judged.any():
            found.append(Section("linear_scaling", "Linear scaling (Goyal et al. 2017): final test accuracy vs mini-batch "
                                                   "size m along each judged line of constant η/m, on the largest training "
                                                   "set; left as measured, right as the change from the line's smallest m "
                                                   "seed by seed (dashed, in the line's colour: its tolerance, the fall "
                                                   "its test set can resolve; a rise is no break). Thick: mean over seeds; "
                                                   "thin: each seed, which starts from the same weights at every m and η. "
                                                   "Only lines whose smallest m learned on every seed and is not "
                                                   f"under-trained. {interval}",
                                 table=linear_scaling_table(self.linear)))
        if len(self.noise):
            found.append(Section("noise_scale", "Equal noise scale (Smith & Le 2018): final test accuracy vs g = η·n/m, a "
                                                "column per mini-batch size, a colour per training set size n; top as "
                                                "measured, bottom as the change from the largest n at the same m and g, "
                                                "seed by seed (grey band: within the tolerance the test set can resolve at "
                                                "the largest n's test accuracy). Thick: mean over seeds; thin: each "
                                                f"seed, which starts from the same weights on every n. {interval}",
                                 table=noise_scale_table(self.configs, self.noise)))
        return found

    def draw(self, section: Section):
        """The figure of one of `sections`."""
        if section.name == "linear_scaling":
            return figures.linear_scaling(self.linear[self.linear.judged], int(self.configs.train_size.max()), self.epochs)
        return figures.noise_scale(self.configs, scaling.size_changes(self.configs, self.noise), self.epochs)


def rules(runs: pd.DataFrame) -> Rules:
    """What the sweep's runs say about the scaling rules: configurations of every training set
    size, the lines of constant η/m and the comparisons at equal g that exist in them (none
    without test and validation accuracies)."""
    if not {ACCURACY, TEST_ACCURACY} <= tracked(runs):
        return Rules(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), 0)
    configs = scaling.configurations(summary.finals(runs), summary.train_sizes(runs), scaling.test_sizes(runs))
    found = Rules(configs, scaling.linear_scaling(configs), scaling.noise_scale(configs), int(runs.epochs.max()))
    budget = summary.budget_of(runs)
    if budget and (len(found.linear) or len(found.noise)):
        return Rules(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), 0, note=(
            f"Scaling rules: not judged. Linear scaling and equal noise scale are stated at equal epochs, and these runs "
            f"trained for {budget} each, so each batch size saw a different number of epochs (the `scaling_rules` "
            "study judges them at equal epochs)."))
    return found


def draw_all(runs: pd.DataFrame, found: summary.Study, folder: Path, judged: Rules) -> list[Section]:
    """The figures that can say something about this sweep, saved under `folder`, with captions:
    first those of `found`, the study of `runs`, then those of the scaling rules it `judged`, as
    the answer puts them."""
    table, best = found.table, found.best
    batches = batch_sizes(table.batch_size)
    lrs_per_m = table.groupby("batch_size").lr.nunique()
    tuned = best.lr.notna().sum()
    style = "dotted: a configuration that did not learn; × a diverged run's last finite point"
    sections = [Section("convergence", f"Training cost vs epoch, a panel per batch size, a colour per learning rate "
                                       f"(dark = small); {style}.")]
    if names.by_update(COST) in tracked(runs):
        sections.append(Section("convergence_updates", "Training cost vs updates, at the scheduled evaluations "
                                                       "(log axis from the first update)."))
    if tuned > 1:
        sections.append(Section("tuned", "Each batch size at its own best learning rate, against updates, examples seen "
                                         "and training time (log axes)."))
    if len(batches) > 1 and lrs_per_m.max() > 1:
        sections.append(Section("heatmaps", "Final training cost and final validation accuracy over learning rate × batch "
                                            "size; box: the best η of each batch size (red: at the edge of its grid); "
                                            "hatched: every run diverged; 'no learning': every run did not learn."))
    if lrs_per_m.max() >= 3:
        sections.append(Section("final_vs_lr", "Final training cost vs learning rate for each batch size (bars: range over "
                                               "seeds); star: best η, which may not have the lowest final cost as it is the fastest to the targets (hollow: at the edge of the grid); × at the top: "
                                               "learning rates where runs diverged; dotted: the untrained network."))
    if tuned > 1 and names.STEPS in tracked(runs):
        sections.append(Section("steps_to_target", "Updates to reach each target vs batch size, each at its best η; dots: "
                                                   "seeds; hollow triangles: seeds that had not reached it by that update "
                                                   "(censored); hollow squares: a seed met it at its first measurement, so the count is only an "
                                                   "upper bound; dashed: perfect scaling, slope −1 (Shallue et al. 2018)."))
    if figures.noise_measured(found):
        sections.append(Section("gradient_noise", "Gradient noise scale B_simple against the fraction of the updates to "
                                                  "each target, each batch size at its best η: a seed's median estimate "
                                                  "in each twelfth of its way; line: geometric mean over seeds, band: "
                                                  "their range; dashed: B_crit where measured. The table reads it in "
                                                  "thirds of the way, with the interval over seeds.",
                                table=gradient_noise_table(found)))
    sections += judged.sections()
    draw = {
        "convergence": lambda: figures.convergence(runs),
        "convergence_updates": lambda: figures.convergence(runs, x=names.STEPS),
        "tuned": lambda: figures.tuned(runs, found=found),
        "heatmaps": lambda: figures.heatmaps(runs, found),
        "final_vs_lr": lambda: figures.final_vs_lr(runs, found),
        "steps_to_target": lambda: figures.steps_to_target(runs, found),
        "gradient_noise": lambda: figures.gradient_noise_scale(runs, found),
    }
    for section in sections:
        figure = draw[section.name]() if section.name in draw else judged.draw(section)
        section.files = figures.save(figure, folder / "figures" / section.name)
    return sections


def markdown_table(table: pd.DataFrame) -> str:
    cells = lambda row: "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"  # noqa: E731
    return "\n".join([cells(table.columns), cells(["---"] * len(table.columns)), *map(cells, table.itertuples(index=False))])


def bold(text: str) -> str:
    """**x** of the markdown sentences as <b>x</b>, the rest escaped."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


@dataclass
class Report:
    title: str
    question: str | None
    scope: str
    headline: list[str]  # the answer to the question, one or two sentences
    answer: list[str]
    best: pd.DataFrame  # each batch size at its best η
    targets: list[summary.Target]
    sections: list[Section]
    table: pd.DataFrame
    varied: pd.DataFrame
    shared: pd.DataFrame
    source: list[tuple[str, str]]
    overrides: str | None
    timing: str | None = None  # the conditions its seconds were measured under (conditions.py)

    def preamble(self) -> list[str]:
        return [f"**Question.** {self.question or 'none recorded (set study.question in the study config)'}",
                f"**Runs.** {self.scope}",
                f"**Averages.** {summary.AVERAGING[:1].upper() + summary.AVERAGING[1:]}; the best η of a batch size has "
                "the fewest updates to reach every target on its slowest seed, among its learning rates whose every seed "
                "learned (where none gets every seed there: the lowest final training cost on its worst seed)."] + (
                    [self.timing] if self.timing else [])

    def target_lines(self) -> list[str]:
        return [f"{target.describe()}: {target.how}." for target in self.targets]

    def markdown(self, folder: Path) -> str:
        lines = [f"# {self.title}", ""]
        lines += [p + "\n" for p in self.preamble()]
        lines += ["## Answer", "", " ".join(self.headline), ""] + [f"- {line}" for line in self.answer] + [""]
        lines += [f"{BEST_CAPTION}", "", markdown_table(self.best), ""]
        lines += ["Targets:", ""] + [f"- {line}" for line in self.target_lines()] + [""]
        lines += ["## Figures", ""]
        for i, section in enumerate(self.sections, 1):
            png, pdf = (f.relative_to(folder).as_posix() for f in section.files)
            lines += [f"![{section.name}]({png})", "", f"*Figure {i}.* {section.caption} ([PDF]({pdf}))", ""]
            if section.table is not None:
                lines += [markdown_table(section.table), ""]
        lines += ["## Every configuration", "", markdown_table(self.table), ""]
        lines += ["## Config", "", "Swept:", "", markdown_table(self.varied), "", "Shared by every run:", "",
                  markdown_table(self.shared), ""]
        if self.overrides:
            lines += [f"Sweep overrides: `{self.overrides}`", ""]
        lines += [f"- {k}: `{v}`" for k, v in self.source] + [""]
        return "\n".join(lines)

    def html(self, folder: Path, scale: float = 1.0) -> str:
        """The page, its figures embedded (embed.data_uri) with their sides scaled by `scale`."""
        e = html.escape
        table = lambda t: t.to_html(index=False, border=0, classes="table")  # noqa: E731
        parts = [f"<h1>{e(self.title)}</h1>"] + [f"<p>{bold(p)}</p>" for p in self.preamble()]
        parts += ["<h2>Answer</h2>", f"<p>{bold(' '.join(self.headline))}</p>",
                  "<ul>" + "".join(f"<li>{bold(line)}</li>" for line in self.answer) + "</ul>",
                  f"<p>{e(BEST_CAPTION)}</p>", table(self.best),
                  "<p>Targets:</p><ul>" + "".join(f"<li>{e(line)}</li>" for line in self.target_lines()) + "</ul>",
                  "<h2>Figures</h2>"]
        for i, section in enumerate(self.sections, 1):
            png = section.files[0]
            parts.append(f'<figure><img src="{embed.data_uri(png, scale)}" alt="{e(section.name)}"><figcaption>'
                         f'<i>Figure {i}.</i> {e(section.caption)} (PDF: figures/{e(png.stem)}.pdf)</figcaption></figure>')
            if section.table is not None:
                parts.append(table(section.table))
        parts += ["<h2>Every configuration</h2>", table(self.table), "<h2>Config</h2>", "<p>Swept:</p>", table(self.varied),
                  "<p>Shared by every run:</p>", table(self.shared)]
        if self.overrides:
            parts.append(f"<p>Sweep overrides: <code>{e(self.overrides)}</code></p>")
        parts.append("<ul>" + "".join(f"<li>{e(k)}: <code>{e(v)}</code></li>" for k, v in self.source) + "</ul>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
                 "img{max-width:100%}table{border-collapse:collapse;font-size:0.85em}"
                 "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}figure{margin:2em 0}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(self.title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def largest_training_set(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """(the runs on the largest training set, the training set sizes n of all runs): a sweep that
    varies n is reported per batch size and η on one n, as the same (m, η) on another n is
    another configuration, not another seed."""
    if names.EXAMPLES not in tracked(runs):
        return runs, []
    sizes = summary.train_sizes(runs).dropna()
    return runs[runs.run_id.isin(sizes.index[sizes == sizes.max()])], sorted(int(n) for n in sizes.unique())


def choose_runs(client, experiment: str, tracking_uri: str, sweep: str | None, all_sweeps: bool):
    """(runs, parent run or None, sentence saying which runs these are)."""
    if sweep and all_sweeps:
        raise AnalysisError("give --sweep or --all-sweeps, not both")
    if all_sweeps:
        runs = load_runs(experiment, tracking_uri)
        n = runs.parent_run_id.nunique()
        return runs, None, (f"every run of experiment {experiment}, mixing {count(n, 'sweep')} (--all-sweeps)"
                            + (" and runs outside any sweep" if runs.parent_run_id.isna().any() else ""))
    parent = client.get_run(sweep) if sweep else latest_sweep(client, experiment)
    if parent is None:
        return load_runs(experiment, tracking_uri), None, f"every run of experiment {experiment} (it has no sweep)"
    runs = load_runs(experiment, tracking_uri, parent.info.run_id)
    which = "the sweep asked for" if sweep else "the latest sweep of the experiment"
    return runs, parent, (f"{which}, {parent.info.run_name} (parent run {parent.info.run_id}); other sweeps are left "
                          "out (--all-sweeps mixes them)")


def folder_name(text: str) -> str:
    """`text` as one folder name: any character but letters, digits, `.`, `_` and `-` becomes `_`,
    and no leading dot, so an experiment named `../x` or `/x` stays a folder inside `reports/`."""
    return re.sub(r"[^\w.-]", "_", text, flags=re.ASCII).lstrip(".")[:200] or "_"


def write_report(experiment: str, tracking_uri: str = DEFAULT_URI, sweep: str | None = None, out: Path | None = None,
                 target_cost: float | None = None, target_accuracy: float | None = None, log: bool = True,
                 all_sweeps: bool = False) -> Path:
    """Write the report folder (default `reports/<experiment>[-<sweep>]`) and return it; log it on
    the sweep's parent run if `log` and the report covers one sweep."""
    summary.check_target(target_cost, COST)
    summary.check_target(target_accuracy, ACCURACY)
    client = client_for(tracking_uri)
    loaded, parent, scope = choose_runs(client, experiment, tracking_uri, sweep, all_sweeps)
    runs = loaded[loaded.status == "FINISHED"]
    if runs.empty:
        raise AnalysisError(f"{scope}: no FINISHED runs to report")
    excluded = loaded[loaded.status != "FINISHED"].drop_duplicates("run_id")
    judged = rules(runs)
    one_size, sizes = largest_training_set(runs)
    found = summary.study(one_size, target_cost, target_accuracy)
    table = found.table
    scope = (f"{count(runs.run_id.nunique(), 'run')} from {scope}; {seeds_range(table)} per configuration"
             + (f"; left out, not FINISHED: {', '.join(excluded.run_name.astype(str))}" if len(excluded) else "") + ".")
    if len(sizes) > 1:
        scope += (f" The runs train on {sizes_text(sizes)} inputs: equal noise scale is judged on all of them, everything "
                  f"else on the {count(len(table), 'run')} with the most, n = {sizes[-1]:,}.")
    folder = Path(out or Path("reports") / folder_name(experiment + (f"-{parent.info.run_id[:8]}" if parent else "")))
    folder.mkdir(parents=True, exist_ok=True)
    varied, shared = config_tables(runs)
    first, rest = headline(one_size, found), answer(found)
    if judged.sections():  # a sweep laid out along the scaling rules answers them first
        first, rest = judged.answer(), [" ".join(first)] + rest
    else:
        rest += judged.answer()
    report = Report(
        title=f"{experiment}" + (f": {parent.info.run_name}" if parent else ""),
        question=question(loaded, parent, find_experiment(client, experiment)),
        scope=scope, headline=first, answer=rest,
        best=best_table(found), targets=found.targets,
        sections=draw_all(one_size, found, folder, judged),
        table=configuration_table(table, found.best, found.reached), varied=varied, shared=shared,
        source=[("experiment", experiment), ("tracking URI", tracking_uri)]
        + ([("sweep (parent run)", parent.info.run_id)] if parent else []),
        overrides=parent.data.tags.get(names.OVERRIDES) if parent else None,
        timing=conditions.timing(client, experiment, runs.run_id.unique()),
    )
    (folder / "report.md").write_text(report.markdown(folder))
    (folder / "report.html").write_text(embed.fitted(lambda scale: report.html(folder, scale)))
    if log and parent is not None:
        client.log_artifacts(parent.info.run_id, str(folder), artifact_path="report")
        answers.log(client, parent.info.run_id, found, report.headline)
    return folder
