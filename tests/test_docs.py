"""Docs that cannot drift: every `colorize-train` command in README.md and docs/**/*.md composes
(in-process, with Hydra's compose API, and validates as a run would), and every option the docs give
another `colorize-*` command is one its `--help` lists (checked in tests/test_cli.py, beside the
tools' own options, so that each `--help` runs once).

Rules for what the docs may write:
- the commands are the lines of ```bash blocks (a `\\` continues a line; `# ...` is a comment; a
  line's first command is checked, up to `&`, `&&`, `|` or `;`);
- a `<placeholder>` (`<run id>`, `<parent run id>`) stands for a value the reader has: it is
  replaced by the word `placeholder` (composition checks the key and its type, not that a run exists);
- a sweep (`optimizer.lr=0.1,0.01`, `-m`) composes its first job; Hydra's own flags (`--cfg job`)
  are dropped, and shell completion (`-sc install=bash`) is not a run;
- a command pinned to an old commit ends with `# pinned: <commit>`, and is skipped.
"""

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from colorize.config import to_object
from colorize.paths import CONFIG_MODULE
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# the commands besides colorize-train
TOOLS = ("colorize-study", "colorize-report", "colorize-predict", "colorize-evaluate", "colorize-register")
WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i"}  # Hydra flags that take a value


def overrides_of(args: list[str]) -> list[str]:
    """The Hydra overrides of a command line: its flags (`-m`, `--cfg job`, `--help`) dropped."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in WITH_VALUE
        else:
            out.append(arg)
    return out


def commands(path: Path) -> list[tuple[str, list[str]]]:
    """(`file:line`, argv) of every command line in the file's bash blocks (unpinned)."""
    found, inside, pending, start = [], False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if not inside:
            continue
        if not pending:
            start = number
        pending += line.rstrip("\\").strip() + " "
        if line.rstrip().endswith("\\"):
            continue
        text, pending = pending.strip(), ""
        if "# pinned:" in text:
            continue
        code = re.split(r"\s(?:&&|\|\||\||;|&)(?:\s|$)", text.split(" #")[0] + " ")[0]  # the first command
        argv = shlex.split(re.sub(r"<[^>]+>", "placeholder", code))
        while argv and re.match(r"^[A-Z_]+=", argv[0]):  # ENV=value before the command
            argv.pop(0)
        as_module = argv[:2] == ["python", "-m"] and argv[2].startswith("colorize")
        if argv and (argv[0].startswith("colorize-") or as_module):
            found.append((f"{path.relative_to(ROOT)}:{start}", argv))
    return found


ALL = [c for doc in DOCS for c in commands(doc)]
TRAIN = [(where, argv) for where, argv in ALL
         if argv[0] in ("colorize-train",) or argv[:3] == ["python", "-m", "colorize.train"]]


def first_job(overrides: list[str]) -> list[str]:
    """A sweep's first job: each sweep override (a, b, c / range / choice) at its first value."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    out = []
    for text, override in zip(overrides, parsed):
        if override.is_sweep_override():
            value = next(iter(override.sweep_string_iterator()))
            out.append(f"{override.get_key_element()}={value}")
        else:
            out.append(text)
    return out


def test_the_docs_have_commands_to_check():
    assert len(TRAIN) >= 20 and {argv[0] for _, argv in ALL} >= {"colorize-train", *TOOLS}


@pytest.mark.parametrize("where,argv", TRAIN, ids=[w for w, _ in TRAIN])
def test_every_colorize_train_command_in_the_docs_composes(where, argv):
    args = argv[1:] if argv[0] == "colorize-train" else argv[3:]
    if "-sc" in args or "--shell-completion" in args:
        return
    overrides = first_job(overrides_of(args))
    with initialize_config_module(CONFIG_MODULE):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)  # hydra/launcher=... too
    with open_dict(cfg):
        del cfg["hydra"]
    to_object(cfg)  # the ranges, as a run checks them before reading any data


def documented_options(tool: str) -> set[str]:
    """The `--options` the docs give `tool` (tests/test_cli.py checks each is in its --help, so
    each tool's --help runs once in the suite)."""
    return {arg.split("=")[0] for _, argv in ALL if argv[0] == tool for arg in argv[1:] if arg.startswith("--")}
