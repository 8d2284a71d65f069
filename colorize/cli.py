"""Shared plumbing for the argparse tools (report, predict, evaluate, study)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from colorize.errors import ColorizeError


def run_tool(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Run a tool's main; a ColorizeError becomes one line on stderr and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        code = main(argv)
    except ColorizeError as exc:
        print(f"colorize: error: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argparse parser whose --help prints the tool's module docstring as written."""
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


REPORT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # one folder, not hidden, '.' or '..'


def check_report_name(name: str) -> None:
    """One line for a report name (--name) that is not one plain folder name: it names the report's
    folder under outputs/report/ and its MLflow artifact path (report/<name>), which MLflow refuses
    to let resolve elsewhere (`../x`) -- once only after the study had run."""
    if not REPORT_NAME.fullmatch(name):
        raise ColorizeError(f"--name {name!r} is invalid: must be one folder name of letters, digits, '_', '-' "
                            "and '.' (not starting with '.')")


def make_folder(folder: Path, option: str = "--out") -> None:
    """A tool's output folder, made once its input has passed and before its work: one that cannot be
    made (a file in the way, a read-only place) is one line naming `option`, not a traceback later."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ColorizeError(f"{option} {str(folder)!r} is invalid: cannot make that folder ({exc.strerror})") from None
