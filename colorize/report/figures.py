"""Report figures: per-sweep comparison curves and the best configuration's training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from colorize import names  # noqa: E402
from colorize.tracking.results import Configuration, Sweep, Trial, configurations  # noqa: E402

AXES = {
    "mse": ("MSE (per value, RGB in [-1, 1])", names.TRAIN_MSE, names.VAL_MSE),
    "margin12": ("12-margin error (fraction of values off by ≥ 12/255)", names.TRAIN_ERROR, names.VAL_ERROR),
}
TITLES = {
    "layers": "Number of conv layers",
    "kernel_size": "Kernel size",
    "kernels": "Number of kernels",
    "lr": "Learning rate",
    "further": "Batch norm, tanh and 16 channels",
    "search": "Optuna search",
    "search_unet": "Optuna search in the U-Net family",
    "losses": "Training losses (same net and time budget)",
    "search_quality": "Optuna search for time-to-accuracy",
}


def _series(trial: Trial, key: str) -> tuple[list[int], list[float]]:
    points = trial.history.get(key, [])
    return [e for e, _ in points], [v for _, v in points]


def comparison_figure(sweep: Sweep, path: Path) -> Path:
    return _save(draw_comparison(sweep), path)


def draw_comparison(sweep: Sweep) -> Figure:
    """Train (dashed) and val (solid) MSE and 12-margin error per configuration, one colour each.

    A configuration run with several seeds is drawn as its mean, with a min–max band around the
    validation curve. A diverged run is a ✕ near the top edge at the epoch it diverged in (its loss
    is not a number to plot).
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    configs = configurations(sweep)
    colours = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20")
    handles, marks = [], 0.97  # each diverged configuration's ✕ a step below the last: none hides another
    for i, config in enumerate(configs):
        handles.append(_draw_configuration(axes, config, colours(i % colours.N), marks))
        marks -= 0.04 * any(t.status == names.DIVERGED for t in config.trials)
    style_handles: list[Artist] = [
        Line2D([], [], color="grey", linestyle="--", label="train"),
        Line2D([], [], color="grey", linestyle="-", label="validation"),
        Line2D([], [], color="grey", marker="o", linestyle="none", label="chosen epoch"),
    ]
    if any(len(c.trials) > 1 for c in configs):
        style_handles.append(Patch(color="grey", alpha=0.3, label="min–max over seeds"))
    if any(t.status == names.DIVERGED for t in sweep.trials):
        style_handles.append(Line2D([], [], color="grey", marker="x", linestyle="none",
                                    label="diverged (near the top)"))
    for ax, (ylabel, _, _) in zip(axes, AXES.values()):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
    axes[0].set_title("MSE loss")
    axes[1].set_title("12-margin error")
    fig.suptitle(f"{TITLES.get(sweep.preset, sweep.preset)} — train and validation curves", fontsize=13)
    fig.legend(handles=handles + style_handles, loc="outside right center", frameon=False)
    return fig


def _draw_configuration(axes, config: Configuration, colour, mark_y: float) -> Artist:
    """One configuration's curves on both axes, its diverged runs a ✕ at `mark_y` (a fraction of the
    axes' height, near the top); its legend entry."""
    name = config.label + (f" (n={len(config.trials)})" if len(config.trials) > 1 else "")
    for trial in config.trials:
        if (epoch := trial.diverged_epoch()) is not None:
            for ax in axes:  # x in epochs, y in the axes' height: the top edge whatever the scale
                ax.plot([epoch], [mark_y], "x", color=colour, markersize=9, transform=ax.get_xaxis_transform())
    if all(t.status == names.DIVERGED for t in config.trials):
        epochs = sorted({e for t in config.trials if (e := t.diverged_epoch()) is not None})
        name += f" — diverged (epoch {', '.join(map(str, epochs))})"
        return Line2D([], [], color=colour, marker="x", linestyle="none", markersize=9, label=name)
    diverged = sum(t.status == names.DIVERGED for t in config.trials)
    if diverged:  # some replicates diverged: the curve is the others'
        name += f" — {diverged}/{len(config.trials)} diverged"
    if all(t.status == names.PRUNED for t in config.trials):
        name += " (pruned)"
    for ax, (_, train_key, val_key) in zip(axes, AXES.values()):
        x, mean, _, _ = config.curve(train_key)
        ax.plot(x, mean, "--", color=colour, linewidth=1.6, alpha=0.9)
        x, mean, lo, hi = config.curve(val_key)
        ax.plot(x, mean, "-", color=colour, linewidth=1.6, alpha=0.9)
        if len(config.trials) > 1:
            ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0)
        best_epoch = config.scored[0].best_epoch if config.n == 1 else None
        if best_epoch in x:
            ax.plot(best_epoch, mean[x.index(best_epoch)], "o", color=colour, markersize=5)
    return Line2D([], [], color=colour, linewidth=2, label=name)


def best_figure(trial: Trial, metric: str, path: Path) -> Path:
    """One metric's train and val curves for a run, with the automatically chosen epoch marked."""
    ylabel, train_key, val_key = AXES[metric]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, style, name in ((train_key, "--", "train"), (val_key, "-", "validation")):
        x, y = _series(trial, key)
        ax.plot(x, y, style, color="tab:blue" if name == "train" else "tab:orange", linewidth=1.8, label=name)
    if trial.best_epoch:
        ax.axvline(trial.best_epoch, color="tab:green", linestyle=":", linewidth=1.5,
                   label=f"chosen epoch ({trial.best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{trial.label}: {'MSE loss' if metric == 'mse' else '12-margin error'}")
    ax.grid(alpha=0.3)
    _whole_epochs(ax)
    ax.legend()
    return _save(fig, path)


def _whole_epochs(ax: Axes) -> None:
    """Epoch ticks at whole numbers: matplotlib's AutoLocator's choice of steps, integers only."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
