"""A Hydra job's context (output folder, MLflow parent, parallel peers, Optuna trial), and the
entrypoints' one-line errors: shared by `colorize-train` and the fused launcher."""

from __future__ import annotations

import errno
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from omegaconf import DictConfig

from colorize.errors import ColorizeError
from colorize.names import OPTUNA_STUDY_TAG, OVERRIDES_TAG, TRIAL_KEY, TRIAL_TAG
from colorize.cores import available_cores, parallel_jobs
from colorize.tracking.sweep_callback import parent_run_id

if TYPE_CHECKING:
    from colorize.job import JobContext


def job_context(cfg: DictConfig, hc: Any, tags: dict | None = None) -> JobContext:
    """The job's output folder, MLflow parent run, parallel peers and Optuna trial link, from its
    Hydra config `hc` (``HydraConfig.get()``, or a fused launcher's member's ``config.hydra``)."""
    multirun = hc.mode.name == "MULTIRUN"
    preset = hc.runtime.choices.get("sweep")
    if preset and not multirun:  # only when multirun was switched off explicitly (hydra.mode=RUN)
        raise ColorizeError(f"sweep={preset} is a multirun preset: it cannot run with hydra.mode=RUN")
    storage, study = hc.sweeper.get("storage"), hc.sweeper.get("study_name")
    if cfg.get(TRIAL_KEY) is not None and not (storage and study):  # refused before any run is made
        raise ColorizeError(f"{TRIAL_KEY}={cfg.get(TRIAL_KEY)} needs the study's storage and name: "
                            "set hydra.sweeper.storage and hydra.sweeper.study_name")
    from colorize.job import JobContext  # torch, MLflow: once the input has passed the checks above

    return JobContext(
        output_dir=Path(hc.runtime.output_dir),
        parent_run_id=parent_run_id(hc.sweep.dir) if multirun else None,
        parallel_jobs=peers(cfg, hc.launcher) if multirun else 1,
        tags={OVERRIDES_TAG: " ".join(hc.overrides.task), **({TRIAL_TAG: hc.job.num + 1} if multirun else {}),
              # the trial that runs it now (a retry resumes the run of the trial it retries, whose param stays)
              **({OPTUNA_STUDY_TAG: study, TRIAL_KEY: cfg.get(TRIAL_KEY)} if cfg.get(TRIAL_KEY) is not None else {}),
              **(tags or {})},
        overrides=list(hc.overrides.task),
        sweeper={"storage": storage, "study_name": study} if storage and study else {},
    )


def peers(cfg: DictConfig, launcher: DictConfig) -> int:
    """Jobs that run at once beside this one (their threads share the cores): the launcher's
    `n_jobs`; for the fused launcher's auto (null), what it resolves on this job's device."""
    n_jobs = launcher.get("n_jobs", 1)
    if n_jobs is not None:
        return parallel_jobs(n_jobs)
    from colorize.launch.fusing import auto_settings, job_device

    return auto_settings(job_device(cfg), available_cores(), None, None)[0]


@contextmanager
def errors_as_lines(interrupts: bool = True) -> Iterator[None]:
    """Bad input, a full disk and an interrupt end the process with one line, not a traceback (an
    open run has already been ended FAILED or KILLED by then). `interrupts` False: an interrupt goes
    on as KeyboardInterrupt (a loky worker's group returns on it)."""
    try:
        yield
    except ColorizeError as exc:
        logging.getLogger("colorize").debug("bad input", exc_info=True)
        raise SystemExit(f"colorize: error: {exc}") from None
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        raise SystemExit(f"colorize: error: no space left on device{where}: free some space "
                         "(an open run is ended FAILED, failure=disk_full)") from None
    except KeyboardInterrupt as exc:
        if not interrupts:
            raise
        raise SystemExit(f"colorize: interrupted ({str(exc) or 'SIGINT'}); the last checkpoint is kept") from None
