"""Checkpoints: a plain dict of tensors and primitives, loadable with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from torch import nn

from colorize.config import build, saved_model
from colorize.errors import ColorizeError
from colorize.names import BEST, LAST

__all__ = ["BEST", "LAST", "load_model", "load_weights", "read_checkpoint", "save_checkpoint"]

FORMAT = "colorize-checkpoint/1"


def save_checkpoint(path: Path, model: nn.Module, model_config: dict, **extra: Any) -> Path:
    """Write atomically (temp file + rename) so a failed write never clobbers an older file."""
    payload = {"format": FORMAT, "model_config": model_config, "state_dict": model.state_dict(), **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: Path) -> dict:
    """Load a checkpoint's dict without unpickling arbitrary objects."""
    if not Path(path).is_file():
        raise ColorizeError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # (torch warns of a foreign file's pickle protocol: it is refused anyway)
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # pickle.UnpicklingError and friends: refuse, never execute
        # never torch's own advice (weights_only=False): exactly what must not be done with such a file
        raise ColorizeError(f"checkpoint {str(path)!r} was refused: it is not a colorize checkpoint, or not a "
                            "safe one (it cannot be read without running code from it); "
                            f"use a {BEST} or {LAST} that colorize wrote") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ColorizeError(f"checkpoint {str(path)!r} is not a colorize checkpoint ({FORMAT})")
    return payload


def load_model(path: Path) -> tuple[nn.Module, dict]:
    """Rebuild the checkpoint's model from its stored config and load its weights."""
    payload = read_checkpoint(path)
    model = build(saved_model(payload["model_config"]))
    load_weights(model, payload["state_dict"], str(path))
    return model, payload


def load_weights(model: nn.Module, state_dict: dict, source: str) -> None:
    """Strictly load weights; a mismatch names the missing/unexpected keys and bad shapes."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if own[k].shape != state_dict[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes))
        raise ColorizeError(f"checkpoint {source!r} does not fit the model config: " + ", ".join(parts))
    model.load_state_dict(state_dict)
