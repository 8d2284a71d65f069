"""Decoded splits kept for the next job of the same process: colorize's one piece of process state.

Hydra's basic launcher runs a sweep's trials one after another in one process (the joblib launcher
reuses its workers the same way), and every trial of a sweep usually reads the same data. Decoding
the 6,500 course faces costs seconds per trial; this cache pays it once per process.

- Keyed by the data config as composed (every key of the `data` group) plus the environment variable
  that can move the faces (`COLORIZE_FACES_ROOT`), so a different root or limit decodes anew.
- Bounded: at most `COLORIZE_DATA_CACHE` splits (default 2; least recently used dropped first;
  0 turns it off). The full faces take ~170 MB as uint8 tensors.
- Splits hold uint8 tensors that nothing mutates: each job converts them into its own float copies.
- Files changed on disk during a sweep are not re-read by the jobs of that same process.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Callable, Mapping

from colorize.data.images import Splits

DEFAULT_SIZE = 2


def cache_size() -> int:
    """Splits kept per process: `$COLORIZE_DATA_CACHE` (an integer >= 0), default 2."""
    value = os.environ.get("COLORIZE_DATA_CACHE", "")
    if not value:
        return DEFAULT_SIZE
    if not value.isdigit():
        raise ValueError(f"COLORIZE_DATA_CACHE={value!r} is invalid: must be an integer >= 0 (0 turns the cache off)")
    return int(value)


class SplitCache:
    """A small least-recently-used map from a data config to its decoded splits."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, Splits] = OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def key(data_config: Mapping) -> str:
        where = {"COLORIZE_FACES_ROOT": os.environ.get("COLORIZE_FACES_ROOT")}
        return json.dumps([data_config, where], sort_keys=True, default=str)

    def get(self, data_config: Mapping, load: Callable[[], Splits]) -> Splits:
        """The splits for `data_config`: cached, or `load()`ed and kept (up to :func:`cache_size`)."""
        size = cache_size()
        key = self.key(data_config)
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        splits = load()
        if size > 0:
            self._items[key] = splits
            while len(self._items) > size:
                self._items.popitem(last=False)
        return splits

    def __len__(self) -> int:
        return len(self._items)


SPLITS = SplitCache()  # the process's cache (see the module docstring)
