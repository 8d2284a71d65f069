"""The study report: comparison figures, tables, findings and the search's tuning plots, written
as report.md/report.html/results.csv under one folder and logged to each sweep's parent run."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from colorize import names
from colorize.report.compare import FINDINGS_CSV, write_findings
from colorize.report.document import Document, Heading, Image, Paragraph, Table
from colorize.report.figures import TITLES, best_figure, comparison_figure
from colorize.report.findings import findings
from colorize.report.samples import SAMPLE_ARRAYS, faces_figure
from colorize.tracking.registry import ship_command
from colorize.tracking.results import Configuration, Sweep, Trial, best_trial, configurations, superseded_note
from colorize.tables import records_csv
from colorize.tracking.store import Tracker

log = logging.getLogger("colorize.report")

COLUMNS = ["configuration", "status", "best epoch", "val MSE", "val 12-margin accuracy", "train time (s)"]


def table_row(config: Configuration) -> list[str]:
    """One configuration; over replicates (n >= 2) each value is mean ± std (n)."""
    if not config.n:
        return [config.label, config.status, "—", "—", "—", "—"]
    if config.n == 1:
        t = config.scored[0]
        m = t.metrics
        return [
            config.label, config.status, str(t.best_epoch), f"{m[names.BEST_VAL_MSE]:.5f}",
            f"{m[names.BEST_VAL_ACCURACY]:.4f}", f"{m.get(names.TRAIN_SECONDS, float('nan')):.1f}",
        ]
    epochs = sorted(int(t.metrics[names.BEST_EPOCH]) for t in config.scored)
    return [
        config.label, config.status, f"{epochs[0]}–{epochs[-1]}" if epochs[0] != epochs[-1] else str(epochs[0]),
        f"{config.mean(names.BEST_VAL_MSE):.5f} ± {config.std(names.BEST_VAL_MSE):.5f}",
        f"{config.mean(names.BEST_VAL_ACCURACY):.4f} ± {config.std(names.BEST_VAL_ACCURACY):.4f} (n={config.n})",
        f"{config.mean(names.TRAIN_SECONDS):.1f}",
    ]


def best_overall(sweeps: list[Sweep]) -> Optional[Trial]:
    return best_trial([t for s in sweeps for t in s.trials])


def provenance(sweeps: list[Sweep]) -> str:
    """Where the report's runs were made, from the first sweep's provenance tags."""
    tags = sweeps[0].tags if sweeps else {}
    if "cpu" not in tags:
        return ""
    versions = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in tags.items() if k.startswith("version."))
    commit = tags.get("git_commit", "unknown")[:12] + (" (dirty)" if tags.get("git_dirty") == "true" else "")
    return f"Made on {tags['cpu']} (ISA {tags.get('cpu_isa', '?')}), commit {commit}; {versions}."


def sweep_rows(sweeps: list[Sweep]) -> list[list[str]]:
    """Per sweep: its trials, wall time and the overrides it ran with (its budget)."""
    rows = []
    for sweep in sweeps:
        wall = f"{(sweep.end_time - sweep.start_time) / 60000:.1f}" if sweep.end_time else f"— ({sweep.status})"
        rows.append([sweep.preset, str(len(sweep.trials)), wall, f"`{sweep.tags.get('overrides', '')}`"])
    return rows


def result_record(sweep: Sweep, t: Trial) -> dict:
    """A trial's row of results.csv: the table's values at full precision, its budget and hardware."""
    scored = lambda key: t.metrics.get(key, "") if t.scored else ""  # noqa: E731
    return {"preset": sweep.preset, "run_id": t.run_id, "configuration": t.label,
            "seed": t.params.get(names.SEED, ""), "status": t.status,
            "max_epochs": t.params.get(names.MAX_EPOCHS, ""), "device": t.tags.get("device", ""),
            names.BEST_EPOCH: t.best_epoch if t.scored else "", "val_mse": scored(names.BEST_VAL_MSE),
            "val_margin12_accuracy": scored(names.BEST_VAL_ACCURACY), "train_seconds": scored(names.TRAIN_SECONDS)}


def build_report(tracker: Tracker, sweeps: list[Sweep], out_dir: Path, name: str) -> Path:
    """Write the figures, report.md, report.html and results.csv; return the folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = Document(f"Colorization study report — {name}")
    doc.add(Paragraph(
        f"{len(sweeps)} sweep(s) from experiment '{tracker.experiment_name}' of the MLflow store "
        f"{tracker.uri}. Metrics are those of each run's automatically chosen epoch (the best by the "
        "early-stopping monitor, val MSE unless set otherwise; without early stopping, the last). "
        "12-margin accuracy: per image, the fraction of RGB values (0..255) within "
        "less than 12 of the target, averaged over images. Runs that differ only in their seed are one "
        "configuration: curves show their mean with a min–max band, tables mean ± std (n). "
        + provenance(sweeps)
    ))
    doc.add(Table(["sweep", "trials", "wall (min)", "overrides (budget)"], sweep_rows(sweeps)))
    records = []
    for sweep in sweeps:
        title = TITLES.get(sweep.preset, sweep.preset)
        figure = comparison_figure(sweep, out_dir / f"{sweep.preset}_curves.png")
        doc.add(
            Heading(f"{title} (sweep={sweep.preset})"),
            Paragraph(" ".join(filter(None, [
                f"Parent run {sweep.parent_run_id}; swept: {', '.join(sweep.swept) or '—'};"
                f" {len(sweep.trials)} trials.",
                sweep.incomplete(), _superseded(sweep)]))),
            Image(figure.relative_to(out_dir), f"{title}: train (dashed) and validation (solid) curves"),
            Table(COLUMNS, [table_row(c) for c in configurations(sweep)]),
        )
        _tuning_plots(doc, sweep, out_dir)
        if any(key.startswith("loss.") for key in sweep.swept):  # a loss study: the same faces by each loss
            _faces(doc, tracker, sweep, out_dir)
        records += [result_record(sweep, t) for t in sweep.trials]
    rows = findings(sweeps)
    write_findings(rows, out_dir / FINDINGS_CSV)
    if rows:
        doc.add(
            Heading("Findings"),
            Paragraph("Each conclusion of the reference study, checked on this run's results by the spread rule: "
                      "\"A beats B\" needs A's replicates all to beat B's (non-overlapping min–max ranges); "
                      "overlapping ranges are \"within noise\"; a verdict resting on a single run (no spread) is "
                      "marked (1 run)."),
            Table(["experiment", "reference study", "this run", "verdict"],
                  [[f.experiment, f.reference, list(f.shows), f.verdict] for f in rows]),
        )
    best = best_overall(sweeps)
    if best is not None:
        _best_section(doc, tracker, best, out_dir)
    (out_dir / "results.csv").write_text(records_csv(records))
    (out_dir / "report.md").write_text(doc.markdown())
    (out_dir / "report.html").write_text(doc.html(out_dir))
    for sweep in sweeps:
        tracker.upload(sweep.parent_run_id, out_dir, f"report/{name}")
    return out_dir


def _superseded(sweep: Sweep) -> str:
    """The killed attempts a rerun replaced (colorize.tracking.results.superseded_by_reruns), if any."""
    if not sweep.superseded:
        return ""
    return f"{superseded_note(sweep.superseded)}, are left out."


def _faces(doc: Document, tracker: Tracker, sweep: Sweep, out_dir: Path) -> None:
    """One row of the same val faces per configuration (its first scored trial's samples.npz)."""
    rows, gray, target = [], None, None
    for config in configurations(sweep):
        trial = next((t for t in config.trials if t.scored), None)
        if trial is None:
            continue
        try:
            arrays = np.load(tracker.download(trial.run_id, SAMPLE_ARRAYS, out_dir / ".download" / trial.run_id))
        except Exception as exc:  # a run from before samples.npz: the section goes without it
            log.warning("no sample arrays for run %s: %s", trial.run_id, exc)
            continue
        rows.append((config.label, arrays["pred"]))
        gray, target = arrays["gray"], arrays["target"]
    shutil.rmtree(out_dir / ".download", ignore_errors=True)
    if rows:
        assert gray is not None and target is not None  # with the first row's arrays
        figure = faces_figure(rows, gray, target, out_dir / f"{sweep.preset}_faces.png")
        doc.add(Image(figure.relative_to(out_dir), "The same validation faces, colorized by each configuration"))


def _tuning_plots(doc: Document, sweep: Sweep, out_dir: Path) -> None:
    """Optuna's own plots for a sweep run by the Optuna sweeper (its parent run names the study)."""
    storage, name = sweep.tags.get(names.OPTUNA_STORAGE_TAG), sweep.tags.get(names.OPTUNA_STUDY_TAG)
    if not storage or not name:
        return
    from colorize.search.plots import load_study, tuning_figures

    try:
        study = load_study(storage, name)
    except Exception as exc:  # e.g. a database that needs a password the tag does not hold
        log.warning("Optuna study %s in %s cannot be opened: %s", name, storage, str(exc).splitlines()[0])
        return
    doc.add(Paragraph(f"Optuna study '{name}' in {storage}: {len(study.trials)} trials "
                      f"({sum(t.state.name == 'PRUNED' for t in study.trials)} pruned). Open it interactively "
                      f"with `optuna-dashboard {storage}`."))
    for path, caption in tuning_figures(study, out_dir, sweep.preset):
        doc.add(Image(path.relative_to(out_dir), caption))


def _best_section(doc: Document, tracker: Tracker, best: Trial, out_dir: Path) -> None:
    m = best.metrics
    doc.add(
        Heading(f"Best configuration: {best.label}"),
        Paragraph(
            f"Run {best.run_id}: chosen epoch {best.best_epoch} (of {int(m.get('stopped_epoch', 0))} trained), "
            f"val MSE {m['best_val_mse']:.5f}, val 12-margin accuracy {m['best_val_margin12_accuracy']:.4f} "
            f"(error {m['best_val_margin12_error']:.4f}), train time {m.get('train_seconds', 0):.1f} s. "
            f"Ship it: `{ship_command(best.run_id)}`, then "
            "`colorize-predict models:/<name>@champion <images>`."
        ),
        Image(best_figure(best, "mse", out_dir / "best_mse.png").relative_to(out_dir),
              "Best configuration: MSE loss, with the chosen epoch marked"),
        Image(best_figure(best, "margin12", out_dir / "best_margin12.png").relative_to(out_dir),
              "Best configuration: 12-margin error, with the chosen epoch marked"),
    )
    try:
        local = tracker.download(best.run_id, "samples.png", out_dir / ".download")
        shutil.move(local, out_dir / "best_samples.png")
        doc.add(Image(Path("best_samples.png"),
                      "Best configuration on validation images: gray input / prediction / target"))
    except Exception as exc:  # an old run without the artifact: the report still stands
        log.warning("no qualitative samples for run %s: %s", best.run_id, exc)
    finally:
        shutil.rmtree(out_dir / ".download", ignore_errors=True)
