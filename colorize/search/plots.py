"""Optuna's own tuning plots for a search sweep's study (matplotlib back-end), for the report.

Four plots, all Optuna's: optimisation history, hyperparameter importances, parallel coordinates,
and intermediate values (each trial's per-epoch val error, so what pruning cut shows as short
lines). Importances use Optuna's default evaluator, fANOVA (seeded), which needs scikit-learn (a
declared dependency; MLflow needs it too).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.importance import FanovaImportanceEvaluator  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

log = logging.getLogger(__name__)

PLOTS: dict[str, tuple[str, Callable[[optuna.Study], Any]]] = {  # an Axes, or an array of them
    "history": ("Optimisation history: each trial's val 12-margin error and the best so far",
                optuna_plots.plot_optimization_history),
    "importances": ("Hyperparameter importances (fANOVA over the completed trials)",
                    lambda s: optuna_plots.plot_param_importances(s, evaluator=FanovaImportanceEvaluator(seed=0))),
    "parallel": ("Parallel coordinates: each trial's hyperparameters and objective",
                 optuna_plots.plot_parallel_coordinate),
    "intermediate": ("Intermediate values: val 12-margin error per epoch (pruned trials stop early)",
                     optuna_plots.plot_intermediate_values),
}


def load_study(storage: str, study_name: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=storage)


def tuning_figures(study: optuna.Study, out_dir: Path, prefix: str) -> list[tuple[Path, str]]:
    """Write the four plots as `<prefix>_<plot>.png`; return (path, caption) for each one drawn.

    A plot that the study cannot support yet (e.g. importances from a single completed trial) is
    left out with a warning rather than failing the report.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, (caption, plot) in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # a parameter with one value so far (a short search): matplotlib widens the axis itself
                warnings.filterwarnings("ignore", "Attempting to set identical low and high ylims", UserWarning)
                ax = plot(study)
        except (ValueError, RuntimeError) as exc:
            log.warning("no %s plot for study %s: %s", name, study.study_name, exc)
            continue
        fig = (ax[0] if hasattr(ax, "__len__") else ax).figure
        fig.set_size_inches(8, 5)
        path = out_dir / f"{prefix}_{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        drawn.append((path, caption))
    return drawn
