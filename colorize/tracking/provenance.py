"""Where a run was made: code version, library versions, machine, batch job. Logged as tags on every run.

MLflow's own context tags (``mlflow.user``, ``mlflow.source.name/type``, ``mlflow.source.git.*``) are
added by the tracking layer (:meth:`colorize.tracking.Tracker.create_run`), as ``mlflow.start_run``
would set them; these are what they lack: whether the checkout was dirty, the versions that decide
the numbers, and the CPU/GPU with its ISA.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from colorize import names

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


def scheduler_tags(env: dict[str, str] | None = None) -> dict[str, str]:
    """The SLURM job a run ran in, as `squeue` and `sacct` name it (an array task as ``12_3``), so
    that a trial's run leads to its job's accounting; nothing outside SLURM."""
    env = dict(os.environ) if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    elif env.get("SLURM_JOB_ID"):
        job = env["SLURM_JOB_ID"]
    else:
        return {}
    tags = {names.SLURM_JOB_TAG: job}
    if env.get("SLURM_CLUSTER_NAME"):
        tags["slurm_cluster"] = env["SLURM_CLUSTER_NAME"]
    return tags


def ray_tags() -> dict[str, str]:
    """The Ray task and node a run ran in (`hydra/launcher=ray`), as Ray's state API and dashboard
    name them; nothing outside a Ray task. Ray is never imported for it: a Ray worker has it loaded."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return {}
    context = ray.get_runtime_context()
    task = context.get_task_id()
    return {names.RAY_TASK_TAG: task, names.RAY_NODE_TAG: context.get_node_id()} if task else {}


def provenance_tags(device: torch.device | None = None) -> dict[str, str]:
    """Every provenance tag of a run on `device` (git, versions, machine, SLURM job or Ray task)."""
    return {**git_state(), **versions(), **machine(device), **scheduler_tags(), **ray_tags()}
