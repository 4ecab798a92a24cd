"""The harness's Hydra sweeper composes one config of each shape of job and gives every job a copy
that is exactly the config Hydra composes for it (in the launching process and in a worker), and
refines a study's η grid until it brackets the best η of every batch size; its summary warns of
runs that ran other code or saw other data than the rest of the sweep."""

import math
import pickle
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from analysis import summary
from analysis.loader import load_runs
from conftest import harness
from harness import sweep
from harness.config import CONF

# `python -m harness -m lr=1,2,3,4`, counting Hydra's compositions of a job's config
COUNTED = """
import atexit, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl

calls = []
original = ConfigLoaderImpl.load_configuration

def counted(self, *args, **kwargs):
    calls.append(kwargs.get("overrides") or args[1])
    return original(self, *args, **kwargs)

ConfigLoaderImpl.load_configuration = counted
atexit.register(lambda: print(f"compositions of a job: {sum('lr=1,2,3,4' not in overrides for overrides in calls)}"))
sys.argv = ["harness", "-m", "lr=1,2,3,4", "epochs=1", "progress=false"]
from harness.__main__ import cli
cli()
"""


def sweeper(arguments: list[str]) -> tuple:
    """A sweeper set up as Hydra sets it up for `python -m harness -m ARGUMENTS` (its config
    loader, the command's config), and the jobs it expands."""
    # imported once Hydra has scanned its plugins, which imports their modules anew
    from hydra_plugins.harness_sweeper import Composed, HarnessSweeper, expand

    config = compose("config", overrides=[a for a in arguments if "," not in a], return_hydra_config=True)
    config.hydra.sweep.dir  # noqa: B018 - resolved once, as Hydra's sweepers do before composing jobs
    plugin = HarnessSweeper(max_batch_size=None, params=None)
    plugin.config, plugin.composed = config, Composed(GlobalHydra.instance().config_loader())
    jobs = expand(plugin.composed, None, arguments)
    return plugin, jobs


SWEEPS = {
    "values of plain keys": ["lr=1,3", "seed=0,1", "batch_size=10,full"],
    "a study": ["+experiment=gd_vs_sgd", "lr=0.3,3"],
    "lists": ["model.hidden=[30],[10,10]", "lr=1,2"],
    "a config group": ["data=digits,mnist", "lr=1,2"],
    "a dict merged in": ["measure={grad_norm:true},{eval_every:5}", "lr=1,2"],
    "an interpolation": ["lr=${epochs},2", "epochs=1,3"],
    "a key set twice": ["lr=1,2", "++lr=5"],
    "a key added": ["+tracking.note=a,b", "lr=1,2"],
}


@pytest.mark.parametrize("arguments", SWEEPS.values(), ids=SWEEPS.keys())
def test_every_job_gets_the_config_hydra_composes_for_it(arguments):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plugin, jobs = sweeper(arguments)
        from hydra_plugins.harness_sweeper import without_hydra

        plugin.hand_over({"HARNESS_SWEEP": "a-parent-run", "HARNESS_JOBS": str(len(jobs))})
        for overrides in jobs:
            hydra = plugin.composed.loader.load_sweep_config(plugin.config, overrides)
            assert hydra.hydra.job.env_set.HARNESS_SWEEP == "a-parent-run"
            assert_same(plugin.composed.load_sweep_config(plugin.config, overrides), hydra)
            assert_same(plugin.composed.job_config(plugin.config, overrides), without_hydra(hydra))


def assert_same(config, oracle):
    """The same values, interpolations and schema: a value the schema refuses is refused by both."""
    from omegaconf.errors import ValidationError

    assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(oracle)
    assert OmegaConf.get_type(config) is OmegaConf.get_type(oracle) and OmegaConf.is_struct(config)
    for cfg in (config, oracle):
        with pytest.raises(ValidationError):
            cfg.epochs = "many"


def test_a_loader_sent_to_a_worker_process_carries_the_composed_shapes(monkeypatch):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plugin, jobs = sweeper(["lr=1,3"])
        plugin.compose(jobs[0])
        plugin.hand_over({"HARNESS_SWEEP": "a-parent-run"})  # as the sweeper's `add` does, then prepares
        plugin.composed.prepare(plugin.config, jobs)
        copy = pickle.loads(pickle.dumps(plugin.composed))
        monkeypatch.setattr(type(copy.loader), "load_sweep_config", lambda *args: pytest.fail("composed anew"))
        assert copy.load_sweep_config(plugin.config, jobs[1]).lr == 3.0


def test_a_sweep_composes_one_config_of_each_shape_and_copies_it_for_every_job(tmp_path):
    done = subprocess.run([sys.executable, "-c", COUNTED], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "4 jobs: 4 finished" in done.stdout
    # one for the sweeper's check, one for the launcher once the jobs' environment is set
    assert "compositions of a job: 2" in done.stdout


@pytest.mark.slow
def test_refinement_rounds_extend_the_lr_grid_until_it_brackets_the_best(tmp_path):
    result = harness("-m", "lr=0.3,1", "epochs=3", "hydra.sweeper.refine_rounds=4", "progress=false", cwd=tmp_path)
    runs = load_runs("harness", f"sqlite:///{tmp_path / 'mlflow.db'}")
    best = summary.study(runs).best.iloc[0]
    assert best.edge == "" and len(best.grid) > 2  # bracketed, by η the command line did not list
    assert runs.parent_run_id.nunique() == 1  # every round is one sweep
    assert "refining the η grid" in result.stdout


def tracked_run(client, experiment, name, commit, digest, host="node-a"):
    """A run as a job writes it: its code's tags, its data params and dataset input."""
    run_id = client.create_run(experiment, run_name=name, tags={"git_commit": commit, "git_dirty": "false",
                                                                 "host": host}).info.run_id
    client.log_param(run_id, "data.name", "digits")
    client.log_param(run_id, "data.root", f"/data/{host}")  # where the data lies may differ by node
    client.log_inputs(run_id, [DatasetInput(Dataset(name="digits", digest=digest, source_type="code", source="{}"),
                                            [InputTag("mlflow.data.context", "training")])])
    return client.get_run(run_id)


LAUNCHER = {"git_commit": "aaa", "git_dirty": "false"}


def test_runs_of_the_launching_code_and_one_dataset_raise_no_warning(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    runs = [tracked_run(client, experiment, f"lr={lr}", "aaa", "d1") for lr in (1, 3)]
    assert sweep.disagreements(LAUNCHER, runs) == []


def test_a_run_of_another_commit_is_named_with_its_host(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    runs = [tracked_run(client, experiment, "lr=1", "aaa", "d1"), tracked_run(client, experiment, "lr=3", "bbb", "d1", "node-b")]
    [warning] = sweep.disagreements(LAUNCHER, runs)
    assert "1 run(s) ran other code" in warning and "lr=3 on node-b" in warning and "lr=1" not in warning


def test_runs_of_the_same_data_settings_that_saw_other_data_are_named(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    runs = [tracked_run(client, experiment, "lr=1", "aaa", "d1"), tracked_run(client, experiment, "lr=3", "aaa", "d2", "node-b")]
    [warning] = sweep.disagreements(LAUNCHER, runs)
    assert "saw different data" in warning and "digest d2 by lr=3 on node-b" in warning


def best_of(grid: list[float], updates) -> "pd.DataFrame":
    """The report's best η at m = 8 (summary.best_lr) over `grid`, two seeds each, every run
    learned, reaching its targets in `updates(lr) + seed` updates: a fake objective."""
    import pandas as pd

    runs = [(f"{lr}/{seed}", lr, seed) for lr in grid for seed in (0, 1)]
    table = pd.DataFrame({"run_id": [r for r, _, _ in runs], "batch_size": 8, "lr": [lr for _, lr, _ in runs],
                          "outcome": summary.LEARNED_OUTCOME, "final_cost": 0.01})
    reached = pd.DataFrame({"run_id": table.run_id, "updates": [updates(lr) + seed for _, lr, seed in runs]})
    return summary.best_lr(table, [reached])


def rounds(grid: list[float], updates, interior: bool, most: int = 10) -> list[list[float]]:
    """The η each round adds, as the sweeper runs its rounds, until none is due."""
    from hydra_plugins.harness_sweeper import Refinement

    rule, added = Refinement(interior), []
    for _ in range(most):
        following = rule.next(best_of(grid, updates))
        if not following:
            break
        [(lrs, _)] = following.values()
        added.append(lrs)
        grid = sorted(grid + lrs)
    return added


def fastest_at(optimum: float):
    """Updates to target that grow with the distance of log η from log `optimum`."""
    return lambda lr: round(100 * (1 + abs(math.log(lr / optimum))))


def test_a_best_lr_inside_the_grid_gets_the_geometric_midpoints_with_its_neighbours():
    from hydra_plugins.harness_sweeper import Refinement

    following = Refinement(interior=True).next(best_of([0.3, 1, 3, 10], fastest_at(5)))
    assert following[8][0] == [float(f"{math.sqrt(1 * 3):.4g}"), float(f"{math.sqrt(3 * 10):.4g}")] == [1.732, 5.477]


def test_interior_refinement_follows_the_best_and_stops_once_a_round_finds_none_better():
    # best 3 of [0.3, 1, 3, 10]; then 5.477 (nearer 5); then its midpoints 4.054 and 7.401 are
    # both worse, so the best stays 5.477 and no round follows
    assert rounds([0.3, 1, 3, 10], fastest_at(5), interior=True) == [[1.732, 5.477], [4.054, 7.401]]


def test_interior_refinement_stops_after_one_round_when_the_best_holds():
    assert rounds([0.3, 1, 3, 10], fastest_at(3), interior=True) == [[1.732, 5.477]]


def test_without_interior_refinement_only_an_end_of_the_grid_is_extended():
    assert rounds([0.3, 1, 3, 10], fastest_at(5), interior=False) == []
    assert rounds([0.3, 1], fastest_at(5), interior=False) == [[3.333], [11.11]]  # a step of 1/0.3, then 3.333/1


def test_an_end_is_extended_first_then_the_interior_refined():
    # best 3 is the highest of [1, 3]: 9 follows; 3 stays best, now inside: √3 and √27; then
    # 5.196 is best: √(3 · 5.196) and √(5.196 · 9); neither beats it
    assert rounds([1, 3], fastest_at(5), interior=True) == [[9.0], [1.732, 5.196], [3.948, 6.838]]


def test_interior_refinement_without_rounds_is_one_line_naming_both_settings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "harness", "-m", "lr=1,3", "hydra.sweeper.refine_interior=true"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert ("hydra.sweeper.refine_interior: true needs hydra.sweeper.refine_rounds >= 1"
            in result.stderr.strip().splitlines()[-1])


def finals(client, experiment: str, name: str, **metrics) -> tuple:
    """A named run whose final metrics are `metrics`."""
    run_id = client.create_run(experiment, run_name=name).info.run_id
    client.log_batch(run_id, metrics=[Metric(key, value, 0, 1) for key, value in metrics.items()], synchronous=True)
    return name, client.get_run(run_id)


def test_the_best_run_is_chosen_on_validation_accuracy_not_on_test_accuracy(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    runs = [finals(client, experiment, "lr=1", validation_accuracy=0.95, test_accuracy=0.97),  # best on test
            finals(client, experiment, "lr=3", validation_accuracy=0.97, test_accuracy=0.96),  # best on validation
            finals(client, experiment, "lr=10", validation_accuracy=0.90, test_accuracy=0.91)]
    metric, name, run = sweep.best_on_validation(runs)
    assert (metric, name, run.data.metrics["test_accuracy"]) == ("validation_accuracy", "lr=3", 0.96)


def test_without_accuracies_the_best_run_has_the_lowest_validation_cost(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    runs = [finals(client, experiment, "lr=0.01", validation_cost=0.2, test_cost=0.1),  # best on test
            finals(client, experiment, "lr=0.1", validation_cost=0.1, test_cost=0.3)]
    metric, name, _ = sweep.best_on_validation(runs)
    assert (metric, name) == ("validation_cost", "lr=0.1")


def test_runs_without_validation_metrics_have_no_best_run(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep")
    assert sweep.best_on_validation([finals(client, experiment, "lr=1", train_cost=0.1, test_accuracy=0.9)]) is None
