"""`python -m colorize.predict MODEL IMAGES`: colorize a folder into the course's submission format.

MODEL is an MLflow run id, a ``runs:/<run id>/best.pt`` URI, a registered model's version
(``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME/latest``: colorize-register
writes them) or a checkpoint path; several MODELs are an ensemble (their predictions averaged before rounding). IMAGES is a folder of gray or colour
images (colour is converted to gray). Writes ``estimations.npy`` (uint8,
N x H x W x 3, 0..255) and ``img_names.txt`` (the image paths, in the same order).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Sequence

from colorize.cli import parser as cli_parser, run_tool
from colorize.errors import ColorizeError
from colorize.names import BEST
from colorize.paths import default_store_uri

# torch, NumPy and MLflow load once the arguments have passed argparse: --help answers at once

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def resolve_checkpoint(model: str, uri: str, workdir: Path) -> Path:
    """A local checkpoint path for a run id, a runs:/ URI, a registered model's models:/ URI or a path."""
    if model.startswith("models:/"):
        return _download(*_registered(model, uri), uri, workdir)
    if model.startswith("runs:/"):
        run_id, _, artifact = model[len("runs:/") :].partition("/")
        return _download(run_id, artifact or BEST, uri, workdir)
    if RUN_ID.match(model) and not Path(model).exists():
        return _download(model, BEST, uri, workdir)
    path = Path(model)
    if not path.is_file():
        raise ColorizeError(f"model {model!r} is neither a checkpoint file nor an MLflow run id, runs:/ or "
                            "models:/ URI")
    return path


def _registered(model: str, uri: str) -> tuple[str, str]:
    """(run id, artifact) of a registered model's version (colorize-register wrote it)."""
    from colorize.tracking.registry import parse_model_uri, resolve
    from colorize.tracking.store import Tracker

    return resolve(Tracker(uri, None, create=False), parse_model_uri(model))


def _download(run_id: str, artifact: str, uri: str, workdir: Path) -> Path:
    from colorize.tracking.store import Tracker

    tracker = Tracker(uri, None, create=False)  # a reading command: never creates a store
    tracker.get_run(run_id)  # an unknown run: one line
    try:
        return tracker.download(run_id, artifact, workdir)
    except Exception as exc:
        raise ColorizeError(f"run {run_id!r} has no artifact {artifact!r}: {str(exc).splitlines()[0]}") from None


def load_models(models: Sequence[str], uri: str) -> list:
    """Each MODEL's network, in order (a run's best.pt downloaded from the store first)."""
    from colorize.training.checkpoint import load_model

    loaded = []
    for model in models:
        with tempfile.TemporaryDirectory() as tmp:  # one per model: each download is a best.pt
            loaded.append(load_model(resolve_checkpoint(model, uri, Path(tmp)))[0])
    return loaded


def write_estimations(out: Path, estimations, names: Sequence[str]) -> None:
    """The course's submission format: estimations.npy and img_names.txt (one path per line, same order)."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "estimations.npy", estimations)
    (out / "img_names.txt").write_text("".join(f"{name}\n" for name in names))


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-predict", __doc__)
    parser.add_argument("model", nargs="+", help="MLflow run id, runs:/<run id>/best.pt, models:/NAME@ALIAS or /VERSION, "
                                                 "or checkpoint path; "
                                                 "several are averaged (an ensemble)")
    parser.add_argument("images", type=Path, help="folder of images (gray or colour)")
    parser.add_argument("--out", type=Path, default=Path("outputs/estimations"), help="output folder")
    parser.add_argument("--uri", default=default_store_uri(),
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--tta", action="store_true",
                        help="test-time averaging over the mirror image and 1-pixel shifts (6 views, 6x the time)")
    args = parser.parse_args(argv)
    from colorize.tracking.registry import parse_model_uri

    for model in (m for m in args.model if m.startswith("models:/")):
        parse_model_uri(model)  # a malformed models:/ URI fails before any image is read
    from colorize.data.images import list_images, read_images
    from colorize.inference import predict
    from colorize.training.runtime import select_device

    files = list_images(args.images, args.limit)
    broken = next((f for f in files if "\n" in str(f) or "\r" in str(f)), None)
    if broken is not None:  # img_names.txt has one path per line: such a name would break it in two
        raise ColorizeError(f"image file name {str(broken)!r} holds a line break, which img_names.txt "
                            "(one path per line) cannot list: rename the file")
    images = read_images(files, require_color=False)
    models = load_models(args.model, args.uri)
    estimations = predict(models, images.gray, select_device(args.device), tta=args.tta)
    write_estimations(args.out, estimations, images.names)
    averaged = f", averaged over {len(models)} models" if len(models) > 1 else ""
    print(f"{estimations.shape[0]} estimations {tuple(estimations.shape)} uint8{averaged} -> "
          f"{args.out / 'estimations.npy'}, names -> {args.out / 'img_names.txt'}")
    return 0


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
