"""The harness's Ray launcher (`launcher=ray`) as Hydra takes it: Hydra instantiates launchers
only from the `hydra_plugins` package, and imports every module of it at each start, so this
one imports Ray only when a sweep launches (as Hydra's own Ray plugin does). What it does, and
why, is in `harness/ray_launcher.py`."""

from typing import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RayLauncher(Launcher):
    """Takes the settings of Hydra's Ray plugin (`hydra.launcher.ray.init`, `.remote`)."""

    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from harness.ray_launcher import launch

        return launch(self, job_overrides, initial_job_idx)
