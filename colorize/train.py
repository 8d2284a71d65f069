"""`python -m colorize.train [overrides]`: train one config, or sweep with `-m`."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from colorize.config import register_configs
from colorize.errors import ColorizeError
from colorize.experiment import JobContext, run_job
from colorize.paths import conf_dir

register_configs()


def job_context() -> JobContext:
    """This Hydra job's output folder and how many jobs run beside it."""
    hc = HydraConfig.get()
    parallel = hc.launcher.get("n_jobs", 1) if hc.mode.name == "MULTIRUN" else 1
    if not isinstance(parallel, int) or parallel < 1:  # joblib's n_jobs=-1: all cores
        parallel = 1
    return JobContext(output_dir=Path(hc.runtime.output_dir), parallel_jobs=parallel)


@hydra.main(config_path=str(conf_dir()), config_name="train")
def main(cfg: DictConfig) -> float:
    """Train and return the best val 12-margin error (what sweepers minimise)."""
    try:
        return run_job(cfg, job_context()).objective
    except ColorizeError as exc:
        logging.getLogger("colorize").debug("bad input", exc_info=True)
        raise SystemExit(f"colorize: error: {exc}") from None


if __name__ == "__main__":
    main()
