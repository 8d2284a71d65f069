"""`python -m colorize.predict MODEL IMAGES`: colorize a folder into the course's submission format.

MODEL is an MLflow run id, a ``runs:/<run id>/best.pt`` URI or a checkpoint path; several MODELs
are an ensemble (their predictions averaged before rounding). IMAGES is a folder of gray or colour
images (colour is converted to gray). Writes ``estimations.npy`` (uint8,
N x H x W x 3, 0..255) and ``img_names.txt`` (the image paths, in the same order).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from colorize.training.checkpoint import BEST, load_model
from colorize.cli import parser as cli_parser, run_tool
from colorize.data.images import list_images, read_images, to_unit_range
from colorize.errors import ColorizeError
from colorize.training.augment import shift_images
from colorize.training.metrics import to_uint8
from colorize.paths import default_store_uri
from colorize.training.runtime import select_device
from colorize.tracking.store import Tracker

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def resolve_checkpoint(model: str, uri: str, workdir: Path) -> Path:
    """A local checkpoint path for a run id, a runs:/ URI or a path."""
    if model.startswith("runs:/"):
        run_id, _, artifact = model[len("runs:/") :].partition("/")
        return _download(run_id, artifact or BEST, uri, workdir)
    if RUN_ID.match(model) and not Path(model).exists():
        return _download(model, BEST, uri, workdir)
    path = Path(model)
    if not path.is_file():
        raise ColorizeError(f"model {model!r} is neither a checkpoint file nor an MLflow run id / runs:/ URI")
    return path


def _download(run_id: str, artifact: str, uri: str, workdir: Path) -> Path:
    tracker = Tracker(uri, None, create=False)  # a reading command: never creates a store
    try:
        tracker.get_run(run_id)
    except Exception:
        raise ColorizeError(f"run {run_id!r} does not exist in the MLflow store {tracker.uri!r}") from None
    try:
        return tracker.download(run_id, artifact, workdir)
    except Exception as exc:
        raise ColorizeError(f"run {run_id!r} has no artifact {artifact!r}: {str(exc).splitlines()[0]}") from None


# test-time views: (dy, dx, mirrored); each prediction is mapped back before the views are averaged
TTA_VIEWS = ((0, 0, False), (0, 0, True), (1, 0, False), (-1, 0, False), (0, 1, False), (0, -1, False))


def tta_average(model: torch.nn.Module, x: torch.Tensor, views=TTA_VIEWS) -> torch.Tensor:
    """The mean prediction over mirrored and shifted copies of `x` (N x 1 x H x W in [-1, 1]), each
    mapped back (the border row or column a shift fills by reflection is approximate)."""
    total = torch.zeros((), device=x.device)
    for dy, dx, mirrored in views:
        view = x.flip(3) if mirrored else x
        n = x.shape[0]
        if dy or dx:
            view = shift_images(view, torch.full((n,), dy), torch.full((n,), dx))
        out = model(view)
        if dy or dx:
            out = shift_images(out, torch.full((n,), -dy), torch.full((n,), -dx))
        total = total + (out.flip(3) if mirrored else out)
    return total / len(views)


@torch.inference_mode()
def predict(models: torch.nn.Module | Sequence[torch.nn.Module], gray_u8: torch.Tensor, device: torch.device,
            batch_size: int = 500, tta: bool = False) -> np.ndarray:
    """uint8 gray N x 1 x H x W -> uint8 RGB estimations N x H x W x 3. Several `models` are an
    ensemble: their [-1, 1] predictions are averaged, then rounded once (`tta`: each model averaged
    over the views first)."""
    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    models = [model.to(device).eval() for model in models]
    out = []
    for start in range(0, gray_u8.shape[0], batch_size):
        x = to_unit_range(gray_u8[start : start + batch_size].to(device))
        total = sum(tta_average(model, x) if tta else model(x) for model in models)
        out.append(to_uint8(total / len(models)).cpu())
    return torch.cat(out).permute(0, 2, 3, 1).contiguous().numpy()


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-predict", __doc__)
    parser.add_argument("model", nargs="+", help="MLflow run id, runs:/<run id>/best.pt, or checkpoint path; "
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
    files = list_images(args.images, args.limit)
    broken = next((f for f in files if "\n" in str(f) or "\r" in str(f)), None)
    if broken is not None:  # img_names.txt has one path per line: such a name would break it in two
        raise ColorizeError(f"image file name {str(broken)!r} holds a line break, which img_names.txt "
                            "(one path per line) cannot list: rename the file")
    images = read_images(files, require_color=False)
    models = []
    for model in args.model:
        with tempfile.TemporaryDirectory() as tmp:  # one per model: each download is a best.pt
            models.append(load_model(resolve_checkpoint(model, args.uri, Path(tmp)))[0])
    estimations = predict(models, images.gray, select_device(args.device), tta=args.tta)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "estimations.npy", estimations)
    (args.out / "img_names.txt").write_text("".join(f"{name}\n" for name in images.names))
    averaged = f", averaged over {len(models)} models" if len(models) > 1 else ""
    print(f"{estimations.shape[0]} estimations {tuple(estimations.shape)} uint8{averaged} -> "
          f"{args.out / 'estimations.npy'}, names -> {args.out / 'img_names.txt'}")
    return 0


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
