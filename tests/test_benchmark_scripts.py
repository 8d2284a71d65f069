"""benchmarks/startup_parts.py, which gpu_check.sh runs on a lent GPU, and benchmarks/store_open.py:
their logic on the CPU, in real fresh processes started at once, on real faces and a real store."""

import csv

from benchmarks import store_open
from benchmarks.startup_parts import main

PARTS = ["import torch", "device's first work", "first convolution", "import colorize.job", "decode the faces",
         "faces to the device", "new MLflow store, one run"]


def test_startup_parts_times_each_part_in_fresh_processes(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_FACES_ROOT", str(faces))
    rows = main(["--device", "cpu", "--procs", "1", "2", "--limit", "16", "--out", str(tmp_path)])
    assert [(r["procs"], r["part"]) for r in rows] == [(n, part) for n in (1, 2) for part in PARTS]
    for row in rows:
        assert 0 <= float(row["median_s"]) <= float(row["max_s"])
    assert float(rows[0]["median_s"]) > 0.05  # importing torch takes a while in a fresh process
    written = list(csv.DictReader((tmp_path / "startup_parts.csv").open()))
    assert len(written) == 14 and written[0]["device"].startswith("cpu (")


def test_store_open_times_processes_released_together_on_one_store(tmp_path):
    rows = store_open.main(["--procs", "1", "3", "--repeats", "2", "--out", str(tmp_path)])
    assert [r["procs"] for r in rows] == [1, 3]
    for row in rows:
        spans = [float(s) for s in row["spans"].split()]
        assert len(spans) == 2 and min(spans) <= float(row["span_s"]) <= max(spans)
        assert 0 < float(row["median_open_s"]) <= max(spans)  # no process opened after the last one
    written = list(csv.DictReader((tmp_path / "store_open.csv").open()))
    assert [w["procs"] for w in written] == ["1", "3"] and written[0]["device"].startswith("cpu (")
