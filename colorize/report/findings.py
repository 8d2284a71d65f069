"""The findings table: each reference-study conclusion checked against this run's results.

Every conclusion is written as comparisons "A beats B" between configurations of one preset (by
their params), on one metric. A comparison is judged by the spread rule:

- A beats B when A's worst replicate beats B's best (the min-max ranges do not overlap) -> "agree";
  the reverse -> "disagree"; overlapping ranges -> "within noise";
- a side with a single run has no spread (its range is a point): the verdict is marked "(1 run)".

An experiment's verdict: "agree" when every comparison agrees, "disagree" when every one disagrees,
"within noise" when none is decided, else "mixed" (its comparisons are listed with their numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from colorize import names
from colorize.tracking.results import Configuration, Sweep, configurations

ACC = names.BEST_VAL_ACCURACY  # higher is better
MSE = names.BEST_VAL_MSE  # lower is better


@dataclass(frozen=True)
class Claim:
    """`winner` beats `loser` on `metric` (params given as strings, as MLflow stores them)."""

    winner: dict
    loser: dict
    metric: str = ACC


@dataclass(frozen=True)
class Conclusion:
    preset: str
    reference: str  # what the reference study concluded
    claims: tuple[Claim, ...] = ()
    diverges: tuple[dict, ...] = ()  # configurations that must diverge (NaN loss)
    near: Optional[tuple[float, float]] = None  # (value, tolerance): the best configuration's accuracy


def _pairs(layers: tuple[str, ...], key: str, order: tuple[str, ...], metric: str = ACC, **fixed: str) -> tuple:
    """Claims that `order` is best-first along `key`, for each number of layers."""
    return tuple(
        Claim({"model.layers": n, key: a, **fixed}, {"model.layers": n, key: b, **fixed}, metric)
        for n in layers for a, b in zip(order, order[1:])
    )


REFERENCE = (
    Conclusion("layers", "more conv layers: 4-conv learns slower within the epoch budget",
               (Claim({"model.layers": "2"}, {"model.layers": "4"}),)),
    Conclusion("kernel_size", "kernel size 5 beats 3, for both 2- and 4-conv",
               _pairs(("2", "4"), "model.kernel_size", ("5", "3"))),
    Conclusion("kernels", "more kernels are better (8 > 4 > 2)", _pairs(("2", "4"), "model.channels", ("8", "4", "2"))),
    Conclusion("lr", "learning rate: 0.1 > 0.01 > 0.001 > 0.0001, and 1 diverges (NaN)",
               _pairs(("2", "4"), "optimizer.lr", ("0.1", "0.01", "0.001", "0.0001")),
               diverges=({"model.layers": "2", "optimizer.lr": "1.0"}, {"model.layers": "4", "optimizer.lr": "1.0"})),
    Conclusion("further", "batch norm is worse for both nets",
               tuple(Claim({"model.layers": n, "model.batch_norm": "False", "model.tanh": "False",
                            "model.channels": "8"},
                           {"model.layers": n, "model.batch_norm": "True"}) for n in ("2", "4"))),
    Conclusion("further", "tanh output: better for 4-conv, worse for 2-conv in MSE",
               (Claim({"model.layers": "4", "model.tanh": "True", "model.channels": "8"},
                      {"model.layers": "4", "model.tanh": "False", "model.batch_norm": "False", "model.channels": "8"},
                      MSE),
                Claim({"model.layers": "2", "model.tanh": "False", "model.batch_norm": "False", "model.channels": "8"},
                      {"model.layers": "2", "model.tanh": "True", "model.channels": "8"}, MSE))),
    Conclusion("further", "16 channels is the best of the further experiments for both nets",
               tuple(Claim({"model.layers": n, "model.channels": "16"}, other)
                     for n in ("2", "4")
                     for other in ({"model.layers": n, "model.channels": "8", "model.batch_norm": "False",
                                    "model.tanh": "False"},
                                   {"model.layers": n, "model.batch_norm": "True"},
                                   {"model.layers": n, "model.tanh": "True", "model.channels": "8"}))),
    Conclusion("*", "the early-stopped best configuration reaches about 0.75 12-margin accuracy", near=(0.75, 0.02)),
)


def _same(value: str, wanted: str) -> bool:
    try:
        return math.isclose(float(value), float(wanted))
    except ValueError:
        return value == wanted


def find(configs: list[Configuration], params: dict) -> list[Configuration]:
    return [c for c in configs if all(k in c.params and _same(str(c.params[k]), v) for k, v in params.items())]


def judge(winner: Configuration, loser: Configuration, metric: str) -> str:
    """agree | disagree | within noise, by the spread rule (see the module); "(1 run)" where a side has
    a single run (its range is a point)."""
    better = (lambda a, b: a > b) if metric == ACC else (lambda a, b: a < b)
    w, lo = winner.values(metric), loser.values(metric)
    if not w or not lo:
        return "not run"
    worst = min if metric == ACC else max
    best = max if metric == ACC else min
    if better(worst(w), best(lo)):
        verdict = "agree"
    elif better(worst(lo), best(w)):
        verdict = "disagree"
    else:
        verdict = "within noise"
    return verdict + (" (1 run)" if min(len(w), len(lo)) < 2 else "")


def fmt(c: Configuration, metric: str) -> str:
    digits = 4 if metric == ACC else 5
    if c.n >= 2:
        return f"{c.label} {c.mean(metric):.{digits}f} ± {c.std(metric):.{digits}f} (n={c.n})"
    return f"{c.label} {c.mean(metric):.{digits}f}"


@dataclass
class Finding:
    experiment: str
    reference: str
    shows: list[str] = field(default_factory=list)
    verdict: str = "not run"


def overall(verdicts: list[str]) -> str:
    decided = [v.split(" (")[0] for v in verdicts if v != "not run"]
    if not decided:
        return "not run"
    if all(v == "agree" for v in decided):
        return "agree"
    if all(v == "disagree" for v in decided):
        return "disagree"
    if all(v == "within noise" for v in decided):
        return "within noise"
    return "mixed"


def findings(sweeps: list[Sweep]) -> list[Finding]:
    """One row per reference conclusion whose preset is among `sweeps` (the newest sweep of it)."""
    by_preset = {s.preset: configurations(s) for s in sweeps}
    rows = []
    for c in REFERENCE:
        if c.preset != "*" and c.preset not in by_preset:
            continue
        row = Finding(c.preset, c.reference)
        verdicts = []
        for claim in c.claims:
            configs = by_preset[c.preset]
            for winner in find(configs, claim.winner):
                for loser in find(configs, claim.loser):
                    if winner is loser:
                        continue
                    verdict = judge(winner, loser, claim.metric)
                    verdicts.append(verdict)
                    metric = "val 12-margin acc" if claim.metric == ACC else "val MSE"
                    row.shows.append(f"{fmt(winner, claim.metric)} vs {fmt(loser, claim.metric)} ({metric}): {verdict}")
        for params in c.diverges:
            for config in find(by_preset[c.preset], params):
                diverged = sum(t.status == names.DIVERGED for t in config.trials)
                verdicts.append("agree" if diverged == len(config.trials) else "disagree")
                row.shows.append(f"{config.label}: {diverged}/{len(config.trials)} runs diverged")
        if c.near is not None:
            everything = [cfg for configs in by_preset.values() for cfg in configs if cfg.n]
            if everything:
                best = max(everything, key=lambda cfg: cfg.mean(ACC))
                value, tol = c.near
                lo, hi = min(best.values(ACC)), max(best.values(ACC))
                verdicts.append("agree" if lo - tol <= value <= hi + tol else "disagree")
                row.experiment = "best"
                row.shows.append(f"best: {fmt(best, ACC)} (val 12-margin acc)")
        row.verdict = overall(verdicts)
        rows.append(row)
    return rows
