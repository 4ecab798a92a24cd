"""The loader reads back, from a real MLflow store, exactly the sweep a test logged into it."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from test_analysis_figures import synthetic_runs

from analysis.loader import CURVES, AnalysisError, load_runs, require_metric


def log_sweep(uri: str, runs: pd.DataFrame, experiment: str = "study", with_curves=lambda run_id: True) -> str:
    """Log a tidy frame as a sweep the way the harness tracks one: a parent run (tag role=sweep)
    and a child per run with params, status tags, per-epoch metrics and, where `with_curves`, the
    curves table. Returns the parent's run id."""
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    parent = client.create_run(experiment_id, tags={"role": "sweep", "overrides": "lr=0.1,1,10"}, run_name="sweep").info.run_id
    for run_id, run in runs.groupby("run_id", sort=False):
        first = run.iloc[0]
        tags = {"mlflow.parentRunId": parent, "status": "diverged" if first.diverged else "finished"}
        if first.diverged:
            tags["diverged_epoch"] = str(first.diverged_epoch)
        child = client.create_run(experiment_id, tags=tags, run_name=run_id).info.run_id
        params = [Param(k, str(first[k])) for k in ("lr", "batch_size", "seed", "epochs")] + [Param("model.hidden", "[30]")]
        metrics = [Metric(r.metric, r.value, 0, r.step) for r in run.itertuples()]
        client.log_batch(child, metrics=metrics, params=params)
        if with_curves(run_id):
            table = run.pivot(index="step", columns="metric", values="value").rename_axis(index="epoch", columns=None)
            client.log_table(child, table.reset_index(), CURVES)
        client.set_terminated(child)
    client.set_terminated(parent)
    return parent


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store holding the synthetic sweep; half its runs without the curves table."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    logged = synthetic_runs()
    parent = log_sweep(uri, logged, with_curves=lambda run_id: run_id.endswith(("0", "2")))
    return uri, logged, parent


def points(frame: pd.DataFrame) -> pd.DataFrame:
    key = ["run_id", "metric", "step"]
    return frame[key + ["value"]].sort_values(key, ignore_index=True)


def test_loader_round_trips_every_point_of_a_sweep(store):
    uri, logged, parent = store
    loaded = load_runs("study", uri, sweep=parent)
    loaded["run_id"] = loaded.run_name  # the test named each run after its synthetic id
    pd.testing.assert_frame_equal(points(loaded), points(logged))


def test_loader_types_params_and_flags_divergence(store):
    uri, logged, parent = store
    runs = load_runs("study", uri, sweep=parent).drop_duplicates("run_id").set_index("run_name")
    assert runs.lr.dtype == float and runs.seed.dtype == "Int64" and runs.epochs.dtype == "Int64"
    assert set(runs.batch_size) == {10, 100, "full"}
    assert runs.loc["full-1.0-2", ["lr", "batch_size", "seed", "model.hidden"]].tolist() == [1.0, "full", 2, "[30]"]
    assert runs.loc["10-10.0-1", ["status", "diverged", "diverged_epoch"]].tolist() == ["FINISHED", True, 4]
    assert runs.diverged.sum() == 4


def test_loader_reads_metrics_missing_from_the_curves_table_from_their_history(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logged = synthetic_runs().query("run_id == '10-1.0-0'")
    batch_cost = pd.DataFrame({"metric": "batch_cost", "step": [1, 50, 100], "value": [0.4, 0.3, 0.2]})
    with_batch_cost = pd.concat([logged, batch_cost.assign(**logged.iloc[0].drop(["metric", "step", "value"]))])
    parent = log_sweep(uri, logged)
    client = mlflow.MlflowClient(uri)
    (child,) = client.search_runs([client.get_experiment_by_name("study").experiment_id], "tags.status = 'finished'")
    client.log_batch(child.info.run_id, metrics=[Metric("batch_cost", r.value, 0, r.step) for r in batch_cost.itertuples()])
    loaded = load_runs("study", uri, sweep=parent)
    loaded["run_id"] = loaded.run_name
    pd.testing.assert_frame_equal(points(loaded), points(with_batch_cost))


def test_loader_reads_the_test_set_size_from_the_dataset_input(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = log_sweep(uri, synthetic_runs().query("run_id in ['10-1.0-0', '10-1.0-1']"))
    client = mlflow.MlflowClient(uri)
    logged = client.search_runs([client.get_experiment_by_name("study").experiment_id], "attributes.run_name = '10-1.0-0'")
    # as tracking.Recorder.log_inputs records the data of a run; the other run has no dataset input
    digits = Dataset(name="digits", digest="0" * 32, source_type="code", source="{}",
                     profile=json.dumps({"train": 1297, "validation": 250, "test": 250, "inputs": 64, "outputs": 10}))
    client.log_inputs(logged[0].info.run_id, [DatasetInput(digits, [InputTag("mlflow.data.context", "training")])])
    sizes = load_runs("study", uri, sweep=parent).drop_duplicates("run_id").set_index("run_name").test_size
    assert sizes["10-1.0-0"] == 250 and pd.isna(sizes["10-1.0-1"])


def test_loader_reads_one_sweep_or_the_whole_experiment(store):
    uri, logged, parent = store
    other = log_sweep(uri, logged.query("run_id == '10-1.0-0'"))
    assert load_runs("study", uri, sweep=other).run_id.nunique() == 1
    assert load_runs("study", uri, sweep=parent).run_id.nunique() == logged.run_id.nunique()
    assert load_runs("study", uri).run_id.nunique() == logged.run_id.nunique() + 1  # no parent run among them


def test_unknown_experiment_is_a_one_line_error_naming_the_known_ones(store):
    with pytest.raises(AnalysisError, match=r"experiment 'nope' not found at .*; experiments there: .*study"):
        load_runs("nope", store[0])


def test_experiment_without_training_runs_is_a_one_line_error(store):
    mlflow.MlflowClient(store[0]).create_experiment("empty")
    with pytest.raises(AnalysisError, match="experiment 'empty' holds no training runs"):
        load_runs("empty", store[0])


def test_unknown_sweep_is_a_one_line_error(store):
    with pytest.raises(AnalysisError, match="sweep: no run 'abc123'"):
        load_runs("study", store[0], sweep="abc123")


def test_untracked_metric_is_a_one_line_error_listing_the_tracked_ones():
    with pytest.raises(AnalysisError, match="metric 'grad_norm' not tracked in these runs; tracked: examples, steps"):
        require_metric(synthetic_runs(), "grad_norm")


def test_loader_reads_a_runs_per_update_series_from_its_table_as_its_metric_histories_hold_them(tmp_path, monkeypatch):
    import harness

    from analysis import loader
    from harness import names

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    harness.train_from_config(["data=blobs", "data.n=100", "model.hidden=[4]", "epochs=2", "measure.eval_every=3",
                               "measure.batch_cost_every=2", f"tracking.uri={uri}", "progress=false"], track=True)
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert [entry["path"] for entry in json.loads(run.data.tags["mlflow.loggedArtifacts"])] == [names.CURVES, names.SERIES]
    series = [key for key in run.data.metrics if key.endswith("_by_update") or key == "batch_cost"]
    histories = pd.DataFrame([(run.info.run_id, key, p.step, p.value) for key in series
                              for p in client.get_metric_history(run.info.run_id, key)],
                             columns=["run_id", "metric", "step", "value"])
    asked = []
    read_histories = loader.read_histories
    monkeypatch.setattr(loader, "read_histories", lambda client, run_id, metrics: asked.extend(metrics) or
                        read_histories(client, run_id, metrics))
    loaded = load_runs("harness", uri)
    assert not set(asked) & set(series)  # read from the table, not one history per metric
    assert len(histories) > 10 and {"train_cost_by_update", "batch_cost"} <= set(series)
    pd.testing.assert_frame_equal(points(loaded[loaded.metric.isin(series)]), points(histories))
