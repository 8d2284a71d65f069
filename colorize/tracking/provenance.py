"""Where a run was made: code version, library versions, machine. Logged as tags on every run.

MLflow's own context tags (``mlflow.user``, ``mlflow.source.name/type``, ``mlflow.source.git.*``) are
added by the tracking layer (:meth:`colorize.tracking.Tracker.create_run`), as ``mlflow.start_run``
would set them; these are what they lack: whether the checkout was dirty, the versions that decide
the numbers, and the CPU/GPU with its ISA.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "hydra-core", "optuna", "mlflow", "numpy")
CHECKOUT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=CHECKOUT, capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise OSError(proc.stderr.strip())
    return proc.stdout.strip()


def git_state() -> dict[str, str]:
    """The commit of the checkout colorize runs from, and whether it had uncommitted changes."""
    try:
        return {"git_commit": _git("rev-parse", "HEAD"),
                "git_dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower()}
    except (OSError, subprocess.SubprocessError):  # an installed wheel, or no git
        return {"git_commit": "unknown", "git_dirty": "unknown"}


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[f"version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[f"version.{name}"] = "not installed"
    out["version.python"] = platform.python_version()
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device | None = None) -> dict[str, str]:
    tags = {"cpu": cpu_name(), "cpu_isa": torch.backends.cpu.get_cpu_capability()}
    if device is not None and device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        tags["gpu"] = f"{torch.cuda.get_device_name(device)} (sm{major}{minor})"
    return tags


def provenance_tags(device: torch.device | None = None) -> dict[str, str]:
    """Every provenance tag of a run on `device` (git, versions, machine)."""
    return {**git_state(), **versions(), **machine(device)}
