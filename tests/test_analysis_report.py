"""`python -m analysis`: the report folder and its links, logging on the parent run, and one-line errors."""

import re

import mlflow
import pytest
from test_analysis_figures import synthetic_runs
from test_analysis_loader import log_sweep

from analysis.__main__ import main


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    return uri, log_sweep(uri, synthetic_runs())


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    uri, parent = sweep
    folder = tmp_path_factory.mktemp("report") / "out"
    main(["report", "--experiment", "study", "--sweep", parent, "--tracking-uri", uri, "--out", str(folder)])
    return folder


def test_report_links_every_figure_it_drew_in_markdown_and_html(report):
    drawn = sorted(p.relative_to(report).as_posix() for p in (report / "figures").iterdir())
    assert len(drawn) == 2 * 8  # PNG and PDF of 4 convergence views, heatmaps, final vs lr, steps, GD vs SGD
    markdown, page = (report / "report.md").read_text(), (report / "report.html").read_text()
    assert sorted(re.findall(r"\]\((figures/[^)]+)\)", markdown)) == drawn
    assert sorted(re.findall(r'(?:src|href)="(figures/[^"]+)"', page)) == drawn


def test_report_gives_each_figure_a_caption(report):
    markdown = (report / "report.md").read_text()
    assert len(re.findall(r"^\*Figure \d+\.\* \S", markdown, re.M)) == 8


def test_report_summary_counts_diverged_runs_per_configuration(report):
    markdown = (report / "report.md").read_text()
    assert "| m = 10 | 10 | 3 | 3 |" in markdown and "| m = 100 | 10 | 3 | 1 |" in markdown
    assert "Diverged runs (4)" in markdown


def test_report_shows_the_sweep_overrides_and_swept_settings(report):
    markdown = (report / "report.md").read_text()
    assert "`lr=0.1,1,10`" in markdown
    assert "| batch_size | 10, 100, full |" in markdown


def test_report_is_logged_on_the_sweeps_parent_run(sweep, report):
    uri, parent = sweep
    logged = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(parent, "report")}
    assert {"report/report.md", "report/report.html", "report/figures"} <= logged


@pytest.mark.parametrize("args, message", [
    (["report", "--experiment", "nope"], "error: experiment 'nope' not found"),
    (["convergence", "--experiment", "study", "--metric", "nope"], "error: metric 'nope' not tracked"),
    (["steps-to-target", "--experiment", "study", "--target-accuracy", "2"], "error: target accuracy: 2.0 must be a fraction"),
])
def test_bad_input_stops_with_one_error_line(sweep, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        main([*args, "--tracking-uri", sweep[0], "--out", str(tmp_path / "x.png")] if args[0] != "report"
             else [*args, "--tracking-uri", sweep[0], "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(message) and err.count("\n") == 1
