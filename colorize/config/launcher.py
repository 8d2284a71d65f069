"""Checks of a sweep's launcher and sweeper settings (`hydra.launcher.*`, `hydra.sweeper.*`) that
Hydra's own schemas do not make (they check types only), run as the multirun starts (colorize's
sweep callback), before its parent run is opened or anything is submitted, and again by the
launcher itself. Without them a 0 failed later: in a traceback after the sweep's parent run was
made (n_jobs=0), or after a sweep of no trials (n_trials=0)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from colorize.errors import invalid

# (plugin, the end of its _target_, setting): (what passes, what is allowed); null passes (auto, or the default)
AUTO = ", or null (auto)"
COUNTS: dict[tuple[str, str, str], tuple[Callable[[int], bool], str]] = {
    ("launcher", "FusedLauncher", "n_jobs"): (lambda n: n >= 1, "must be an integer >= 1 (groups at once)" + AUTO),
    ("launcher", "FusedLauncher", "max_group"): (lambda n: n >= 0, "must be an integer >= 0 (0: no limit)" + AUTO),
    ("launcher", "JoblibLauncher", "n_jobs"): (lambda n: n != 0, "must be an integer >= 1, or -1 for every core "
                                               "(-2 all but one: joblib's n_jobs)"),
    ("sweeper", "OptunaSweeper", "n_trials"): (lambda n: n >= 1, "must be an integer >= 1"),
    ("sweeper", "OptunaSweeper", "n_jobs"): (lambda n: n >= 1, "must be an integer >= 1 (trials asked at once)"),
}


def count_error(plugin: str, params: Mapping[str, Any]) -> str | None:
    """The first refused count among `params` (hydra.<plugin>'s settings) in COUNTS' one-line format."""
    target = str(params.get("_target_", ""))
    for (kind, ends, key), (ok, allowed) in COUNTS.items():
        value = params.get(key) if kind == plugin and target.endswith(ends) else None
        if isinstance(value, int) and not isinstance(value, bool) and not ok(value):
            return str(invalid(f"hydra.{plugin}.{key}", value, allowed))
    return None


def multirun_error(hydra: Mapping[str, Any]) -> str | None:
    """The one line for a launcher or sweeper setting a multirun cannot start with, if any."""
    launcher, sweeper = hydra.get("launcher") or {}, hydra.get("sweeper") or {}
    return count_error("launcher", launcher) or count_error("sweeper", sweeper) or time_limit_error(launcher)


def check_multirun(hydra: Mapping[str, Any]) -> None:
    """SystemExit with `multirun_error`'s line (colorize-train checked it already; a multirun started
    otherwise, from Hydra's own API, meets it here)."""
    why = multirun_error(hydra)
    if why:
        raise SystemExit(f"colorize: error: {why}")


def time_limit_error(params: Mapping[str, Any]) -> str | None:
    """A time limit SLURM's notice (`signal_delay_s` ahead of it) would reach as the job starts: each
    attempt would stop at once, and the trial never train."""
    minutes, delay = params.get("timeout_min"), params.get("signal_delay_s")
    if minutes is not None and delay is not None and minutes * 60 <= delay:
        return str(invalid("hydra.launcher.timeout_min", minutes,
                           f"SLURM warns a job hydra.launcher.signal_delay_s={delay} s before its time limit, so "
                           f"every trial would be stopped as it starts; give more than {delay / 60:g} minutes, or a "
                           "shorter signal_delay_s"))
    return None


def check_time_limit(params: Mapping[str, Any]) -> None:
    """One line, before anything is submitted, for `time_limit_error` (the SLURM launcher's own check)."""
    why = time_limit_error(params)
    if why:
        raise SystemExit(f"colorize: error: {why}")
