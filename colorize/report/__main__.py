"""`python -m colorize.report`: turn tracked sweeps into comparison figures and a report.

    python -m colorize.report                      # the latest finished sweep of each preset
    python -m colorize.report --sweep RUN_ID ...   # given sweep parent runs
    python -m colorize.report --all                # every finished sweep of the experiment
    python -m colorize.report --compare A B        # two report folders' verdicts, finding by finding

Writes outputs/report/<name>/{report.md, report.html, results.csv, *.png} and logs them as
artifacts of each included sweep's MLflow parent run (under report/<name>).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from colorize.cli import check_report_name, make_folder, parser as cli_parser, run_tool
from colorize.errors import ColorizeError
from colorize.paths import default_store_uri

if TYPE_CHECKING:
    from colorize.tracking.results import Sweep
    from colorize.tracking.store import Tracker


def select_sweeps(tracker: Tracker, sweep_ids: list[str], presets: Optional[list[str]], every: bool) -> list[Sweep]:
    from colorize.tracking.results import latest_sweeps, load_sweep, parent_runs

    if sweep_ids:
        return [load_sweep(tracker, run_id) for run_id in sweep_ids]
    if every:
        runs = parent_runs(tracker)
        if not runs:
            raise ColorizeError(f"no finished sweeps in experiment {tracker.experiment_name!r}")
        return [load_sweep(tracker, r.info.run_id) for r in reversed(runs)]
    return latest_sweeps(tracker, presets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-report", __doc__)
    parser.add_argument("--uri", default=default_store_uri(),
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--experiment", default="colorize", help="MLflow experiment name")
    parser.add_argument("--sweep", nargs="+", default=[], metavar="RUN_ID", help="sweep parent run ids")
    parser.add_argument("--preset", nargs="+", help="only the latest sweeps of these presets")
    parser.add_argument("--all", action="store_true", help="every finished sweep of the experiment")
    parser.add_argument("--name", default=None, help="report name (folder under outputs/report/)")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"), help="parent folder of reports")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("REPORT_A", "REPORT_B"),
                        help="print two report folders' findings side by side (Markdown) and exit")
    parser.add_argument("--labels", nargs=2, default=["A", "B"], metavar=("LABEL_A", "LABEL_B"),
                        help="column titles for --compare (e.g. the budget and device of each)")
    args = parser.parse_args(argv)
    if args.name is not None:
        check_report_name(args.name)
    if args.compare:  # reads two folders: no store needed
        from colorize.report.compare import compare

        first, second = args.compare
        print(compare(first, second, args.labels), end="")
        return 0
    # MLflow, torch and matplotlib load once the arguments have passed argparse: --help answers at once
    from colorize.report.build import build_report
    from colorize.tracking.store import Tracker

    tracker = Tracker(args.uri, args.experiment, create=False)  # reads: never creates a store
    sweeps = select_sweeps(tracker, args.sweep, args.preset, args.all)
    name = args.name or ("all" if args.all else "-".join(s.preset for s in sweeps) if args.sweep else "latest")
    make_folder(args.out / name)  # (a file in the way: one line, before the figures are drawn)
    out = build_report(tracker, sweeps, args.out / name, name)
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return 0


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
