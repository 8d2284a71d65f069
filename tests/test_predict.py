"""Estimations in the course's submission format and the evaluator, on real faces."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from colorize.data.images import list_images, read_images
from colorize.evaluate import score
from colorize.inference import predict
from colorize.training.checkpoint import load_model
from colorize.job import JobContext, JobResult, run_job
from colorize.errors import ColorizeError
from tests.conftest import run_cli

VAL_LIMIT = 40


def train_short(faces, mlflow_uri, out, seed: int):
    """A short real training run (first 40 val images) with its checkpoint in MLflow."""
    from hydra import compose, initialize_config_module
    from colorize.paths import CONFIG_MODULE

    with initialize_config_module(CONFIG_MODULE):
        cfg = compose("train", overrides=[
            "data=faces", f"data.root={faces}", f"data.limit={VAL_LIMIT}", "model.layers=2", "model.tanh=true",
            "optimizer.lr=0.1", "trainer.max_epochs=2", f"trainer.seed={seed}", f"tracking.uri={mlflow_uri}",
            "tracking.experiment=predict",
        ])
    result = run_job(cfg, JobContext(out))
    assert isinstance(result, JobResult) and result.status == "FINISHED" and 0 < result.objective < 1
    return result.run_id, out / "best.pt"


@pytest.fixture(scope="module")
def trained_run(faces, mlflow_uri, tmp_path_factory):
    return train_short(faces, mlflow_uri, tmp_path_factory.mktemp("trained"), seed=0)


@pytest.mark.e2e
def test_test_split_estimations_have_the_submission_format(faces, trained_run, mlflow_uri, tmp_path):
    """... and with --png, each estimation as a PNG named after its image, pixel for pixel."""
    run_id, _ = trained_run
    proc = run_cli(run_id, str(faces / "test" / "images"), "--out", str(tmp_path), "--uri", mlflow_uri, "--png",
                   module="colorize.predict")
    assert proc.returncode == 0, proc.stderr[-3000:]
    est = np.load(tmp_path / "estimations.npy")
    assert est.shape == (100, 80, 80, 3) and est.dtype == np.uint8
    names = (tmp_path / "img_names.txt").read_text().splitlines()
    assert len(names) == 100 and names[0].endswith("test/images/0.jpg") and names[10].endswith("/10.jpg")
    assert len(list((tmp_path / "images").iterdir())) == 100
    for i in (0, 10, 99):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "images" / f"{i}.png")), est[i])
    assert proc.stdout.strip().endswith(f"PNGs -> {tmp_path / 'images'}")


def test_two_images_that_would_share_a_png_are_one_line_before_anything_is_read(trained_run, tmp_path):
    from colorize.predict import main

    (tmp_path / "in").mkdir()
    for name in ("a.jpg", "a.png"):
        Image.new("L", (8, 8)).save(tmp_path / "in" / name)
    with pytest.raises(ColorizeError, match=r"^--png: images '.*/a\.(jpg|png)' and '.*/a\.(png|jpg)' would both be "
                                            r"written as a\.png: rename one, or leave out --png$"):
        main([str(trained_run[1]), str(tmp_path / "in"), "--png", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("form", ["run_id", "runs_uri", "path"])
def test_val_estimations_score_what_training_logged(faces, trained_run, mlflow_uri, tmp_path, form):
    run_id, ckpt = trained_run
    model = {"run_id": run_id, "runs_uri": f"runs:/{run_id}/best.pt", "path": str(ckpt)}[form]
    proc = run_cli(model, str(faces / "val" / "images"), "--limit", str(VAL_LIMIT), "--out", str(tmp_path),
                   "--uri", mlflow_uri, module="colorize.predict")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ev = run_cli(str(tmp_path / "estimations.npy"), str(tmp_path / "img_names.txt"), module="colorize.evaluate")
    assert ev.returncode == 0, ev.stderr
    printed = float(ev.stdout.split("12-margin accuracy:")[1].split()[0])
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(run_id)
    assert printed == pytest.approx(run.data.metrics["best_val_margin12_accuracy"], abs=5e-5)


def test_an_ensemble_rounds_the_mean_of_its_models():
    torch.manual_seed(0)
    a, b = torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.Conv2d(1, 3, 3, padding=1)
    gray = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    x = gray.float() / 127.5 - 1.0
    with torch.no_grad():
        by_hand = ((((a(x) + b(x)) / 2).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    both = predict([a, b], gray, torch.device("cpu"), batch_pixels=2 * 64)  # batches split mid-set: same result
    assert both.shape == (5, 8, 8, 3) and np.array_equal(both, by_hand.numpy())
    assert not np.array_equal(both, predict(a, gray, torch.device("cpu")))
    assert np.array_equal(predict([a, a], gray, torch.device("cpu")), predict(a, gray, torch.device("cpu")))


class Recording(torch.nn.Module):
    """A real convolution that records the batch size of each forward pass."""

    def __init__(self):
        super().__init__()
        self.conv, self.batches = torch.nn.Conv2d(1, 3, 3, padding=1), []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.conv(x)


def test_a_forward_pass_holds_at_most_the_pixel_budget_and_a_larger_image_goes_alone():
    """A network's activations grow with the pixels of a batch: 500 faces, or one large photo, not 500."""
    torch.manual_seed(0)
    model, gray = Recording(), torch.randint(0, 256, (7, 1, 8, 8), dtype=torch.uint8)
    whole = predict(model, gray, torch.device("cpu"))
    assert model.batches == [7]
    model.batches.clear()
    assert np.array_equal(predict(model, gray, torch.device("cpu"), batch_pixels=3 * 64 + 10), whole)
    assert model.batches == [3, 3, 1]
    model.batches.clear()
    assert np.array_equal(predict(model, gray, torch.device("cpu"), batch_pixels=10), whole)
    assert model.batches == [1] * 7


def test_a_folder_is_colorized_a_chunk_at_a_time_into_the_same_estimations(faces, trained_run, tmp_path,
                                                                            monkeypatch):
    """Chunks of 3 faces: the array and PNGs equal one pass's; a file that cannot be decoded, met in a
    later chunk, is one line that names it, and leaves no half array and the earlier array in place."""
    import colorize.data.images as images
    import colorize.predict as cli

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(8):
        shutil.copy(faces / "val" / "images" / f"{i}.jpg", folder)
    ckpt = str(trained_run[1])
    assert cli.main([ckpt, str(folder), "--out", str(tmp_path / "one"), "--png"]) == 0
    monkeypatch.setattr(images, "CHUNK_PIXELS", 3 * 80 * 80)
    assert cli.main([ckpt, str(folder), "--out", str(tmp_path / "chunks"), "--png"]) == 0
    one, chunks = (np.load(tmp_path / out / "estimations.npy") for out in ("one", "chunks"))
    assert chunks.shape == (8, 80, 80, 3) and np.array_equal(chunks, one)
    for i in range(8):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "chunks" / "images" / f"{i}.png")), one[i])
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == ["estimations.npy", "images", "img_names.txt"]

    (folder / "6.jpg").write_bytes((folder / "6.jpg").read_bytes()[:600])  # its header reads; its pixels do not
    with pytest.raises(ColorizeError, match=r"^cannot read image '.*/6\.jpg'"):
        cli.main([ckpt, str(folder), "--out", str(tmp_path / "chunks")])
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == ["estimations.npy", "images", "img_names.txt"]
    assert np.array_equal(np.load(tmp_path / "chunks" / "estimations.npy"), one)


def run_in_terminal(*args: str, module: str) -> tuple[int, str]:
    """`python -m module args` with its stdout and stderr on a real pseudo-terminal: (status, what it wrote)."""
    import fcntl
    import struct
    import termios

    master, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # (a new one is 0 x 0)
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=terminal,
                            stderr=terminal, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(terminal)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command ended, and the terminal with it
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=300), out.decode(errors="replace")


@pytest.mark.e2e
def test_a_terminal_shows_how_far_colorizing_has_got_and_a_pipe_does_not(faces, trained_run, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(8):
        shutil.copy(faces / "val" / "images" / f"{i}.jpg", folder)
    code, out = run_in_terminal(str(trained_run[1]), str(folder), "--out", str(tmp_path / "tty"),
                                module="colorize.predict")
    assert code == 0, out[-3000:]
    assert "colorizing:" in out and "0/8" in out and "8/8" in out and "8 estimations (8, 80, 80, 3)" in out
    proc = run_cli(str(trained_run[1]), str(folder), "--out", str(tmp_path / "pipe"), module="colorize.predict")
    assert proc.returncode == 0 and "colorizing" not in proc.stderr + proc.stdout


def test_one_image_file_is_colorized_as_a_folder_of_it_is(faces, trained_run, tmp_path):
    """IMAGES may be one image file: its estimation, name and PNG as a folder holding it alone gives;
    a file of another kind is one line, before anything is made."""
    from colorize.predict import main

    ckpt, face = str(trained_run[1]), faces / "val" / "images" / "1.jpg"
    (tmp_path / "alone").mkdir()
    shutil.copy(face, tmp_path / "alone")
    assert main([ckpt, str(tmp_path / "alone"), "--out", str(tmp_path / "folder")]) == 0
    assert main([ckpt, str(face), "--out", str(tmp_path / "one"), "--png"]) == 0
    one = np.load(tmp_path / "one" / "estimations.npy")
    assert one.shape == (1, 80, 80, 3) and np.array_equal(one, np.load(tmp_path / "folder" / "estimations.npy"))
    assert (tmp_path / "one" / "img_names.txt").read_text() == f"{face}\n"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one" / "images" / "1.png")), one[0])
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ColorizeError, match=r"^images '.*/notes\.txt' is a file but not an image: expected a folder "
                                            r"of images or one image file ending in \.jpg, \.jpeg, \.png, \.bmp$"):
        main([ckpt, str(tmp_path / "notes.txt"), "--out", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()


def test_an_array_of_one_size_refuses_estimations_of_another(tmp_path):
    """The .npy header is written from the first chunk: a chunk of another size would corrupt it."""
    from colorize.predict import Estimations

    written = Estimations(tmp_path, 3, 1, {})
    written.add(["a", "b"], np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ColorizeError, match=r"estimations of \(9, 8, 3\) cannot join an array of \(8, 8, 3\)"):
        written.add(["c"], np.zeros((1, 9, 8, 3), np.uint8))
    written.discard()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_several_models_are_averaged_from_the_command_line(faces, trained_run, mlflow_uri, tmp_path):
    """A run id and another run's checkpoint path, averaged: the estimations are the ensemble's."""
    run_a, ckpt_a = trained_run
    _, ckpt_b = train_short(faces, mlflow_uri, tmp_path / "b", seed=1)
    proc = run_cli(run_a, str(ckpt_b), str(faces / "val" / "images"), "--limit", "8", "--out", str(tmp_path),
                   "--uri", mlflow_uri, module="colorize.predict")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "8 estimations (8, 80, 80, 3) uint8, averaged over 2 models" in proc.stdout
    est = np.load(tmp_path / "estimations.npy")
    gray = read_images(list_images(faces / "val" / "images", 8), require_color=False).gray
    models = [load_model(ckpt)[0] for ckpt in (ckpt_a, ckpt_b)]
    assert np.array_equal(est, predict(models, gray, torch.device("cpu")))
    assert not np.array_equal(est, predict(models[0], gray, torch.device("cpu")))


def test_score_against_hand_made_arrays():
    truth = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    est = truth.copy()
    est[0, 0, 0] = [11, 12, 200]  # image 0: 2 of 12 values off by >= 12
    est[1] = 12  # image 1: every value off by exactly 12
    assert score(est, truth) == pytest.approx(((12 - 2) / 12 + 0) / 2)
    with pytest.raises(ColorizeError, match=r"shape \(2, 2, 2, 3\) but the ground truth is \(1, 2, 2, 3\)"):
        score(est, truth[:1])


@pytest.mark.e2e
def test_evaluate_reads_ground_truth_from_the_listed_paths(tmp_path):
    truth = np.full((4, 5, 3), 100, dtype=np.uint8)
    for i in range(2):
        Image.fromarray(truth).save(tmp_path / f"{i}.png")
    est = np.stack([truth, truth]).copy()
    est[1, 0, 0, 0] = 120  # one value of 60 off in image 1
    np.save(tmp_path / "est.npy", est)
    (tmp_path / "names.txt").write_text(f"{tmp_path}/0.png\n{tmp_path}/1.png\n")
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 0, proc.stderr
    assert f"12-margin accuracy: {(1 + 59 / 60) / 2:.4f}" in proc.stdout
    cast = est.copy()
    cast[0, ..., 2] += 14  # image 0 turns blue: B 14 too high, corrected by a Cb offset of -8
    cast[1, 0, 0, 0] = 200  # image 1: one value 100 off, which no cast correction reaches
    np.save(tmp_path / "est.npy", cast)
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), "--cast", module="colorize.evaluate")
    assert proc.returncode == 0, proc.stderr
    assert f"12-margin accuracy: {(2 / 3 + 59 / 60) / 2:.4f}" in proc.stdout
    assert f"with each image's colour cast corrected: {(1 + 59 / 60) / 2:.4f}" in proc.stdout
    assert "the images' casts foreseen: R² nan (mean Cb), nan (mean Cr)" in proc.stdout  # both truths gray


def test_an_evaluation_a_chunk_at_a_time_prints_what_one_pass_does(faces, tmp_path, monkeypatch, capsys):
    """Chunks of 3 faces: the same accuracy, and the same --cast lines, as one pass; the accuracy is
    score() of the whole arrays."""
    import colorize.data.images as images
    import colorize.evaluate as evaluate

    names = [faces / "val" / "images" / f"{i}.jpg" for i in range(8)]
    truth = np.stack([np.asarray(Image.open(name).convert("RGB")) for name in names])
    noise = np.random.default_rng(0).integers(-20, 21, truth.shape)
    np.save(tmp_path / "est.npy", np.clip(truth.astype(int) + noise, 0, 255).astype(np.uint8))
    (tmp_path / "names.txt").write_text("".join(f"{name}\n" for name in names))
    args = [str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), "--cast"]
    assert evaluate.main(args) == 0
    whole = capsys.readouterr().out
    monkeypatch.setattr(images, "CHUNK_PIXELS", 3 * 80 * 80)
    assert evaluate.main(args) == 0
    assert capsys.readouterr().out == whole
    assert f"12-margin accuracy: {score(np.load(tmp_path / 'est.npy'), truth):.4f}" in whole


@pytest.mark.e2e
def test_mismatched_estimations_fail_clearly(tmp_path, faces):
    np.save(tmp_path / "est.npy", np.zeros((3, 80, 80, 3), dtype=np.uint8))
    (tmp_path / "names.txt").write_text(f"{faces}/val/images/0.jpg\n{faces}/val/images/1.jpg\n")
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "colorize: error: 2 image names but 3 estimations: counts must match"
    np.save(tmp_path / "est.npy", np.zeros((2, 64, 64, 3), dtype=np.uint8))
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1
    assert "estimations have shape (2, 64, 64, 3) but the ground truth is (2, 80, 80, 3)" in proc.stderr
    np.save(tmp_path / "est.npy", np.zeros((2, 80, 80, 3), dtype=np.float32))
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1 and "must be a uint8 array N x H x W x 3, got float32" in proc.stderr
    np.save(tmp_path / "est.npy", np.zeros((0, 80, 80, 3), dtype=np.uint8))
    (tmp_path / "names.txt").write_text("\n")
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: '{tmp_path / 'names.txt'}' lists no image: nothing to score (expected one path per line)")


@pytest.mark.e2e
def test_missing_run_and_empty_folder_fail_clearly(faces, mlflow_uri, tmp_path):
    proc = run_cli("f" * 32, str(faces / "test" / "images"), "--uri", mlflow_uri, "--out", str(tmp_path),
                   module="colorize.predict")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"colorize: error: run '{'f' * 32}' does not exist in the MLflow store" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("f" * 32, str(empty), "--uri", mlflow_uri, "--out", str(tmp_path), module="colorize.predict")
    assert proc.returncode == 1 and f"data folder '{empty}' holds no images" in proc.stderr


@pytest.mark.e2e
def test_an_output_folder_that_cannot_be_made_is_one_line_before_predicting(faces, trained_run, tmp_path):
    """Once a traceback after the whole prediction (FileNotFoundError from np.save)."""
    (tmp_path / "a_file").write_text("in the way")
    proc = run_cli(str(trained_run[1]), str(faces / "test" / "images"), "--out", str(tmp_path / "a_file" / "out"),
                   module="colorize.predict")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: --out '{tmp_path / 'a_file' / 'out'}' is invalid: cannot make that folder (Not a directory)")


def test_a_data_path_that_is_a_file_is_said_to_be_one(tmp_path):
    from colorize.errors import DataError

    (tmp_path / "README.md").write_text("not images")
    with pytest.raises(DataError, match="^data folder '.*README.md' is not a folder$"):
        list_images(tmp_path / "README.md")
    with pytest.raises(DataError, match="^data folder '.*nowhere' does not exist$"):
        list_images(tmp_path / "nowhere")


def test_tta_maps_every_view_back():
    """A pointwise model commutes with mirroring and shifting: TTA changes nothing inside the border."""
    from colorize.inference import predict

    model = torch.nn.Conv2d(1, 3, 1)
    gray = torch.randint(0, 256, (4, 1, 12, 12), dtype=torch.uint8)
    plain = predict(model, gray, torch.device("cpu"))
    averaged = predict(model, gray, torch.device("cpu"), tta=True)
    assert averaged.shape == plain.shape == (4, 12, 12, 3)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    assert abs(averaged[inner].astype(int) - plain[inner].astype(int)).max() <= 1  # rounding of the mean


@pytest.mark.parametrize("tta", [False, True])
def test_a_unet_colorizes_images_of_any_size_every_pixel_in_place(tta):
    """This U-Net's side must divide by 2^depth x stride = 8; these images' (81 x 97, 7 x 9) do not,
    and a photo's need not. Its estimations have each image's own size, and every pixel sits where it
    was: a chroma U-Net keeps the gray image as its luma, so the estimate's luma is the input, pixel for
    pixel, borders included (a crop off by a row or a column would not be; before, such an image was
    refused). With `tta`, inside the border, which a 1-pixel shift makes up by reflection."""
    from colorize.config.build import model_of
    from colorize.data.images import luma
    from colorize.inference import predict

    torch.manual_seed(0)
    model = model_of("unet", depth=2, channels=4, stride=2, chroma=True)
    assert model.multiple == 8
    with torch.no_grad():
        for param in model.head.parameters():  # colour offsets small enough that no channel clips at 0 or 255
            param.mul_(0.02)
    for size in ((81, 97), (7, 9)):
        gray = torch.randint(40, 216, (3, 1, *size), dtype=torch.uint8)
        est = predict(model, gray, torch.device("cpu"), tta=tta)
        assert est.shape == (3, *size, 3) and est.dtype == np.uint8
        assert 0 < est.min() and est.max() < 255
        off = np.abs(np.stack([luma(e) for e in est]).astype(int) - gray[:, 0].numpy().astype(int))
        assert (off[:, 1:-1, 1:-1] if tta else off).max() <= 1  # (each channel rounded)


def test_padding_reaches_the_multiple_around_the_image_by_reflection():
    from colorize.inference import padded

    x = torch.arange(80 * 80.0).view(1, 1, 80, 80)
    assert padded(x, 8)[0] is x  # a multiple already: untouched
    p, (rows, cols) = padded(x, 12)  # 80 -> 84: 2 rows above and below
    assert p.shape[-2:] == (84, 84) and (rows, cols) == (slice(2, 82), slice(2, 82))
    assert torch.equal(p[..., rows, cols], x) and torch.equal(p[..., 1, 2:82], x[..., 1, :])  # (reflected)
    p, (rows, cols) = padded(torch.ones(1, 1, 7, 9), 8)  # 7 -> 8: 0 above, 1 below; 9 -> 16: 3 left, 4 right
    assert p.shape[-2:] == (8, 16) and (rows, cols) == (slice(0, 7), slice(3, 12))
    assert padded(torch.ones(1, 1, 3, 3), 8)[0].shape[-2:] == (8, 8)  # too small to reflect: edges repeated


def test_images_of_several_sizes_are_colorized_each_size_apart_as_pngs(faces, trained_run, tmp_path, capsys):
    """Without --png, one line before anything is made (the course's array holds one size); with it,
    each image's PNG at its own size, as it would be colorized alone, and no estimations.npy."""
    from colorize.predict import main

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, size in (("0.jpg", None), ("1.jpg", (96, 64)), ("2.jpg", (33, 50)), ("3.jpg", None)):
        image = Image.open(faces / "test" / "images" / name)
        (image.resize(size) if size else image).save(folder / name)
    ckpt = str(trained_run[1])
    with pytest.raises(ColorizeError) as refused:
        main([ckpt, str(folder), "--out", str(tmp_path / "array")])
    assert str(refused.value) == (f"image '{folder / '1.jpg'}' is 96x64, but '{folder / '0.jpg'}' is 80x80: the "
                                  "course's array holds one size (--png colorizes images of several sizes, each as its "
                                  "own PNG)")
    assert not (tmp_path / "array").exists()

    assert main([ckpt, str(folder), "--out", str(tmp_path / "pngs"), "--png"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"images of 3 sizes: no estimations.npy (one array holds one size), 4 PNGs -> {tmp_path / 'pngs' / 'images'}")
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["images"]
    pngs = {p.name: np.asarray(Image.open(p)) for p in (tmp_path / "pngs" / "images").iterdir()}
    assert {name: a.shape for name, a in pngs.items()} == {
        "0.png": (80, 80, 3), "1.png": (64, 96, 3), "2.png": (50, 33, 3), "3.png": (80, 80, 3)}
    (tmp_path / "alone").mkdir()
    shutil.copy(folder / "1.jpg", tmp_path / "alone")
    assert main([ckpt, str(tmp_path / "alone"), "--out", str(tmp_path / "alone_out")]) == 0
    assert np.array_equal(np.load(tmp_path / "alone_out" / "estimations.npy")[0], pngs["1.png"])
