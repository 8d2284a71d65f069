"""What went wrong with a store or a disk, said in one line, and the runs such failures leave open.

- :func:`failure_kind` names why a run ended (the `failure` tag): ``disk_full``, ``store_readonly``,
  ``store_error``, ``error`` ...;
- :func:`store_problem` turns an exception from opening or writing a store into one line that names
  the URI and what to do;
- a run that could not be ended because its store refused the write leaves :data:`END_FILE` in its
  output folder; the next command that opens the store ends it as that file says
  (:func:`recovered_ending`), and a run whose process is simply gone ends KILLED.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any, Optional

END_FILE = "run_end.json"  # {"run_id", "status", "failure"}: how a run should have ended

# the database drivers a store URI can name, and the package that provides each
DRIVERS = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pymysql": "pymysql",
           "MySQLdb": "mysqlclient", "pyodbc": "pyodbc"}
SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file")


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from or during (MLflow wraps sqlalchemy, which wraps sqlite3)."""
    return [e for e in (exc, exc.__cause__, exc.__context__) if e is not None]


def _text(exc: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}" for e in _chain(exc)).lower()


def failure_kind(exc: BaseException) -> str:
    """The `failure` tag of a run that ended on `exc`."""
    if any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in _chain(exc)):
        return "disk_full"
    text = _text(exc)
    if "disk is full" in text or "no space left" in text:
        return "disk_full"
    if "readonly database" in text or "read-only" in text or "permission denied" in text:
        return "store_readonly"
    if any(word in text for word in ("mlflow", "sqlite", "sqlalchemy", "database", "connection")):
        return "store_error"
    return "error"


def check_uri(uri: str) -> None:
    """Refuse, in one line, a tracking URI that names no kind of store MLflow has."""
    from colorize.errors import ColorizeError

    scheme, sep, rest = uri.partition("://")
    base = scheme.split("+")[0].lower()
    if not sep and ":" not in uri:  # a plain folder: MLflow's file store
        return
    if not sep or base not in SCHEMES or not rest.strip("/") or " " in uri:
        raise ColorizeError(
            f"tracking URI {uri!r} is not an MLflow store: use sqlite:///path/mlflow.db, "
            "postgresql+psycopg://user@host/db, mysql://... or http(s)://host:port (a tracking server)"
        )


def store_problem(uri: str, exc: BaseException) -> str:
    """One line for an exception raised while opening or writing the store at `uri`."""
    missing = _missing_driver(exc)
    if missing:
        return f"MLflow store {uri!r} needs the database driver {missing!r}: pip install '{DRIVERS[missing]}'"
    kind, text = failure_kind(exc), _text(exc)
    path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri
    if kind == "disk_full":
        return f"no space left on the device of MLflow store {path!r}: free some space, nothing was tracked"
    if kind == "store_readonly":
        return f"MLflow store {path!r} is read-only: make it writable, or pass another tracking.uri / --uri"
    if "not a database" in text or "malformed" in text:
        return f"{path!r} is not an MLflow database (corrupt, or another file): move it away, or pass another store"
    if "locked" in text:
        return f"MLflow store {path!r} stayed locked by another process: retry when it is done"
    first = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    return f"cannot use MLflow store {uri!r}: {first}"


def _missing_driver(exc: BaseException) -> Optional[str]:
    for e in _chain(exc):
        module = (e.name or "").split(".")[0] if isinstance(e, ImportError) else ""
        if module in DRIVERS:
            return module
    return None


def write_end_file(output_dir: Optional[str], run_id: str, status: str, failure: str) -> None:
    """Leave word in the run's folder of how it should have ended (its store refused the write)."""
    if not output_dir:
        return
    try:
        (Path(output_dir) / END_FILE).write_text(json.dumps({"run_id": run_id, "status": status,
                                                             "failure": failure}))
    except OSError:
        pass  # the folder's disk may be the full one: the run then ends KILLED (process_gone) later


def recovered_ending(run: Any, output_dir_tag: str) -> tuple[str, str]:
    """(status, failure) for an orphaned RUNNING run: what its folder's END_FILE says, else KILLED."""
    path = Path(run.data.tags.get(output_dir_tag, "")) / END_FILE
    try:
        saved = json.loads(path.read_text())
        if saved.get("run_id") == run.info.run_id:
            return saved["status"], saved["failure"]
    except (OSError, ValueError, KeyError):
        pass
    return "KILLED", "process_gone"
