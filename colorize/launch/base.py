"""What colorize's own launchers (fused, ray) share, as Hydra's launchers each repeat it: the setup
Hydra calls, the sweep's logging and folder, and each job's composed config; and the one line the
cluster launchers (ray, slurm) end a sweep with when a trial's task or job is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hydra.core.utils import configure_log, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict


class SweepLauncher(Launcher):
    """A Hydra launcher's set-up: the sweep's config, task function and context, as Hydra hands them
    (to `setup`, before it launches anything)."""

    config: DictConfig
    task_function: TaskFunction
    hydra_context: HydraContext

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def open_sweep(self) -> None:
        """Hydra's globals and logging in this process, and the sweep's folder."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose,
                      execution_whitelist=self.hydra_context.execution_whitelist)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

    def job_config(self, idx: int, overrides: Sequence[str], job_id: str) -> DictConfig:
        """Job `idx`'s config: the sweep's, composed with its overrides, numbered `idx`, id `job_id`."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id, config.hydra.job.num = job_id, idx
        return config


def lost_trials(lost: Sequence[str]) -> str:
    """The line that ends a sweep whose trials ended without a result (each named in `lost`); the sweep
    callback then ends the parent run KILLED (colorize/tracking/parent_run.py)."""
    return (f"colorize: error: {'; '.join(lost)}. The trial's run keeps its last checkpoint: "
            "run the same command again to resume it")
