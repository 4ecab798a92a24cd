"""The harness as a user installs it: a wheel (not an editable checkout) whose `harness` command
finds its configs and studies from any folder, and a folder of the user's own configs."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO, harness


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtual environment with the wheel built from this checkout installed, and the
    dependencies of this one (a .pth file names its site-packages; the checkout's own editable
    install there is not loaded, as .pth files are read only in site folders)."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(folder)],
                   check=True, capture_output=True, timeout=600)
    [wheel] = folder.glob("harness-*.whl")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    [site] = venv.glob("lib/python*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, capture_output=True, timeout=600)
    return venv / "bin"


def run(command: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(command), *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.mark.slow
def test_the_installed_command_trains_from_an_empty_folder_with_the_configs_of_the_wheel(installed, tmp_path):
    result = run(installed / "harness", "epochs=1", cwd=tmp_path)
    assert result.stdout.startswith("epoch 0/1: train_cost")
    located = run(installed / "python", "-c", "import harness.config as c; print(c.CONF)", cwd=tmp_path).stdout
    assert located.strip() == str(next(installed.parent.glob("lib/python*/site-packages")) / "harness" / "conf")


@pytest.mark.slow
def test_the_installed_command_finds_the_shipped_studies(installed, tmp_path):
    result = run(installed / "harness", "-m", "+experiment=lr_sweep", "dry_run=true", cwd=tmp_path)
    assert "27 jobs, training expected to take" in result.stdout
    assert "dry run: nothing was trained or tracked" in result.stdout


@pytest.mark.slow
def test_a_study_in_the_users_config_dir_runs_beside_the_shipped_ones(workdir):
    (workdir / "mine" / "experiment").mkdir(parents=True)
    (workdir / "mine" / "experiment" / "my_study.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      lr: 1,3\nepochs: 1\n")
    result = harness("-m", "--config-dir", "mine", "+experiment=my_study", "dry_run=true", cwd=workdir)
    assert "2 jobs, training expected to take" in result.stdout and "dry run: nothing was trained" in result.stdout
    wrong = harness("--config-dir", "mine", "+experiment=nope", cwd=workdir, check=False)
    assert "my_study" in wrong.stderr and "lr_sweep" in wrong.stderr and wrong.returncode == 2
