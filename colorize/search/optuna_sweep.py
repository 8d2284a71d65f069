"""The Optuna side of `hydra/sweeper=colorize_optuna` (colorize/search/sweeper.py): Hydra's
OptunaSweeperImpl with the trial override, the re-seeded sampler on a resumed study, and the
recovery of trials a killed sweep left RUNNING.

Kept apart from the plugin class, as Hydra's own Optuna sweeper keeps its `_impl`: Hydra imports
every plugin at start-up, so `sweeper.py` must not import optuna (a quarter of a second on every
`colorize-train`, however it ends); this module is imported only when a sweep of this sweeper runs.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence

from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl

from colorize import names


class PruningSweeperImpl(OptunaSweeperImpl):
    """Hydra's OptunaSweeperImpl, plus the trial override, recovery and re-seeding above."""

    reseed: Optional[Callable[[int], Any]] = None  # seed offset -> a fresh sampler
    beats: Sequence[Any] = ()  # the Heartbeats of the batch under way

    def _configure_trials(self, trials: list, *args: Any) -> Sequence[Sequence[str]]:
        overrides = super()._configure_trials(trials, *args)
        self._beat_for(trials)
        return [tuple(o) + (f"{names.TRIAL_KEY}={t.number}",) for o, t in zip(overrides, trials)]

    def _beat_for(self, trials: list) -> None:
        """Beat for this batch's trials (the last batch's were told): a trial whose job has not started
        yet is this process's, and if the sweep dies on a host that does not come back, its silence
        is how any other sweep finds it (its job, once started, beats too)."""
        from colorize.search.recovery import Heartbeat
        from colorize.search.storage import keeps_heartbeat, trial_id

        Heartbeat.stop_all(self.beats)
        self.beats = [Heartbeat(self.storage, trial_id(t)) for t in trials] if keeps_heartbeat(self.storage) else []

    def sweep(self, arguments: list[str]) -> None:
        from colorize.search.recovery import recover
        from colorize.tracking.store import Tracker

        assert self.config is not None  # Hydra's setup, before the sweep
        recover(self.storage, self.study_name, Tracker.from_config(self.config.tracking))
        done = existing_trials(self.storage, self.study_name)
        if done and self.reseed is not None:
            self.sampler = self.reseed(done)
        with warnings.catch_warnings():  # the heartbeat is meant for ask-and-tell too: the jobs send it
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
            try:
                return super().sweep(arguments)
            finally:
                self._beat_for([])


def existing_trials(storage: Any, study_name: Optional[str]) -> int:
    """Trials already in the named study (0 if it does not exist yet or lives in memory)."""
    from colorize.search.storage import existing_study

    study = existing_study(storage, study_name)
    return 0 if study is None else len(study.trials)
