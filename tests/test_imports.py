"""What each entry point imports: the network and the training loop alone, `--help` and a dry run
do without MLflow (its import takes longer than they do), Hydra or pandas where they need none."""

import subprocess
import sys

from conftest import REPO

HEAVY = ("mlflow", "hydra", "pandas")
LOADED = "import sys; print('loaded:', *(m for m in {heavy} if m in sys.modules))"
RUN_CLI = "import sys; sys.argv = ['harness', *{arguments}]; from harness.__main__ import cli\ntry: cli()\nexcept SystemExit: pass\n"


def loaded(code: str, cwd=REPO, heavy=HEAVY) -> list[str]:
    """The modules of `heavy` that a new interpreter running `code` has imported."""
    result = subprocess.run([sys.executable, "-c", f"{code}\n{LOADED.format(heavy=heavy)}"], cwd=cwd,
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[-1].split()[1:]


def test_importing_harness_for_the_network_and_training_brings_no_mlflow_hydra_or_pandas():
    code = "import harness, harness.train; harness.Network.from_sizes([2, 3, 1])"
    assert loaded(code) == []


def test_the_api_names_are_there_when_used():
    assert loaded("import harness; harness.compose", heavy=("hydra",)) == ["hydra"]


def test_help_brings_no_mlflow_or_pandas(tmp_path):
    assert loaded(RUN_CLI.format(arguments=["--help"]), cwd=tmp_path, heavy=("mlflow", "pandas")) == []


def test_a_dry_run_of_a_sweep_brings_no_mlflow_or_pandas(tmp_path):
    code = RUN_CLI.format(arguments=["-m", "lr=1,3", "epochs=2", "dry_run=true"])
    assert loaded(code, cwd=tmp_path, heavy=("mlflow", "pandas")) == []
    assert not (tmp_path / "mlflow.db").exists()
