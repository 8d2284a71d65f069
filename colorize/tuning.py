"""Process settings that speed up small-CNN training on CPUs, measured in benchmarks/ (tuning).

* glibc's malloc hands activation buffers above its mmap threshold back to the kernel after every
  step and maps them again on the next one (page faults, zeroing); raising the thresholds keeps them.
* libgomp's worker threads go to sleep between the many small parallel regions of a batch-16 step;
  ``OMP_WAIT_POLICY=ACTIVE`` keeps them spinning. Only when the job owns its cores (one job, or
  parallel jobs with one thread each), and it must be set before torch is imported.

`apply()` is called first thing by `python -m colorize.train`; ``COLORIZE_TUNING=0`` turns it off,
and an ``OMP_WAIT_POLICY`` or ``MALLOC_*`` variable set by the user always wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 512 * 1024 * 1024


def enabled() -> bool:
    return os.environ.get("COLORIZE_TUNING", "1") != "0"


def apply() -> dict:
    """Apply what is enabled and not overridden; return what was set (for logging)."""
    done: dict = {}
    if not enabled():
        return done
    if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
        done["OMP_WAIT_POLICY"] = "ACTIVE"
    if sys.platform.startswith("linux") and not any(k.startswith("MALLOC_") for k in os.environ):
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            libc = ctypes.CDLL(libc_name)
            if hasattr(libc, "mallopt"):
                ok = libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) and libc.mallopt(M_TRIM_THRESHOLD, 2 * KEEP_BYTES)
                if ok:
                    done["malloc"] = f"mmap/trim thresholds {KEEP_BYTES >> 20} MiB"
    return done
