"""One MLflow parent run per Hydra multirun, with a summary of its trials at the end.

The parent run's id is written to ``<sweep dir>/mlflow_parent_run_id`` so that every job -- in
this process, in joblib workers or on other machines sharing the folder -- nests its run under it.

Hydra builds its callbacks for every command, a single run and a refused one included, so this
module is the light adapter: the work (and MLflow, torch) is in colorize/tracking/parent_run.py,
imported when a multirun starts.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from colorize.errors import ColorizeError

log = logging.getLogger("colorize")

PARENT_FILE = "mlflow_parent_run_id"


def parent_run_id(sweep_dir: str | Path) -> Optional[str]:
    """The parent run of the multirun whose folder is `sweep_dir`, if one was opened."""
    path = Path(sweep_dir) / PARENT_FILE
    return path.read_text().strip() if path.is_file() else None


class MlflowSweepCallback(Callback):
    """Opens the parent run when a multirun starts; summarises and closes it when it ends."""

    def __init__(self) -> None:
        self.run_id: Optional[str] = None  # the parent run this multirun opened (none if it was refused)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from colorize.config.launcher import check_multirun
        from colorize.interrupts import install as install_interrupts
        from colorize.interrupts import uninterrupted
        from colorize.tracking.parent_run import open_parent

        # SIGTERM as Ctrl-C from the start, whatever the launcher: the sweep's `finally` then ends its
        # parent run KILLED (before, it was installed only once a trial ran in this process: a SLURM
        # or a loky sweep's process killed while it waited left its parent run RUNNING)
        install_interrupts()
        check_multirun(config.hydra)  # a refused setting: one line, and no parent run left behind
        # an interrupt meanwhile waits until the parent run is known and its folder made: then
        # on_multirun_end, which Hydra calls on the way out, ends it KILLED (not left RUNNING)
        with uninterrupted():
            try:
                self.run_id = open_parent(config)
            except ColorizeError as exc:  # Hydra would warn and go on, to fail in a traceback (a store that
                raise SystemExit(f"colorize: error: {exc}") from None  # cannot be made, say)
            sweep_dir = Path(config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            (sweep_dir / PARENT_FILE).write_text(self.run_id)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """One progress line per trial; never fails the trial."""
        run_id = parent_run_id(config.hydra.sweep.dir)
        if run_id is None:
            return
        try:
            from colorize.tracking.parent_run import progress_line

            line = progress_line(config, run_id)
        except Exception as exc:  # progress is a courtesy: a store hiccup must not stop the trial
            log.debug("no progress line: %s", exc)
            return
        log.info("%s", line)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:  # never the folder's file: a refused multirun must not end a live one's run
            return
        from colorize.tracking.parent_run import close_parent

        # Hydra calls this in a `finally`: an error on its way out of the sweep is the one being handled
        close_parent(config, self.run_id, sys.exc_info()[1])
