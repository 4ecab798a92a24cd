"""`python -m analysis`: what the report says and in what order, which runs it covers, its
self-contained HTML, logging on the parent run, and one-line errors."""

import base64
import io
import re

import mlflow
import pandas as pd
import pytest
import requests
from PIL import Image
from test_analysis_figures import synthetic_runs
from test_analysis_loader import log_sweep
from test_analysis_summary import run_rows
from test_analysis_summary import sweep as sweep_of

from analysis import embed, summary
from analysis.__main__ import main
from analysis.report import answer, best_table, config_tables, headline


def write(uri: str, folder, *extra) -> str:
    main(["report", "--experiment", "study", "--tracking-uri", uri, "--out", str(folder), *extra])
    return (folder / "report.md").read_text()


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


def section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_report_html_embeds_every_figure_and_links_no_image_file(report):
    pngs = sorted(p.name for p in (report / "figures").glob("*.png"))
    page = (report / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(pngs) > 0
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.findall(r'(?:src|href)="(?!data:)', page)


def test_report_html_stays_within_the_page_limit_with_every_figure_decoding_at_its_size(report):
    page = (report / "report.html").read_text()
    assert len(page.encode()) <= embed.PAGE_LIMIT
    sizes = [Image.open(io.BytesIO(base64.b64decode(uri))).size for uri in re.findall(r'base64,([^"]+)"', page)]
    assert sorted(sizes) == sorted(Image.open(png).size for png in (report / "figures").glob("*.png"))


def test_report_says_before_its_answer_what_its_runs_recorded_of_the_conditions_of_their_seconds(report):
    preamble = (report / "report.md").read_text().split("## Answer")[0]
    assert "**Timing.**" in preamble and "recorded no conditions" in preamble  # synthetic runs log none


def test_report_markdown_links_every_png_it_drew(report):
    markdown = (report / "report.md").read_text()
    drawn = sorted(p.relative_to(report).as_posix() for p in (report / "figures").glob("*.png"))
    assert sorted(re.findall(r"!\[[^]]*\]\((figures/[^)]+\.png)\)", markdown)) == drawn


def test_report_gives_each_figure_a_caption(report):
    markdown = (report / "report.md").read_text()
    assert len(re.findall(r"^\*Figure \d+\.\* \S", markdown, re.M)) == len(list((report / "figures").glob("*.png")))


def test_report_opens_with_the_answer_and_ends_with_the_config(report):
    markdown = (report / "report.md").read_text()
    order = [markdown.index(f"## {heading}") for heading in ("Answer", "Figures", "Every configuration", "Config")]
    assert order == sorted(order)


def test_report_answer_gives_the_best_lr_of_each_batch_size_and_flags_one_at_the_grid_edge(report):
    answer = section((report / "report.md").read_text(), "Answer")
    assert "| m = 10 | 1 (" in answer
    assert "| full batch (GD) | 10 (" in answer
    assert answer.count("full batch (GD): best η is the highest tried") == 1


def test_report_answer_names_validation_or_test_on_every_accuracy(report):
    answer = section((report / "report.md").read_text(), "Answer")
    assert re.findall(r"(\w+) accuracy", answer)
    assert set(re.findall(r"(\w+) accuracy", answer)) <= {"validation", "test"}


def test_report_lists_runs_that_diverged_or_did_not_learn(report):
    answer = section((report / "report.md").read_text(), "Answer")
    assert "Diverged: m = 10 at η = 10; m = 100 at η = 10 (1 of 3 runs)." in answer
    assert "Did not learn: " in answer


def test_report_counts_outcomes_per_configuration(report):
    table = section((report / "report.md").read_text(), "Every configuration")
    assert "| m = 10 | 10 | 3 | 3 diverged |" in table
    assert "| m = 100 | 10 | 3 | 2 learned, 1 diverged |" in table


def test_swept_values_sort_as_numbers_not_as_text():
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "parent_run_id": "p", "lr": [10.0, 3.0, 0.3], "batch_size": [100, 20, "full"],
                         "seed": [10, 2, 1], "metric": "train_cost"})
    varied, _ = config_tables(runs)
    assert varied.set_index("setting")["values"].to_dict() == {"lr": "0.3, 3, 10", "batch_size": "20, 100, full",
                                                               "seed": "1, 2, 10"}


@pytest.mark.parametrize("budget, shown", [("1500", "30 (not used: a budget of 1,500 updates ends each run)"),
                                            ("None", "30")])
def test_the_shared_settings_say_epochs_are_not_used_where_a_budget_ends_the_runs(budget, shown):
    runs = pd.DataFrame({"run_id": ["a", "b"], "parent_run_id": "p", "lr": [1.0, 3.0], "epochs": "30",
                         "budget.updates": budget, "metric": "train_cost"})
    _, shared = config_tables(runs)
    assert shared.set_index("setting").value["epochs"] == shown


def test_report_of_an_experiment_with_two_sweeps_covers_only_the_latest_unless_asked(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = synthetic_runs()
    log_sweep(uri, runs)
    log_sweep(uri, runs[runs.batch_size == 100])
    latest = write(uri, tmp_path / "latest")
    assert "9 runs from the latest sweep of the experiment" in latest and "| m = 10 |" not in latest
    mixed = write(uri, tmp_path / "all", "--all-sweeps")
    assert "36 runs from every run of experiment study, mixing 2 sweeps (--all-sweeps)" in mixed


def test_report_draws_only_the_figures_that_fit_a_one_batch_size_sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, synthetic_runs().query("batch_size == 10"))
    write(uri, tmp_path / "out")
    assert sorted(p.stem for p in (tmp_path / "out" / "figures").glob("*.png")) == ["convergence", "final_vs_lr"]


def test_report_is_logged_on_the_sweeps_parent_run(sweep, report):
    uri, parent = sweep
    logged = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(parent, "report")}
    assert {"report/report.md", "report/report.html", "report/figures"} <= logged


@pytest.mark.parametrize("args, message", [
    (["report", "--experiment", "nope"], "error: experiment 'nope' not found"),
    (["convergence", "--experiment", "study", "--metric", "nope"], "error: metric 'nope' not tracked"),
    (["steps-to-target", "--experiment", "study", "--target-accuracy", "2"], "error: target accuracy: 2.0 must be a fraction"),
    (["linear-scaling", "--experiment", "study"], "error: linear scaling: the sweep does not vary m and η"),
])
def test_bad_input_stops_with_one_error_line(sweep, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        main([*args, "--tracking-uri", sweep[0], "--out", str(tmp_path / "x.png")] if args[0] != "report"
             else [*args, "--tracking-uri", sweep[0], "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(message) and err.count("\n") == 1


def test_report_warns_when_a_run_that_did_not_learn_reaches_a_target():
    runs = sweep_of(run_rows(10, 1.0, 0, [1.0, 0.1, 0.01], [0.1, 0.8, 0.95]),
                    run_rows(10, 30.0, 0, [1.0, 0.5, 0.5], [0.1, 0.1, 0.11]))
    lines = answer(summary.study(runs, target_cost=0.6))
    assert "⚠ Target training cost ≤ 0.6 is reached by 1 run that did not learn: it does not separate learning from chance." in lines
    assert not any("⚠ Target" in line for line in answer(summary.study(runs, target_cost=0.1)))


def test_report_says_when_updates_to_a_target_are_only_an_upper_bound():
    runs = sweep_of(run_rows(10, 1.0, 0, [1.0, 0.05, 0.01]), run_rows(100, 1.0, 0, [1.0, 0.5, 0.05]))
    cells = best_table(summary.study(runs, target_cost=0.1)).set_index("batch size")["to training cost ≤ 0.1"]
    assert cells["m = 10"].startswith("≤ 10 updates") and "(met at the first measurement)" in cells["m = 10"]  # at epoch 1
    assert "≤" not in cells["m = 100"]  # at epoch 2


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [[0], [0, 1], [0, 1, 2]])
def test_report_builds_for_one_two_and_many_seeds(tmp_path, seeds):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, synthetic_runs().query("seed in @seeds"))
    markdown = write(uri, tmp_path / "out")
    assert f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} per configuration" in markdown
    answer = section(markdown, "Answer")
    if len(seeds) == 1:
        assert "1 seed: no interval" in answer and "95% over" not in answer
    else:
        assert f"range of {len(seeds)} seeds" in answer or f"resamples of {len(seeds)} seeds agree" in answer


def test_report_logs_its_answers_on_the_sweeps_parent_run(sweep, report):
    uri, parent = sweep
    run = mlflow.MlflowClient(uri).get_run(parent)
    assert run.data.metrics["answer.seeds"] == 3
    assert run.data.metrics["answer.best_lr.m_10"] == 1.0
    assert run.data.metrics["answer.best_lr.full"] == 10.0
    assert run.data.tags["answer"].startswith("No batch size reached") or run.data.tags["answer"].startswith("To reach")


def updates_runs(first: list, second: list):
    """Two batch sizes, 10 and 100, one seed each, with these training costs per epoch (10 updates each)."""
    return sweep_of(run_rows(10, 1.0, 0, first), run_rows(100, 1.0, 0, second))


def test_batch_sizes_whose_intervals_overlap_are_not_told_apart():
    # both reach cost 0.1 between updates 10 and 20: one measurement apart, the same interval
    text = " ".join(headline(pd.DataFrame(), summary.study(updates_runs([1.0, 0.5, 0.05], [1.0, 0.5, 0.08]),
                                                           target_cost=0.1)))
    assert "per update, m = 10 (10–20 updates) cannot be separated from m = 100 (10–20 updates)" in text


def test_a_batch_size_whose_interval_ends_before_the_others_starts_is_fastest():
    # m = 10 reaches cost 0.1 within updates 10–20, m = 100 within 20–30
    text = " ".join(headline(pd.DataFrame(), summary.study(updates_runs([1.0, 0.5, 0.05, 0.01], [1.0, 0.5, 0.3, 0.08]),
                                                           target_cost=0.1)))
    assert "per update, m = 10 is fastest (10–20 updates; m = 100 20–30 updates)" in text


def test_a_conclusion_resting_on_a_budget_is_said_to():
    # m = 100 stops short of the target after 20 updates, before m = 10's interval (20–30) ends
    text = " ".join(headline(pd.DataFrame(), summary.study(updates_runs([1.0, 0.5, 0.2, 0.05], [1.0, 0.3, 0.2]),
                                                           target_cost=0.1)))
    assert "m = 100 (not reached within 20 updates)" in text
    assert "the budget, not the data, leaves this open" in text


@pytest.mark.slow
def test_report_answers_when_full_batch_never_reaches_the_target(tmp_path):
    # SGD (m = 10) reaches cost 0.1 at epoch 2; full batch learns a little but never gets there
    runs = sweep_of(*(run_rows(10, lr, seed, [1.0, 0.3, 0.05, 0.02], [0.1, 0.6, 0.9, 0.95])
                      for lr in (1.0, 3.0) for seed in (0, 1)),
                    *(run_rows("full", lr, seed, [1.0, 0.6, 0.4, 0.3], [0.1, 0.5, 0.6, 0.65])
                      for lr in (1.0, 3.0) for seed in (0, 1)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, runs)
    answer = section(write(uri, tmp_path / "out", "--target-cost", "0.1"), "Answer")
    assert "To reach training cost ≤ 0.1" in answer and "m = 10 is fastest" in answer
    assert "full batch (GD) not reached within" in answer
    assert "Did not reach training cost ≤ 0.1 within the budget: full batch (GD)" in answer


def test_lr_sweep_answer_says_where_cost_falls_where_runs_stall_and_where_stability_ends():
    runs = sweep_of(run_rows(10, 0.01, 0, [1.0, 0.98, 0.97], [0.1, 0.1, 0.11]),
                    run_rows(10, 0.1, 0, [1.0, 0.3, 0.1], [0.1, 0.7, 0.85]),
                    run_rows(10, 1.0, 0, [1.0, 0.05, 0.01], [0.1, 0.9, 0.97]),
                    run_rows(10, 10.0, 0, [1.0, 50.0], [0.1, 0.1], diverged=True))
    text = " ".join(headline(pd.DataFrame(), summary.study(runs)))
    assert "the final training cost falls from 0.1 at η = 0.1 to 0.01 at η = 1" in text
    assert "η ≤ 0.01 is too small to learn" in text
    assert "stability ends at η = 10, where 1 of 1 runs diverged" in text
    assert "1 seed: no interval" in text


def test_lr_sweep_answer_says_where_above_the_best_eta_the_seeds_part():
    runs = sweep_of(*(run_rows(10, 1.0, seed, [1.0, 0.05, 0.01], [0.1, 0.9, 0.97]) for seed in (0, 1)),
                    run_rows(10, 10.0, 0, [1.0, 0.01, 0.003], [0.1, 0.9, 0.98]),
                    run_rows(10, 10.0, 1, [1.0, 0.5, 0.3], [0.1, 0.5, 0.6]))
    text = " ".join(headline(pd.DataFrame(), summary.study(runs)))
    assert "from η = 10 the seeds part (final training cost 0.003 to 0.3)" in text


@pytest.mark.parametrize("accuracies, expected", [
    ({10: [0.1, 0.95, 0.97], 100: [0.1, 0.5, 0.5, 0.95]},
     "To validation accuracy ≥ 0.9 the order is the same, told apart the same way."),
    ({10: [0.1, 0.5, 0.95], 100: [0.1, 0.95, 0.97, 0.98]},  # m = 100 there first
     "To reach validation accuracy ≥ 0.9: per epoch, m = 100 is fastest"),
])
def test_the_headline_says_whether_the_second_target_keeps_the_first_ones_order(accuracies, expected):
    runs = sweep_of(*(run_rows(10, 1.0, seed, [1.0, 0.05, 0.01], accuracies[10]) for seed in (0, 1)),
                    *(run_rows(100, 1.0, seed, [1.0, 0.5, 0.05, 0.01], accuracies[100]) for seed in (0, 1)))
    text = " ".join(headline(pd.DataFrame(), summary.study(runs, target_cost=0.1, target_accuracy=0.9)))
    assert "To reach training cost ≤ 0.1" in text and "per epoch, m = 10 is fastest" in text
    assert expected in text


def test_with_one_seed_the_fastest_batch_size_is_said_to_be_that_seeds():
    runs = sweep_of(run_rows(10, 1.0, 0, [1.0, 0.05, 0.01]), run_rows(100, 1.0, 0, [1.0, 0.5, 0.05]))
    text = " ".join(headline(pd.DataFrame(), summary.study(runs, target_cost=0.1)))
    assert ("each batch size at its best η (1 seed: intervals span only the measurements around the target, not the "
            "spread between seeds, so what is fastest is this seed's)") in text


def stalled_at(cost: float, **params) -> pd.DataFrame:
    runs = sweep_of(run_rows(10, 1.0, 0, [1.0, 0.05, 0.01], [0.1, 0.9, 0.97]),
                    run_rows(10, 30.0, 0, [1.0, cost, cost], [0.1, 0.1, 0.1]))
    return runs.assign(**params)


@pytest.mark.parametrize("cost, params, saturated", [
    (0.5, {"model.output": "sigmoid", "model.cost": "quadratic"}, True),
    (0.5, {"model.output": "sigmoid", "model.cost": "cross_entropy"}, False),  # 0.5 means nothing there
    (0.5, {}, False),  # the runs do not say
    (0.3, {"model.output": "sigmoid", "model.cost": "quadratic"}, False),  # not what outputs all at 0 cost
])
def test_stalled_runs_are_called_saturated_only_at_the_cost_of_every_output_at_zero(cost, params, saturated):
    runs = stalled_at(cost, **params)
    text = " ".join(headline(runs, summary.study(runs)))
    assert f"from η = 30 runs stall (final training cost ≈ {cost:g}" in text
    assert ("the output units saturate" in text) == saturated


def test_a_published_result_is_set_beside_the_runs():
    rows = [run_rows(10, 3.0, seed, [1.0, 0.1, 0.05], [0.1, 0.9, 0.95], test_accuracies=[0.1, 0.9, acc])
            for seed, acc in ((0, 0.94), (1, 0.95))]
    runs = sweep_of(*rows)
    runs["study.reference.test_accuracy"] = "0.9542"
    runs["study.reference.source"] = "Nielsen, ch. 1"
    text = " ".join(headline(runs, summary.study(runs)))
    assert "the final test accuracy, in %, is 94.5 (94.0–95.0; range of 2 seeds)" in text
    assert "the published 95.42% (Nielsen, ch. 1) is 0.9 points above its value" in text


def test_a_published_accuracy_that_is_not_a_fraction_stops_the_job_with_one_line():
    from harness import compose
    from harness.config import check
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^study\.reference\.test_accuracy: 95\.42 must be a fraction in \(0, 1\], or null$"):
        check(compose(["study.reference.test_accuracy=95.42"]))
    check(compose(["study.reference.test_accuracy=0.9542", "study.reference.lr=3", "study.reference.source=book"]))


@pytest.mark.parametrize("experiment", ["../../escaped", "/tmp/escaped", ".hidden/../x"])
def test_the_default_report_folder_stays_under_reports_whatever_the_experiment_is_named(tmp_path, monkeypatch, experiment):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, synthetic_runs().query("batch_size == 10"), experiment=experiment)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    main(["report", "--experiment", experiment, "--tracking-uri", uri, "--no-log"])
    [written] = list(tmp_path.rglob("report.md"))
    assert written.parent.parent == work / "reports"


def test_a_report_where_there_is_no_store_says_so_and_creates_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(["report", "--experiment", "harness"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: no MLflow store at {tmp_path / 'mlflow.db'}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_report_html_reaches_the_mlflow_ui_as_a_page_within_the_limit(sqlite_server, tmp_path):
    """What the UI's artifact view fetches (`get-artifact`, the route its bundle calls) from a server."""
    parent = log_sweep(sqlite_server.uri, synthetic_runs(), experiment="served")
    main(["report", "--experiment", "served", "--sweep", parent, "--tracking-uri", sqlite_server.uri,
          "--out", str(tmp_path / "out")])
    served = requests.get(f"{sqlite_server.uri}/get-artifact", params={"path": "report/report.html", "run_uuid": parent},
                          timeout=60)
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/html")
    assert served.content == (tmp_path / "out" / "report.html").read_bytes()
    assert len(served.content) <= embed.PAGE_LIMIT
