"""`python -m colorize.train [overrides]`: train one config, or sweep with `-m`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from colorize.config import TRUSTED_TARGETS, register_configs, to_object
from colorize.config.compose import check_command_line
from colorize.errors import ColorizeError
from colorize.interrupts import install as install_interrupts
from colorize.launch.context import errors_as_lines, job_context
from colorize.paths import CONFIG_MODULE
from colorize.tracking.links import ui_link

if TYPE_CHECKING:
    from colorize.job import JobResult

register_configs()


def where_to_look(result: JobResult, output_dir: Path, uri: str) -> str:
    """The last lines of a single run: its figure, and how to open the run in the MLflow UI."""
    lines = [f"samples: {output_dir / 'samples.png'}"] if (output_dir / "samples.png").is_file() else []
    link = ui_link(uri, result.experiment_id, result.run_id)
    lines.append(f"run: {link}" if uri.startswith(("http://", "https://")) else f"browse: {link}")
    return "\n".join(lines)


@hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name="train", execution_whitelist=TRUSTED_TARGETS)
def main(cfg: DictConfig) -> float:
    """Train and return the best val 12-margin error (what sweepers minimise; NaN if diverged)."""
    install_interrupts()  # SIGTERM as Ctrl-C; neither cuts a store call short (colorize/interrupts.py)
    with errors_as_lines():
        # Bad input fails before torch, MLflow and matplotlib are imported (seconds of a process's start)
        to_object(cfg)
        ctx = job_context(cfg, HydraConfig.get())
        from colorize.job import run_job

        result = run_job(cfg, ctx)
        single = ctx.parent_run_id is None and HydraConfig.get().mode != RunMode.MULTIRUN
        if single and result.diverged:  # a sweep goes on past a diverged trial; a single run fails
            raise ColorizeError(f"run {result.run_id}: {result.diverged} (the run is FAILED); try a lower optimizer.lr")
        if single:
            print(where_to_look(result, ctx.output_dir, cfg.tracking.uri))
        return result.objective


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
    try:  # one line for a bad key, type or option, before Hydra makes the run's folder
        check_command_line(sys.argv[1:])
    except ColorizeError as exc:
        raise SystemExit(f"colorize: error: {exc}") from None
    try:
        main()
    except KeyboardInterrupt as exc:  # a sweep's, outside its trials (a trial's own: errors_as_lines)
        raise SystemExit(f"colorize: interrupted ({str(exc) or 'SIGINT'}): the sweep's parent run and its "
                         "trials' runs end KILLED, their last checkpoints kept; run the same command again "
                         "to resume it") from None


if __name__ == "__main__":
    cli()
