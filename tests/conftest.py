"""Shared fixtures: real Hydra composition, one real MLflow sqlite store per session, real faces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from colorize import names
from colorize.config import register_configs
from colorize.cores import available_cores
from colorize.paths import CONFIG_MODULE, faces_root

ROOT = Path(__file__).resolve().parents[1]
# every run's per-epoch metrics (colorize.names)
METRICS = [names.TRAIN_MSE, names.VAL_MSE, names.TRAIN_ERROR, names.VAL_ERROR, names.VAL_ACCURACY]

register_configs()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, a worker's training (in-process and in the commands it starts) takes the
    worker's share of the cores, through OMP_NUM_THREADS, which torch and `trainer.num_threads=0`
    honour: 2 workers whose commands each took a thread per core oversubscribed 2 cores, and 10 of the
    slowest tests took 377 s instead of 251 s. A test about the share itself drops the variable."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        share = max(1, available_cores() // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)
        if "torch" in sys.modules:  # already imported: it read the variable before it was set
            sys.modules["torch"].set_num_threads(share)


@pytest.fixture
def handlers():
    """Python's default handlers while the test runs, this process's own afterwards (SIGHUP: the
    default, not the SIG_IGN that `nohup .ci/run` leaves)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@contextmanager
def sigterm_inside(statement: str, nth: int = 1) -> Iterator[list[str]]:
    """A real SIGTERM, sent from a real hook of SQLAlchemy's engine as the `nth` statement that
    contains `statement` executes (in this process); yields the statements it was sent in (one, once
    it was)."""
    sent: list[str] = []
    seen = [0]

    def signal_mid_write(conn, cursor, executed, parameters, context, executemany):
        if statement in executed and not sent:
            seen[0] += 1
            if seen[0] == nth:
                sent.append(executed)
                signal.raise_signal(signal.SIGTERM)

    event.listen(Engine, "before_cursor_execute", signal_mid_write)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", signal_mid_write)


@pytest.fixture(scope="session")
def faces() -> Path:
    """The course dataset beside the project (or $COLORIZE_FACES_ROOT).

    Missing data skips the test locally; in CI (COLORIZE_REQUIRE_DATA=1) it fails.
    """
    root = faces_root()
    if not (root / "train" / "images").is_dir():
        message = f"course dataset not found at {root} (set COLORIZE_FACES_ROOT)"
        if os.environ.get("COLORIZE_REQUIRE_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store for the whole session (creating one costs ~6 s of migrations)."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    uri = f"sqlite:///{db}"
    MlflowClient(tracking_uri=uri).search_experiments()  # run the migrations once, up front
    return uri


@pytest.fixture
def make_cfg():
    """Compose the real `conf/train.yaml` with overrides, as `python -m colorize.train` would."""

    def _compose(*overrides: str, config_name: str = "train", return_hydra_config: bool = False):
        with initialize_config_module(CONFIG_MODULE):
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)

    return _compose


def run_cli(*args: str, module: str = "colorize.train", cwd: Path = ROOT, timeout: int = 600, env=None, drop=()):
    """Run `python -m <module> args...` in a subprocess; return the CompletedProcess. `drop` names
    environment variables to unset."""
    full_env = {k: v for k, v in {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def runs_in(uri: str, experiment: str):
    """(client, every run of the experiment; [] if it does not exist)."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client, ([] if exp is None else client.search_runs([exp.experiment_id]))


def only_run(client, experiment):
    """The experiment's one run (asserting there is exactly one)."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def run_script(name: str, *args: str, cwd: Path = ROOT, timeout: int = 600, env=None, drop=()):
    """Run one of colorize's console scripts (`colorize-train ...`) from this environment; `drop` names
    environment variables to unset."""
    full_env = {k: v for k, v in {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}.items() if k not in drop}
    exe = Path(sys.executable).parent / name
    return subprocess.run([str(exe), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(tmp: Path):
    """A real `mlflow server` on 127.0.0.1 (sqlite backend, local artifact root); returns (proc, uri)."""
    import time
    import urllib.request

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp}/server.db",
         "--artifacts-destination", str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(uri + "/health", timeout=2).read()
            return proc, uri
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("mlflow server exited")
            time.sleep(0.5)
    stop_process_group(proc)
    raise RuntimeError("mlflow server did not start in 120 s")


def stop_process_group(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_until(args, marker, sig, cwd: Path = ROOT, timeout: int = 300, module: str = "colorize.train",
              group: bool = False, nohup: bool = False, wrap: tuple[str, ...] = ()):
    """Start `python -m <module> args`; send `sig` once lines containing `marker` appeared
    (a string, or a list of strings to see in that order). `group`: to every process of the command,
    as a terminal's Ctrl-C is (the command runs in a process group of its own). `nohup`: started
    with SIGHUP ignored, as `nohup` does. `wrap`: the command that runs it (`unshare ...`), which
    gets the signal."""
    import time

    # A shell without job control starts background commands (`nohup .ci/run &`) with SIGINT
    # ignored, and Python keeps an inherited SIG_IGN: Ctrl-C would then never reach the run. Give
    # the child the default disposition, as a terminal's foreground job has (SIGHUP too, unless `nohup`).
    def foreground() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)

    proc = subprocess.Popen(
        [*wrap, sys.executable, "-m", module, *args], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=foreground, start_new_session=group,
    )
    pending = [marker] if isinstance(marker, str) else list(marker)
    lines, deadline, sent = [], time.time() + timeout, False
    for line in proc.stdout:
        lines.append(line)
        if pending and pending[0] in line:
            pending.pop(0)
        if not sent and not pending:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
            sent = True
        if time.time() > deadline:
            proc.kill()
            break
    proc.wait(timeout=60)
    assert sent, "".join(lines)[-3000:]
    return proc.returncode, "".join(lines)


# The command as a terminal's foreground job: a session of its own whose controlling terminal is the
# pseudo-terminal on its stdin, with SIGHUP and SIGINT as a terminal gives them (not as `nohup .ci/run &` left them).
TERMINAL = ("import fcntl, os, signal, sys, termios\n"
            "for s in (signal.SIGHUP, signal.SIGINT): signal.signal(s, signal.SIG_DFL)\n"
            "os.setsid()\n"
            "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
            "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")


def hang_up(args, marker, module: str = "colorize.train", cwd: Path = ROOT, env=None,
            timeout: int = 300) -> tuple[int, str]:
    """Run `python -m <module> args` in a terminal (a real pseudo-terminal) and hang it up once lines
    containing `marker` appeared (a string, or a list in that order), as a dropped SSH connection
    does: the kernel sends the command SIGHUP, then one more reaches every process of the command (the
    shell passes its own on). Returns the exit status and what the command wrote before the hang-up
    (what follows is lost with the terminal)."""
    import select
    import time

    master, terminal = os.openpty()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, "-c", TERMINAL, "-m", module, *args], cwd=cwd, env=env,
                            stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    pending = [marker] if isinstance(marker, str) else list(marker)
    out, at, deadline = "", 0, time.monotonic() + timeout
    try:
        while pending and time.monotonic() < deadline:
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                out += os.read(master, 65536).decode(errors="replace")
            except OSError:  # EIO: the command closed the terminal (it ended)
                break
            while pending and (found := out.find(pending[0], at)) >= 0:
                at = found + len(pending.pop(0))
    finally:
        os.close(master)  # the hang-up: the kernel sends SIGHUP to the terminal's session leader
    if not pending:
        try:
            os.killpg(proc.pid, signal.SIGHUP)  # the shell's, to the whole job
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not pending, out[-3000:]
    return proc.returncode, out
