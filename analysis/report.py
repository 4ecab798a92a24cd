"""A sweep's report: a folder with every figure (PNG and PDF), `report.md` and `report.html` holding
the study's question, its config and overrides, a summary table and each figure with a caption.
The folder is also logged under `report/` on the sweep's parent run, to show in the MLflow UI.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import figures, summary
from .loader import DEFAULT_URI, client_for, find_experiment, load_runs
from .summary import CONFIG, batch_label, batch_sizes

COST, ACCURACY = "train_cost", "validation_accuracy"
QUESTION_KEYS = ["study.question", "question", "mlflow.note.content"]  # params, then tags, of the parent or a run
SWEPT_ASIDE = {"tracking.uri", "tracking.experiment"}


@dataclass
class Section:
    name: str
    caption: str
    files: list[Path] = field(default_factory=list)


def question(runs: pd.DataFrame, parent, experiment) -> str | None:
    """The study's question: `study.question` (param), `question` or the description
    (`mlflow.note.content`) of the parent run, then of the runs, then of the experiment."""
    sources = [parent.data.params | parent.data.tags] if parent is not None else []
    if "study.question" in runs:
        sources.append({"study.question": runs["study.question"].dropna().iloc[0]})
    sources.append(experiment.tags)
    for source in sources:
        for key in QUESTION_KEYS:
            if source.get(key):
                return str(source[key])
    return None


def config_tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(settings shared by every run, settings that vary with their values)."""
    first = runs.columns.get_loc("parent_run_id") + 1
    params = runs.drop_duplicates("run_id").iloc[:, first:runs.columns.get_loc("metric")].drop(columns=list(SWEPT_ASIDE), errors="ignore")
    values = {name: params[name].dropna().unique() for name in params}
    shared = pd.DataFrame([(k, str(v[0])) for k, v in values.items() if len(v) == 1], columns=["setting", "value"])
    order = lambda k, v: batch_sizes(v) if k == "batch_size" else sorted(v, key=str)  # noqa: E731
    varied = pd.DataFrame([(k, ", ".join(map(str, order(k, v)))) for k, v in values.items() if len(v) > 1],
                          columns=["setting", "values"])
    return shared, varied


def plus_minus(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    return f"{values.mean():.{digits}g}" + (f" ± {values.std():.2g}" if len(values) > 1 else "")


def summary_table(runs: pd.DataFrame, target_cost: float, target_accuracy: float | None) -> pd.DataFrame:
    """Per configuration: runs, diverged runs, final cost and accuracy (mean ± std over seeds that
    did not diverge), epochs and updates to each target (over the seeds that reached it)."""
    has_accuracy = target_accuracy is not None
    finals = summary.finals(runs, COST, ACCURACY if has_accuracy else None)
    if has_accuracy:
        last = summary.per_epoch(runs, [ACCURACY])
        last = last.loc[last.groupby("run_id").epoch.idxmax()].set_index("run_id")[ACCURACY]
        finals["final_accuracy"] = finals.run_id.map(last).where(~finals.diverged)
    targets = [(COST, target_cost)] + ([(ACCURACY, target_accuracy)] if has_accuracy else [])
    reached = {metric: summary.to_target(runs, metric, target).set_index("run_id") for metric, target in targets}
    rows = []
    for batch_size in batch_sizes(finals.batch_size):
        for lr in sorted(finals[finals.batch_size == batch_size].lr.unique()):
            group = finals[(finals.batch_size == batch_size) & (finals.lr == lr)]
            row = {"batch size": batch_label(batch_size), "lr": f"{lr:g}", "runs": len(group),
                   "diverged": int(group.diverged.sum()), "final cost": plus_minus(group.final_cost)}
            if has_accuracy:
                row["final accuracy"] = plus_minus(group.final_accuracy)
            for metric, target in targets:
                hit = reached[metric].loc[group.run_id]
                hit = hit[~hit.diverged]
                name = "cost" if metric == COST else "accuracy"
                row[f"epochs to {name} target"] = plus_minus(hit.epochs_to_target)
                row[f"updates to {name} target"] = plus_minus(hit.steps_to_target)
                row[f"reached {name} target"] = f"{hit.steps_to_target.notna().sum()}/{len(group)}"
            rows.append(row)
    return pd.DataFrame(rows)


def diverged_list(runs: pd.DataFrame) -> list[str]:
    table = runs[runs.diverged].drop_duplicates("run_id").sort_values(CONFIG + ["seed"], key=lambda c: c.astype(str))
    return [f"{batch_label(r.batch_size)}, η = {r.lr:g}, seed {r.seed}: diverged at epoch {r.diverged_epoch}"
            for r in table.itertuples()]


def draw_all(runs: pd.DataFrame, folder: Path, target_cost: float, target_accuracy: float | None) -> list[Section]:
    """Every figure the tracked metrics allow, saved under `folder`, with its caption."""
    tracked = set(runs.metric)
    band = "line: mean over seeds (geometric on a log axis), band: 95% CI; × a diverged run's last finite point"
    sections = [Section("convergence", f"Training cost vs epoch, a panel per batch size, a colour per learning rate; {band}.")]
    for x, what in [("steps", "updates (full-batch GD makes one per epoch)"), ("examples", "examples seen"),
                    ("train_time", "training time in seconds")]:
        if x in tracked:
            sections.append(Section(f"convergence_{x}", f"The same against {what}."))
    sections.append(Section("heatmaps", "Final training cost and best validation accuracy over learning rate × batch "
                                        "size, mean over seeds; hatched: every run diverged; (k/n div.): k of n runs diverged."))
    sections.append(Section("final_vs_lr", "Final training cost vs learning rate for each batch size (bars: 95% CI); "
                                           "× at the top: learning rates where runs diverged; dotted: the untrained network."))
    if "steps" in tracked:
        accuracy = f" or validation accuracy ≥ {target_accuracy:.3g}" if target_accuracy is not None else ""
        sections.append(Section("steps_to_target", f"Updates to reach training cost ≤ {target_cost:.3g}{accuracy} vs batch "
                                                   "size, each at its fastest stable learning rate (η labels); dashed: "
                                                   "perfect scaling, slope −1 (Shallue et al. 2018)."))
    if {"examples", "train_time"} <= tracked and len(set(runs.batch_size)) > 1:
        sections.append(Section("gd_vs_sgd", "Each batch size at its best learning rate (lowest mean final cost, no "
                                             "diverged run), at equal examples processed and at equal training time."))
    draw = {
        "convergence": lambda: figures.convergence(runs, COST),
        "convergence_steps": lambda: figures.convergence(runs, COST, "steps"),
        "convergence_examples": lambda: figures.convergence(runs, COST, "examples"),
        "convergence_train_time": lambda: figures.convergence(runs, COST, "train_time"),
        "heatmaps": lambda: figures.final_heatmaps(runs, COST, ACCURACY),
        "final_vs_lr": lambda: figures.final_vs_lr(runs, COST),
        "steps_to_target": lambda: figures.steps_to_target(runs, target_cost, target_accuracy),
        "gd_vs_sgd": lambda: figures.gd_vs_sgd(runs, COST),
    }
    for section in sections:
        section.files = figures.save(draw[section.name](), folder / "figures" / section.name)
    return sections


def markdown_table(table: pd.DataFrame) -> str:
    cells = lambda row: "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"  # noqa: E731
    return "\n".join([cells(table.columns), cells(["---"] * len(table.columns)), *map(cells, table.itertuples(index=False))])


@dataclass
class Report:
    title: str
    question: str | None
    source: list[tuple[str, str]]
    overrides: str | None
    shared: pd.DataFrame
    varied: pd.DataFrame
    targets: str
    table: pd.DataFrame
    diverged: list[str]
    excluded: list[str]
    sections: list[Section]

    def markdown(self, folder: Path) -> str:
        lines = [f"# {self.title}", "", f"**Question.** {self.question or 'none recorded (set `study.question` in the study config)'}", ""]
        lines += [f"- {k}: `{v}`" for k, v in self.source] + [""]
        if self.overrides:
            lines += ["## Overrides", "", f"`{self.overrides}`", ""]
        lines += ["## Config", "", "Swept:", "", markdown_table(self.varied), "", "Shared by every run:", "",
                  markdown_table(self.shared), "", "## Summary", "", self.targets, "", markdown_table(self.table), ""]
        lines += [f"Diverged runs ({len(self.diverged)}): " + ("; ".join(self.diverged) if self.diverged else "none."), ""]
        if self.excluded:
            lines += [f"Left out (not FINISHED): {'; '.join(self.excluded)}.", ""]
        lines += ["## Figures", ""]
        for i, section in enumerate(self.sections, 1):
            png, pdf = (f.relative_to(folder).as_posix() for f in section.files)
            lines += [f"![{section.name}]({png})", "", f"*Figure {i}.* {section.caption} ([PDF]({pdf}))", ""]
        return "\n".join(lines)

    def html(self, folder: Path) -> str:
        e = html.escape
        table = lambda t: t.to_html(index=False, border=0, classes="table")  # noqa: E731
        parts = [f"<h1>{e(self.title)}</h1>",
                 f"<p><b>Question.</b> {e(self.question or 'none recorded (set study.question in the study config)')}</p>",
                 "<ul>" + "".join(f"<li>{e(k)}: <code>{e(v)}</code></li>" for k, v in self.source) + "</ul>"]
        if self.overrides:
            parts += ["<h2>Overrides</h2>", f"<p><code>{e(self.overrides)}</code></p>"]
        parts += ["<h2>Config</h2>", "<p>Swept:</p>", table(self.varied), "<p>Shared by every run:</p>", table(self.shared),
                  "<h2>Summary</h2>", f"<p>{e(self.targets)}</p>", table(self.table),
                  f"<p>Diverged runs ({len(self.diverged)}): {e('; '.join(self.diverged) if self.diverged else 'none.')}</p>"]
        if self.excluded:
            parts.append(f"<p>Left out (not FINISHED): {e('; '.join(self.excluded))}.</p>")
        parts.append("<h2>Figures</h2>")
        for i, section in enumerate(self.sections, 1):
            png, pdf = (f.relative_to(folder).as_posix() for f in section.files)
            parts.append(f'<figure><img src="{e(png)}" alt="{e(section.name)}"><figcaption><i>Figure {i}.</i> '
                         f'{e(section.caption)} (<a href="{e(pdf)}">PDF</a>)</figcaption></figure>')
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
                 "img{max-width:100%}table{border-collapse:collapse;font-size:0.9em}"
                 "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}figure{margin:2em 0}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(self.title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_report(experiment: str, tracking_uri: str = DEFAULT_URI, sweep: str | None = None, out: Path | None = None,
                 target_cost: float | None = None, target_accuracy: float | None = None, log: bool = True) -> Path:
    """Write the report folder (default `reports/<experiment>[-<sweep>]`) and return it; log it on
    the sweep's parent run (the given sweep, or the one parent all the runs share) if `log`."""
    summary.check_target(target_cost, COST)
    summary.check_target(target_accuracy, ACCURACY)
    client = client_for(tracking_uri)
    loaded = load_runs(experiment, tracking_uri, sweep)
    runs = loaded[loaded.status == "FINISHED"]
    excluded = [f"{r.run_name or r.run_id} ({r.status})" for r in loaded[loaded.status != "FINISHED"].drop_duplicates("run_id").itertuples()]
    parents = set(loaded.parent_run_id.dropna())
    parent_id = sweep or (parents.pop() if len(parents) == 1 and loaded.parent_run_id.notna().all() else None)
    parent = client.get_run(parent_id) if parent_id else None
    has_accuracy = ACCURACY in set(runs.metric)
    target_cost = summary.default_target(runs, COST) if target_cost is None else target_cost
    if has_accuracy and target_accuracy is None:
        target_accuracy = summary.default_target(runs, ACCURACY)
    folder = Path(out or Path("reports") / (experiment + (f"-{parent_id[:8]}" if sweep else "")))
    folder.mkdir(parents=True, exist_ok=True)
    shared, varied = config_tables(runs)
    targets = (f"Targets: training cost ≤ {target_cost:.3g}" + (f", validation accuracy ≥ {target_accuracy:.3g}" if has_accuracy else "")
               + " (a target left unset is the hardest one every batch size reaches with its best learning rate on every seed).")
    report = Report(
        title=f"{experiment}" + (f": {parent.info.run_name}" if parent else ""),
        question=question(loaded, parent, find_experiment(client, experiment)),
        source=[("experiment", experiment), ("tracking URI", tracking_uri), ("runs", str(runs.run_id.nunique()))]
        + ([("sweep (parent run)", parent_id)] if parent_id else []),
        overrides=parent.data.tags.get("overrides") if parent else None,
        shared=shared, varied=varied, targets=targets,
        table=summary_table(runs, target_cost, target_accuracy if has_accuracy else None),
        diverged=diverged_list(runs), excluded=excluded,
        sections=draw_all(runs, folder, target_cost, target_accuracy if has_accuracy else None),
    )
    (folder / "report.md").write_text(report.markdown(folder))
    (folder / "report.html").write_text(report.html(folder))
    if log and parent_id:
        client.log_artifacts(parent_id, str(folder), artifact_path="report")
    return folder
