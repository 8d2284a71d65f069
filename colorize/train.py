"""`python -m colorize.train [overrides]`: train one config, or sweep with `-m`."""

from __future__ import annotations

import errno
import logging
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from colorize.config import TRUSTED_TARGETS, TrainConfig, build, register_configs
from colorize.errors import ColorizeError
from colorize.job import JobContext, JobResult, run_job
from colorize.names import OPTUNA_STUDY_TAG, OVERRIDES_TAG, TRIAL_KEY, TRIAL_TAG
from colorize.paths import CONFIG_MODULE, DEFAULT_STORE
from colorize.training.runtime import parallel_jobs
from colorize.tracking.sweep_callback import parent_run_id

register_configs()


def job_context(cfg: DictConfig) -> JobContext:
    """This Hydra job's output folder, MLflow parent run, parallel peers and Optuna trial link."""
    hc = HydraConfig.get()
    multirun = hc.mode.name == "MULTIRUN"
    preset = hc.runtime.choices.get("sweep")
    if preset and not multirun:  # only when multirun was switched off explicitly (hydra.mode=RUN)
        raise ColorizeError(f"sweep={preset} is a multirun preset: it cannot run with hydra.mode=RUN")

    def extra_callbacks(conf: TrainConfig) -> list:
        if conf.optuna_trial is None:
            return []
        storage, study = hc.sweeper.get("storage"), hc.sweeper.get("study_name")
        if not storage or not study:
            raise ColorizeError(
                f"optuna_trial={conf.optuna_trial} needs the study's storage and name: "
                "set hydra.sweeper.storage and hydra.sweeper.study_name"
            )
        from colorize.search.pruning import TrialReporter

        return [TrialReporter(storage, study, conf.optuna_trial, build(cfg.pruner))]

    return JobContext(
        output_dir=Path(hc.runtime.output_dir),
        parent_run_id=parent_run_id(hc.sweep.dir) if multirun else None,
        parallel_jobs=parallel_jobs(hc.launcher.get("n_jobs", 1)) if multirun else 1,
        tags={OVERRIDES_TAG: " ".join(hc.overrides.task), **({TRIAL_TAG: hc.job.num + 1} if multirun else {}),
              **({OPTUNA_STUDY_TAG: hc.sweeper.study_name} if cfg.get(TRIAL_KEY) is not None else {})},
        overrides=list(hc.overrides.task),
        extra_callbacks=extra_callbacks,
    )


def where_to_look(result: JobResult, output_dir: Path, uri: str) -> str:
    """The last lines of a single run: its figure, and how to open the run in the MLflow UI."""
    lines = [f"samples: {output_dir / 'samples.png'}"] if (output_dir / "samples.png").is_file() else []
    page = f"#/experiments/{result.experiment_id}/runs/{result.run_id}"
    if uri.startswith(("http://", "https://")):
        lines.append(f"run: {uri.rstrip('/')}/{page}")
    else:
        ui = "mlflow ui" if uri == DEFAULT_STORE else f"mlflow ui --backend-store-uri {uri}"
        lines.append(f"browse: {ui} --port 5000, then open http://127.0.0.1:5000/{page}")
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM behaves like Ctrl-C: checkpoint kept, run marked KILLED, non-zero exit."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name="train", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> float:
    """Train and return the best val 12-margin error (what sweepers minimise; NaN if diverged)."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        ctx = job_context(cfg)
        result = run_job(cfg, ctx)
        single = ctx.parent_run_id is None and HydraConfig.get().mode.name != "MULTIRUN"
        if single and result.diverged:  # a sweep goes on past a diverged trial; a single run fails
            raise ColorizeError(f"run {result.run_id}: {result.diverged} (the run is FAILED); try a lower optimizer.lr")
        if single:
            print(where_to_look(result, ctx.output_dir, cfg.tracking.uri))
        return result.objective
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
        raise SystemExit(f"colorize: interrupted ({str(exc) or 'SIGINT'}); the last checkpoint is kept") from None


def cli() -> None:
    """The command line: a sweep preset (`sweep=...`) implies multirun, so `-m` is optional.

    (A preset cannot say so itself: Hydra only takes hydra.mode from the primary config or the
    command line.)
    """
    # a log line that cannot be written (a full disk) must not print a traceback: the error that
    # follows says it in one line
    logging.raiseExceptions = False
    argv = sys.argv[1:]
    if any(a.startswith("sweep=") for a in argv) and not {"-m", "--multirun"} & set(argv) \
            and not any(a.startswith("hydra.mode=") for a in argv):
        sys.argv[1:] = ["--multirun", *argv]
    main()


if __name__ == "__main__":
    cli()
