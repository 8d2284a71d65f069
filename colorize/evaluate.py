"""`python -m colorize.evaluate estimations.npy img_names.txt`: the course grader's 12-margin accuracy.

Reads the ground-truth colour image of every listed path and prints the 12-margin accuracy of the
estimations: per image, the fraction of its H*W*3 values (0..255) with |estimate - truth| < 12,
averaged over images.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from colorize.cli import parser as cli_parser, run_tool
from colorize.errors import ColorizeError

# NumPy, torch and PIL load once the arguments have passed argparse: --help answers at once
if TYPE_CHECKING:
    import numpy as np


def mismatch(estimations: tuple[int, ...], truth: tuple[int, ...]) -> ColorizeError:
    return ColorizeError(f"estimations have shape {estimations} but the ground truth is {truth} "
                         "(expected N x H x W x 3, one estimation per listed image)")


def score(estimations: np.ndarray, truth: np.ndarray) -> float:
    """12-margin accuracy of uint8 N x H x W x 3 arrays; ColorizeError on a shape mismatch."""
    import torch

    from colorize.training.metrics import margin_accuracy

    if estimations.shape != truth.shape:
        raise mismatch(estimations.shape, truth.shape)
    return margin_accuracy(torch.from_numpy(estimations), torch.from_numpy(truth))


def load(estimations_path: Path, names_path: Path) -> list[Path]:
    """The listed image paths, once the estimations (read as they are scored) and the list agree."""
    for path, what in ((estimations_path, "the estimations .npy"), (names_path, "the names file")):
        if path.is_dir():
            raise ColorizeError(f"{str(path)!r} is a folder: expected {what}")
        if not path.is_file():
            raise ColorizeError(f"{str(path)!r} does not exist")
    import numpy as np

    try:
        estimations = np.load(estimations_path, allow_pickle=False, mmap_mode="r")
    except Exception as exc:
        raise ColorizeError(f"{str(estimations_path)!r} is not a .npy array: {str(exc).splitlines()[0]}") from None
    if estimations.dtype != np.uint8 or estimations.ndim != 4 or estimations.shape[-1] != 3:
        raise ColorizeError(
            f"estimations must be a uint8 array N x H x W x 3, got {estimations.dtype} {estimations.shape}"
        )
    names = [line.strip() for line in names_path.read_text().splitlines() if line.strip()]
    if not names:
        raise ColorizeError(f"{str(names_path)!r} lists no image: nothing to score (expected one path per line)")
    if len(names) != estimations.shape[0]:
        raise ColorizeError(f"{len(names)} image names but {estimations.shape[0]} estimations: counts must match")
    return [Path(name) for name in names]


def with_truth(path: Path, names: list[Path]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(estimations, ground truth) a chunk at a time: the truth read from the listed images, the
    estimations from the .npy at `path`, mapped for each chunk alone (pages read stay resident while
    the file is mapped)."""
    import numpy as np

    from colorize.data.images import read_in_chunks

    done = 0
    role = "scoring needs the listed images' colour (ground truth)"
    for truth in read_in_chunks(names, require_color=True, role=role):
        assert truth.rgb is not None  # require_color refused any image without it
        estimations = np.load(path, mmap_mode="r")
        if truth.rgb.shape[2:] != estimations.shape[1:3]:  # (said of the whole arrays: chunks are a detail)
            raise mismatch(estimations.shape, (len(names), *truth.rgb.shape[2:], 3))
        yield np.array(estimations[done : done + len(truth)]), truth.rgb.permute(0, 2, 3, 1).numpy()
        done += len(truth)


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
    names = load(args.estimations, args.names)
    pairs: Iterable[tuple[np.ndarray, np.ndarray]] = with_truth(args.estimations, names)
    if args.cast:  # it compares the images with each other: it keeps them all
        pairs = list(pairs)
    # the mean over images of each image's accuracy: a chunk's mean weighted by its images
    accuracy = sum(score(est, truth) * len(est) for est, truth in pairs) / len(names)
    print(f"12-margin accuracy: {accuracy:.4f}  (error {1 - accuracy:.4f})")
    if args.cast:
        import numpy as np

        print_casts(np.concatenate([est for est, _ in pairs]), np.concatenate([truth for _, truth in pairs]), accuracy)
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
