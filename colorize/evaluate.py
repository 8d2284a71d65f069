"""`python -m colorize.evaluate estimations.npy img_names.txt`: the course grader's 12-margin accuracy.

Reads the ground-truth colour image of every listed path and prints the 12-margin accuracy of the
estimations: per image, the fraction of its H*W*3 values (0..255) with |estimate - truth| < 12,
averaged over images.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from colorize.cli import parser as cli_parser, run_tool
from colorize.errors import ColorizeError

# NumPy, torch and PIL load once the arguments have passed argparse: --help answers at once
if TYPE_CHECKING:
    import numpy as np


def score(estimations: np.ndarray, truth: np.ndarray) -> float:
    """12-margin accuracy of uint8 N x H x W x 3 arrays; ColorizeError on a shape mismatch."""
    import torch

    from colorize.training.metrics import margin_accuracy

    if estimations.shape != truth.shape:
        raise ColorizeError(
            f"estimations have shape {estimations.shape} but the ground truth is {truth.shape} "
            "(expected N x H x W x 3, one estimation per listed image)"
        )
    return margin_accuracy(torch.from_numpy(estimations), torch.from_numpy(truth))


def load(estimations_path: Path, names_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The estimations (validated) and the ground truth read from the listed image paths."""
    for path, what in ((estimations_path, "the estimations .npy"), (names_path, "the names file")):
        if path.is_dir():
            raise ColorizeError(f"{str(path)!r} is a folder: expected {what}")
        if not path.is_file():
            raise ColorizeError(f"{str(path)!r} does not exist")
    import numpy as np

    from colorize.data.images import read_images

    try:
        estimations = np.load(estimations_path, allow_pickle=False)
    except Exception as exc:
        raise ColorizeError(f"{str(estimations_path)!r} is not a .npy array: {str(exc).splitlines()[0]}") from None
    if estimations.dtype != np.uint8 or estimations.ndim != 4 or estimations.shape[-1] != 3:
        raise ColorizeError(
            f"estimations must be a uint8 array N x H x W x 3, got {estimations.dtype} {estimations.shape}"
        )
    names = [line.strip() for line in names_path.read_text().splitlines() if line.strip()]
    if len(names) != estimations.shape[0]:
        raise ColorizeError(f"{len(names)} image names but {estimations.shape[0]} estimations: counts must match")
    truth = read_images([Path(n) for n in names], require_color=True,
                        role="scoring needs the listed images' colour (ground truth)")
    assert truth.rgb is not None  # require_color refused any image without it
    return estimations, truth.rgb.permute(0, 2, 3, 1).numpy()


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-evaluate", __doc__)
    parser.add_argument("estimations", type=Path, help="estimations.npy (uint8, N x H x W x 3)")
    parser.add_argument("names", type=Path, help="img_names.txt (one ground-truth image path per line)")
    parser.add_argument("--cast", action="store_true",
                        help="also print the accuracy with each image's colour cast corrected (a constant chroma "
                             "offset, the best of Cb, Cr in -10..10): how much of the error is a per-image cast; "
                             "the same with each block's mean error removed (2x2, 4x4, 8x8 blocks: regions); "
                             "and how much of the casts' spread across images the estimations foresee (R²)")
    args = parser.parse_args(argv)
    estimations, truth = load(args.estimations, args.names)
    accuracy = score(estimations, truth)
    print(f"12-margin accuracy: {accuracy:.4f}  (error {1 - accuracy:.4f})")
    if args.cast:
        print_casts(estimations, truth, accuracy)
    return 0


def print_casts(estimations: np.ndarray, truth: np.ndarray, accuracy: float) -> None:
    """--cast: how much of the error is a per-image colour cast, or a region's, and how well the casts are foreseen."""
    import torch

    from colorize.training.metrics import block_corrected_accuracy, cast_corrected_accuracy, cast_r2

    pred, truth_t = (torch.from_numpy(a).permute(0, 3, 1, 2) for a in (estimations, truth))
    corrected = cast_corrected_accuracy(pred, truth_t)
    print(f"with each image's colour cast corrected: {corrected:.4f}  "
          f"(a per-image cast accounts for {corrected - accuracy:.4f} of the error)")
    grids = [g for g in (2, 4, 8) if pred.shape[2] % g == 0 and pred.shape[3] % g == 0]
    if grids:
        regions = ", ".join(f"{g} x {g} blocks {block_corrected_accuracy(pred, truth_t, g):.4f}" for g in grids)
        print(f"with each block's mean error removed instead (regions): {regions}")
    cb, cr = cast_r2(pred, truth_t)
    print(f"the images' casts foreseen: R² {cb:.3f} (mean Cb), {cr:.3f} (mean Cr) across images "
          "(1: every cast; 0: no better than one mean cast for all)")


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
