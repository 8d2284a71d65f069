"""Shared plumbing for the argparse tools (report, predict, evaluate, study)."""

from __future__ import annotations

import argparse
import logging
import sys
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
