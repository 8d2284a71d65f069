"""colorize/training/runtime.py: how many torch threads a job takes."""

import pytest

from colorize.cores import available_cores
from colorize.errors import ColorizeError
from colorize.training.runtime import resolve_num_threads


def test_a_set_num_threads_wins_over_omp_num_threads():
    assert resolve_num_threads(3, 1, env={"OMP_NUM_THREADS": "5"}) == 3


@pytest.mark.parametrize("omp,threads", [("5", 5), ("1", 1), ("4,2", 4), (" 2 ", 2)])
def test_auto_honours_omp_num_threads_as_torch_does(omp, threads):
    """The first of OpenMP's comma-separated levels; the number of parallel jobs plays no part then
    (joblib sets the variable to each worker's share itself)."""
    assert resolve_num_threads(0, 1, env={"OMP_NUM_THREADS": omp}) == threads
    assert resolve_num_threads(0, 8, env={"OMP_NUM_THREADS": omp}) == threads


def test_auto_without_omp_num_threads_is_each_jobs_share_of_the_cores():
    cores = available_cores()
    assert resolve_num_threads(0, 1, env={}) == cores
    assert resolve_num_threads(0, 2, env={"OMP_NUM_THREADS": ""}) == max(1, cores // 2)
    assert resolve_num_threads(0, cores + 1, env={}) == 1  # never 0


@pytest.mark.parametrize("omp", ["0", "two", "-1", "1.5"])
def test_a_bad_omp_num_threads_is_one_line_naming_it(omp):
    with pytest.raises(ColorizeError, match=rf"^OMP_NUM_THREADS='{omp}' is invalid: must be a positive integer"):
        resolve_num_threads(0, 1, env={"OMP_NUM_THREADS": omp})
