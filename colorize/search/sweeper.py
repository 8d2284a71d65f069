"""`hydra/sweeper=colorize_optuna`: Hydra's Optuna sweeper, extended for pruning (a Hydra plugin
registered through the `hydra.plugins` entry point in pyproject.toml).

Four additions to the released plugin, nothing else changes:
* every launched job gets the override ``optuna_trial=<number>`` so that it can report per-epoch
  values to its own trial and consult the pruner (see :mod:`colorize.search.pruning`);
* the study's RDB storage is a :class:`colorize.search.storage.PruningAwareStorage`, which records trials
  that the job pruned as PRUNED (not COMPLETE/FAIL), with their last reported value;
* trials left RUNNING by a killed sweep are failed and queued again: at once when their process on
  this host is gone, and on any host once Optuna's heartbeat has been silent for its grace period
  (their MLflow runs then end KILLED);
* when the study already holds trials (the same command run again resumes it), the seeded sampler
  is re-seeded with ``seed + number of trials so far``, so the new trials are new configurations
  rather than a replay of the first ones -- and still reproducible.

This module is the plugin, which Hydra imports at every start-up: it imports no optuna. The
additions live in colorize/search/optuna_sweep.py, imported when the sweeper is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


class ColorizeOptunaSweeper(OptunaSweeper):
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
    ) -> None:
        from colorize.search.optuna_sweep import PruningSweeperImpl  # optuna: only when this sweeper runs
        from colorize.search.storage import open_storage

        super().__init__(
            sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
            custom_search_space, params,
        )
        impl = PruningSweeperImpl(
            self.sweeper.sampler,  # already instantiated by the parent
            direction,
            open_storage(storage) if isinstance(storage, str) else storage,
            study_name,
            n_trials,
            n_jobs,
            max_failure_rate,
            custom_search_space,
            params,
        )
        seed = OmegaConf.select(sampler, "seed") if isinstance(sampler, DictConfig) else None
        if seed is not None:
            impl.reseed = lambda offset: instantiate(
                OmegaConf.merge(sampler, {"seed": int(seed) + offset}),
                _execution_whitelist_=("optuna.samplers.*", "hydra_plugins.hydra_optuna_sweeper.*"),
            )
        self.sweeper = impl


@dataclass
class ColorizeOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "colorize.search.sweeper.ColorizeOptunaSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="colorize_optuna", node=ColorizeOptunaSweeperConf, provider="colorize"
)
