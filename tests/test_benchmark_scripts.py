"""benchmarks/startup_parts.py and group_sizes.py, which gpu_check.sh runs on a lent GPU, and
benchmarks/store_open.py and replay.py: their logic on the CPU, on real faces, real processes and a real store."""

import csv

import pytest

from benchmarks import group_sizes, store_open
from benchmarks.startup_parts import main

PARTS = ["import torch", "device's first work", "first convolution", "import colorize.job",
         "open the sweep's store, one run", "decode the faces", "faces to the device"]


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


def test_group_sizes_trains_each_group_and_rates_its_members(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_FACES_ROOT", str(faces))
    rows = group_sizes.main(["--device", "cpu", "--limit", "16", "--sizes", "1", "3", "--epochs", "2",
                             "--out", str(tmp_path)])
    assert [(r["size"], r["epochs"], r["faces"]) for r in rows] == [(1, 2, 16), (3, 2, 16)]
    for row in rows:  # member-epochs per second: the group's members over its (later) epoch
        assert float(row["member_epochs_per_s"]) == pytest.approx(row["size"] / float(row["epoch_s"]), rel=0.01)
    assert rows[0]["val_s_per_member"] == rows[0]["val_share"] == ""  # one member: nothing to tell apart
    assert float(rows[1]["val_s_per_member"]) > 0 and 0 < float(rows[1]["val_share"]) < 1
    written = list(csv.DictReader((tmp_path / "group_sizes.csv").open()))
    assert [w["size"] for w in written] == ["1", "3"] and written[0]["device"].startswith("cpu (")


def test_group_sizes_verdict_fuses_only_when_the_largest_group_doubles_the_member_rate():
    rows = [{"size": 1, "member_epochs_per_s": "5.0"}, {"size": 15, "member_epochs_per_s": "10.0"}]
    assert group_sizes.verdict(rows) == "fuse"
    rows[1]["member_epochs_per_s"] = "9.9"
    assert group_sizes.verdict(rows) == "single"
    assert group_sizes.verdict(rows, margin=1.5) == "fuse"


def test_replay_compares_every_metric_but_the_epochs_seconds_and_refuses_other_epochs():
    from benchmarks.replay import differences

    before = {"val_mse": [(1, 0.5), (2, 0.25)], "lr": [(1, 0.1), (2, 0.1)], "epoch_seconds": [(1, 13.0), (2, 12.0)]}
    after = {"val_mse": [(1, 0.5), (2, 0.2)], "lr": [(1, 0.1), (2, 0.1)], "epoch_seconds": [(1, 9.0), (2, 8.0)]}
    assert differences(before, after) == {"lr": 0.0, "val_mse": pytest.approx(0.05)}
    with pytest.raises(SystemExit, match=r"val_mse: epochs \[1, 2\] before, \[1\] now"):
        differences(before, {**after, "val_mse": [(1, 0.5)]})
