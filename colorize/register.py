"""`colorize-register RUN NAME`: ship a model through MLflow's Model Registry.

RUN is a run id (or runs:/<run id>) of a finished run, or a sweep's parent run id: its best trial,
by the rule the sweep summary and the report use, is registered. NAME is the registered model,
created on first use. Each call adds a version whose source is the run's best.pt, tagged with its
val 12-margin accuracy, best epoch and model (a run registered before keeps its version), and
--alias points an alias at that version (MLflow's champion / challenger pattern). Then:

    colorize-predict models:/NAME@champion IMAGES     # or models:/NAME/2, models:/NAME/latest
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from colorize.cli import parser as cli_parser, run_tool
from colorize.errors import ColorizeError
from colorize.paths import default_store_uri

if TYPE_CHECKING:
    from colorize.tracking.store import Tracker

# MLflow loads once the arguments have passed argparse: --help answers at once


def check_registrable(tracker: Tracker, run: Any) -> None:
    """A scored run (finished, or pruned) with a best.pt; one line otherwise."""
    from colorize import names
    from colorize.tracking.results import trial_status

    run_id, status = run.info.run_id, trial_status(run)
    if status not in names.SCORED:
        hint = f": resume it with trainer.resume={run_id}" if status == names.KILLED else ""
        raise ColorizeError(f"run {run_id} is {status}: only a finished (or pruned) run's best.pt is "
                            f"registered{hint}")
    if names.BEST not in tracker.artifact_paths(run_id):
        raise ColorizeError(f"run {run_id} has no {names.BEST} artifact to register")


def version_tags(run: Any, chosen_from: str) -> tuple[dict, str]:
    """The version's tags (what a registry page lists: score, epoch, model) and its description."""
    from colorize import names
    from colorize.tracking.results import label

    metrics, params = run.data.metrics, run.data.params
    epoch = metrics.get(names.BEST_EPOCH)
    tags = {"run_name": run.info.run_name, "model": label(params, []),
            names.BEST_VAL_ACCURACY: metrics.get(names.BEST_VAL_ACCURACY),
            names.BEST_VAL_MSE: metrics.get(names.BEST_VAL_MSE),
            names.BEST_EPOCH: None if epoch is None else int(epoch), "chosen_as": chosen_from or None,
            "data": params.get("data.root", params.get("data._target_"))}
    tags = {k: v for k, v in tags.items() if v is not None}
    overrides = run.data.tags.get(names.OVERRIDES_TAG)
    description = (f"colorize run {run.info.run_id}" + (f", {chosen_from}" if chosen_from else "")
                   + (f"; trained with: {overrides}" if overrides else ""))
    return tags, description


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-register", __doc__)
    parser.add_argument("run", help="a run id or runs:/<run id>, or a sweep's parent run id (its best trial)")
    parser.add_argument("name", help="the registered model (letters, digits, '_', '-', '.'); created if new")
    parser.add_argument("--alias", action="append", default=[],
                        help="point this alias at the version (repeatable), e.g. champion")
    parser.add_argument("--uri", default=default_store_uri(),
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    args = parser.parse_args(argv)
    from colorize.tracking.registry import aliases_of, check_names, parse_run_uri, register

    check_names(args.name, args.alias)  # before MLflow is imported and the store opened
    from colorize import names
    from colorize.tracking.links import model_page, open_page
    from colorize.tracking.results import run_or_best_trial
    from colorize.tracking.store import Tracker

    run_id = parse_run_uri(args.run).run_id if args.run.startswith("runs:/") else args.run
    tracker = Tracker(args.uri, None, create=False)  # a store that exists: this command never creates one
    run, chosen_from = run_or_best_trial(tracker, run_id)
    check_registrable(tracker, run)
    before = aliases_of(tracker, args.name)
    tags, description = version_tags(run, chosen_from)
    done = register(tracker, run.info.run_id, args.name, args.alias, tags, description)
    score = run.data.metrics.get(names.BEST_VAL_ACCURACY, float("nan"))
    how = "registered" if done.created else "was already registered:"
    print(f"{how} run {done.run_id} ({tags['model']}, val 12-margin accuracy {score:.4f}"
          f"{'; ' + chosen_from if chosen_from else ''}) as models:/{done.name}/{done.version}")
    for alias in args.alias:
        was = before.get(alias)
        moved = "" if was is None else (" (unchanged)" if was == done.version else f" (was version {was})")
        print(f"alias {alias} -> version {done.version}{moved}")
    use = f"models:/{done.name}@{args.alias[0]}" if args.alias else f"models:/{done.name}/{done.version}"
    print(f"predict with: colorize-predict {use} IMAGES")
    print(f"in the MLflow UI: {open_page(tracker.uri, model_page(done.name, done.version))}")
    return 0


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
