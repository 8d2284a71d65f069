"""`python -m colorize.predict MODEL IMAGES`: colorize a folder (or one image) into the course's submission format.

MODEL is an MLflow run id (a sweep's parent run stands for its best trial), a
``runs:/<run id>/best.pt`` URI, a registered model's version (``models:/NAME@ALIAS``,
``models:/NAME/VERSION`` or ``models:/NAME/latest``: colorize-register writes them) or a checkpoint
path; several MODELs are an ensemble (their predictions averaged before rounding). IMAGES is a
folder of gray or colour images (colour is converted to gray), or one image file, of any size (a U-Net, whose side must
divide by 2^depth x stride, gets each padded by reflection and its estimate cropped back). Writes
``estimations.npy`` (uint8, N x H x W x 3, 0..255) and ``img_names.txt`` (the image paths, in the same
order), which need the images to share one size; with ``--png`` each estimation as
``images/<the image's name>.png`` too, and images of several sizes are colorized each size apart
(PNGs only). A folder is read and colorized a chunk at a time, so memory grows with the chunk, not
with the folder.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Sequence

from colorize.cli import make_folder, parser as cli_parser, run_tool
from colorize.errors import ColorizeError
from colorize.names import BEST
from colorize.paths import default_store_uri

# torch, NumPy and MLflow load once the arguments have passed argparse: --help answers at once

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
ONE_SIZE = "the course's array holds one size (--png colorizes images of several sizes, each as its own PNG)"


def parse_model(model: str) -> Any:
    """What a MODEL argument names: a ModelRef (models:/), a RunArtifact (a run id or runs:/ URI) or a
    checkpoint Path; one line for a malformed URI or a path that is no file, before anything is read."""
    from colorize.tracking.registry import RunArtifact, parse_model_uri, parse_run_uri

    if model.startswith("models:/"):
        return parse_model_uri(model)
    if model.startswith("runs:/"):
        return parse_run_uri(model)
    if RUN_ID.match(model) and not Path(model).exists():
        return RunArtifact(model)
    if not Path(model).is_file():
        raise ColorizeError(f"model {model!r} is neither a checkpoint file nor an MLflow run id, runs:/ or "
                            "models:/ URI")
    return Path(model)


def resolve_checkpoint(source: Any, tracker: Any, workdir: Path) -> Path:
    """A local checkpoint for what parse_model gave: a registered version's or a run's artifact is
    downloaded from the store into `workdir`."""
    from colorize.tracking.registry import ModelRef, RunArtifact, resolve
    from colorize.tracking.results import run_or_best_trial

    if isinstance(source, Path):
        return source
    artifact = resolve(tracker, source) if isinstance(source, ModelRef) else source
    if artifact.artifact == BEST:  # a sweep's parent run stands for its best trial (an unknown run: one line)
        run, how = run_or_best_trial(tracker, artifact.run_id)
        if how:
            print(f"model {artifact.run_id}: {how}, run {run.info.run_id}")
            artifact = RunArtifact(run.info.run_id)
    else:
        tracker.get_run(artifact.run_id)  # an unknown run: one line
    try:
        return tracker.download(artifact.run_id, artifact.artifact, workdir)
    except Exception as exc:
        raise ColorizeError(f"run {artifact.run_id!r} has no artifact {artifact.artifact!r}: "
                            f"{str(exc).splitlines()[0]}") from None


def load_models(sources: Sequence[Any], uri: str) -> list:
    """Each model's network, in order (a run's or registered version's best.pt downloaded first)."""
    from colorize.training.checkpoint import load_model

    tracker = None
    if not all(isinstance(source, Path) for source in sources):  # checkpoint files alone open no store
        from colorize.tracking.store import Tracker

        tracker = Tracker(uri, None, create=False)  # a reading command: never creates a store
    loaded = []
    for source in sources:
        with tempfile.TemporaryDirectory() as tmp:  # one per model: each download is a best.pt
            loaded.append(load_model(resolve_checkpoint(source, tracker, Path(tmp)))[0])
    return loaded


def input_images(path: Path, limit: int | None) -> list[Path]:
    """IMAGES: a folder's images in natural order, or one image file; one line for a file of another kind."""
    from colorize.data.images import IMAGE_SUFFIXES, list_images

    if not path.is_file():
        return list_images(path, limit)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ColorizeError(f"images {str(path)!r} is a file but not an image: expected a folder of images or one "
                            f"image file ending in {', '.join(IMAGE_SUFFIXES)}")
    return [path]


def png_names(files: Sequence[Path]) -> dict[str, str]:
    """--png's file name for each image's path (its own name, as .png); one line if two images would
    share one."""
    names: dict[str, Path] = {}
    for path in files:
        twin = names.setdefault(f"{path.stem}.png", path)
        if twin != path:
            raise ColorizeError(f"--png: images {str(twin)!r} and {str(path)!r} would both be written as "
                                f"{path.stem}.png: rename one, or leave out --png")
    return {str(path): name for name, path in names.items()}


class Estimations:
    """Where estimations go, a chunk at a time, as they are made: the course's estimations.npy (uint8,
    N x H x W x 3) and img_names.txt when the `count` images share one size (`sizes` 1), and each as a
    PNG named by `pngs` (--png). The array is streamed to ``estimations.npy.partial`` and renamed once
    whole, so a run that fails leaves no half array and any earlier one in place."""

    def __init__(self, out: Path, count: int, sizes: int, pngs: dict[str, str]):
        self.out, self.count, self.sizes, self.pngs = out, count, sizes, pngs
        self.partial = out / "estimations.npy.partial"
        self.file: Any = None
        self.shape: tuple[int, ...] = ()
        self.names: list[str] = []

    def add(self, names: Sequence[str], estimations: Any) -> None:
        from PIL import Image

        try:
            if self.sizes == 1:
                if self.file is None:  # the header needs the shape: the first chunk's images give it
                    self.shape = (self.count, *estimations.shape[1:])
                    self.file = self.partial.open("wb")
                    _write_npy_header(self.file, self.shape)
                if estimations.shape[1:] != self.shape[1:]:  # (a folder's images share one size: checked before)
                    raise ColorizeError(f"estimations of {estimations.shape[1:]} cannot join an array of "
                                        f"{self.shape[1:]}: {ONE_SIZE}")
                self.file.write(estimations.tobytes())
            for name, estimation in zip(names, estimations) if self.pngs else ():
                Image.fromarray(estimation).save(self.out / "images" / self.pngs[name])
        except OSError as exc:  # a full disk: one line (the estimations are lost, nothing tracked is)
            raise ColorizeError(f"cannot write the estimations to {str(self.out)!r}: {exc.strerror}") from None
        self.names.extend(names)

    def close(self, models: int) -> str:
        """The array renamed into place and the names written; what was written, said in a line."""
        said = [f"images of {self.sizes} sizes: no estimations.npy (one array holds one size)"]
        if self.sizes == 1:
            try:
                self.file.close()
                # both files whole before either is renamed: a rename cannot fail for want of space
                names = self.out / "img_names.txt.partial"
                names.write_text("".join(f"{name}\n" for name in self.names))
                self.partial.replace(self.out / "estimations.npy")
                names.replace(self.out / "img_names.txt")
            except OSError as exc:
                raise ColorizeError(f"cannot write the estimations to {str(self.out)!r}: {exc.strerror}") from None
            averaged = f", averaged over {models} models" if models > 1 else ""
            said = [f"{self.count} estimations {self.shape} uint8{averaged} -> {self.out / 'estimations.npy'}, "
                    f"names -> {self.out / 'img_names.txt'}"]
        if self.pngs:
            said.append(f"{len(self.pngs)} PNGs -> {self.out / 'images'}")
        return ", ".join(said)

    def discard(self) -> None:
        """After a failure: the half-written array removed."""
        if self.file is not None:
            self.file.close()
        for partial in (self.partial, self.out / "img_names.txt.partial"):
            partial.unlink(missing_ok=True)


def _write_npy_header(file: Any, shape: tuple[int, ...]) -> None:
    """The .npy header of a C-ordered uint8 array of `shape`, whose bytes follow as they are made."""
    import numpy as np

    np.lib.format.write_array_header_1_0(file, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                                "fortran_order": False, "shape": shape})


def colorize(models: list, groups: Sequence[Sequence[Path]], written: Estimations, device: Any, tta: bool) -> None:
    """Each group of images of one size colorized a chunk at a time into `written` (memory grows with
    the chunk, not with the folder), with a progress bar where stderr is a terminal."""
    from tqdm import tqdm

    from colorize.data.images import read_in_chunks
    from colorize.inference import predict

    # (every chunk's update shown: mininterval 0; a chunk is a few at most of a run's many seconds)
    with tqdm(total=sum(map(len, groups)), desc="colorizing", unit="image", leave=False, disable=None,
              mininterval=0) as bar:
        for group in groups:
            for images in read_in_chunks(group, require_color=False, one_size=ONE_SIZE):
                written.add(images.names, predict(models, images.gray, device, tta=tta))
                bar.update(len(images))


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli_parser("colorize-predict", __doc__)
    parser.add_argument("model", nargs="+", help="MLflow run id (a sweep's: its best trial), runs:/<run id>/best.pt, "
                        "models:/NAME@ALIAS or /VERSION, or checkpoint path; several are averaged (an ensemble)")
    parser.add_argument("images", type=Path, help="folder of images (gray or colour), or one image file")
    parser.add_argument("--out", type=Path, default=Path("outputs/estimations"), help="output folder")
    parser.add_argument("--uri", default=default_store_uri(),
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--tta", action="store_true",
                        help="test-time averaging over the mirror image and 1-pixel shifts (6 views, 6x the time)")
    parser.add_argument("--png", action="store_true",
                        help="also write each estimation as a PNG, OUT/images/<the image's name>.png, to look at "
                        "(images of several sizes: PNGs only)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise ColorizeError(f"--limit {args.limit} is invalid: must be an integer >= 1 (without it: every image)")
    sources = [parse_model(model) for model in args.model]  # a bad MODEL fails before any image is read
    from colorize.data.images import group_by_size, read_images
    from colorize.training.runtime import select_device

    device = select_device(args.device, "--device")
    files = input_images(args.images, args.limit)
    broken = next((f for f in files if "\n" in str(f) or "\r" in str(f)), None)
    if broken is not None:  # img_names.txt has one path per line: such a name would break it in two
        raise ColorizeError(f"image file name {str(broken)!r} holds a line break, which img_names.txt "
                            "(one path per line) cannot list: rename the file")
    pngs = png_names(files) if args.png else {}
    groups = group_by_size(files)  # (headers alone)
    if len(groups) > 1 and not pngs:  # one array holds one size: one line that names two, before anything is made
        read_images([groups[0][0], groups[1][0]], require_color=False, one_size=ONE_SIZE)
    models = load_models(sources, args.uri)
    make_folder(args.out)  # once every input has passed (bad input makes nothing), before the predictions
    if pngs:
        make_folder(args.out / "images", "--png")
    written = Estimations(args.out, len(files), len(groups), pngs)
    try:
        colorize(models, groups if pngs else [files], written, device, args.tta)
        print(written.close(len(models)))
    finally:
        written.discard()
    return 0


def cli() -> None:
    """The console script (and `python -m`): errors as one line, the exit status from main."""
    run_tool(main)


if __name__ == "__main__":
    cli()
