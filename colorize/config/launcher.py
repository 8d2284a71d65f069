"""Checks of a sweep's launcher settings (`hydra.launcher.*`) that Hydra's own schemas do not make,
run as the multirun starts (colorize's sweep callback), before its parent run is opened or anything
is submitted, and again by the launcher itself."""

from __future__ import annotations

from typing import Any, Mapping

from colorize.errors import invalid


def check_time_limit(params: Mapping[str, Any]) -> None:
    """One line, before anything is submitted, for a time limit SLURM's notice (`signal_delay_s` ahead
    of it) would reach as the job starts: each attempt would stop at once, and the trial never train."""
    minutes, delay = params.get("timeout_min"), params.get("signal_delay_s")
    if minutes is not None and delay is not None and minutes * 60 <= delay:
        why = invalid("hydra.launcher.timeout_min", minutes,
                      f"SLURM warns a job hydra.launcher.signal_delay_s={delay} s before its time limit, so every "
                      f"trial would be stopped as it starts; give more than {delay / 60:g} minutes, or a shorter "
                      "signal_delay_s")
        raise SystemExit(f"colorize: error: {why}")
