"""The harness's Hydra sweeper composes each job's config once (a launcher in the launching process
gets exactly the config it would have composed itself, a worker process composes its own), and
refines a study's η grid until it brackets the best η of every batch size; its summary warns of
runs that ran other code or saw other data than the rest of the sweep."""

import pickle
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from analysis import summary
from analysis.loader import load_runs
from conftest import harness
from harness import sweep
from harness.config import CONF

# `python -m harness -m lr=1,2,3`, counting Hydra's compositions of a config
COUNTED = """
import atexit, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl

calls = []
original = ConfigLoaderImpl.load_configuration

def counted(self, *args, **kwargs):
    calls.append(kwargs.get("overrides") or args[1])
    return original(self, *args, **kwargs)

ConfigLoaderImpl.load_configuration = counted
atexit.register(lambda: print(f"compositions of a job: {sum('lr=1,2,3' not in overrides for overrides in calls)}"))
sys.argv = ["harness", "-m", "lr=1,2,3", "epochs=1", "progress=false"]
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


def test_a_handed_over_config_is_the_config_a_launcher_would_compose():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plugin, jobs = sweeper(["lr=1,3", "batch_size=full", "+experiment=gd_vs_sgd"])
        configs = [plugin.compose(overrides) for overrides in jobs]
        plugin.hand_over(jobs, configs, {"HARNESS_SWEEP": "a-parent-run", "HARNESS_JOBS": "2"})
        for overrides in jobs:
            handed = plugin.composed.load_sweep_config(plugin.config, overrides)
            fresh = plugin.composed.loader.load_sweep_config(plugin.config, overrides)
            assert OmegaConf.to_yaml(handed) == OmegaConf.to_yaml(fresh)
            assert fresh.hydra.job.env_set == {"HARNESS_SWEEP": "a-parent-run", "HARNESS_JOBS": "2"}


def test_a_loader_sent_to_a_worker_process_composes_anew():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plugin, jobs = sweeper(["lr=1,3"])
        plugin.hand_over(jobs, [plugin.compose(overrides) for overrides in jobs], {})
        copy = pickle.loads(pickle.dumps(plugin.composed))
        assert copy.configs == {} and len(plugin.composed.configs) == 2
        assert copy.load_sweep_config(plugin.config, jobs[1]).lr == 3.0


def test_a_sequential_sweep_composes_each_job_once(tmp_path):
    done = subprocess.run([sys.executable, "-c", COUNTED], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 jobs: 3 finished" in done.stdout
    assert "compositions of a job: 3" in done.stdout


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
