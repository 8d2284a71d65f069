"""CUDA graphs for the training step (`trainer.cuda_graphs: auto | on | forward | off`): here the
model's forward and backward; the whole step, where a run allows it, in step_graphs.py
(training/loop.py: `capture_for` chooses).

The study's nets are tiny: on a GPU a step is a few hundred microsecond-long kernels, and the host
launching them is the bottleneck. A CUDA graph records the model's forward and backward once and
replays them with one launch. What is captured and why:

- the model's forward and backward, through torch's own `torch.cuda.make_graphed_callables`
  (warm-up on a side stream, a shared memory pool, autograd wired to the replay); the loss, the
  optimizer step and the EMA stay eager. So the lr needs no special handling: SGD has no
  `capturable` mode, and an lr schedule moving a captured optimizer would need a tensor lr or a
  recapture; here the optimizer reads its lr every step as before.
- batches of the captured shape replay; the last, smaller batch of an epoch (4,500 = 281 x 16 + 4)
  runs the module's own forward eagerly, so every epoch sees the same samples as without graphs.
- fp32 only (autocast inside a capture needs its cache off; bf16 buys nothing on these nets, see
  docs/gpu); augmentation keeps drawing from the run's CPU generator, outside the graph.
- a fused group (colorize/training/fused.py: `StackedModule`, its members as one module) only with
  `on` or `forward`, captured again whenever a member leaves the group: opt-in until a GPU has measured it.

`auto` means on for CUDA (with fp32), and falls back to eager with one warning if the capture
fails; `on` and `forward` fail in one line where they cannot apply (a CPU, bf16); `off` never captures.
On a lent H200 (docs/gpu/README.md, 2026-12-04) tests/training/test_graphs.py passed and a graphed
epoch of the study's 2-conv net took 0.73 s against the eager loop's 0.97 s; 16 graphed trials at
once are what `hydra/launcher=fused` chooses on CUDA.
"""

from __future__ import annotations

import copy
import logging
from typing import Optional, cast

import torch
from torch import Tensor, nn

from colorize.errors import ColorizeError

log = logging.getLogger("colorize")


def use_cuda_graphs(setting: str, device: torch.device, precision: str) -> bool:
    """Whether a run captures its step: `setting` (auto | on | forward | off) on `device` at `precision`."""
    setting = getattr(setting, "value", setting)
    if setting == "off":
        return False
    why_not = ("needs a CUDA device" if device.type != "cuda" else
               "needs trainer.precision=fp32" if precision != "fp32" else "")
    if why_not and setting != "auto":
        raise ColorizeError(f"trainer.cuda_graphs={setting} {why_not} (this run: {device.type}, {precision}): "
                            "use trainer.cuda_graphs=auto or off")
    return not why_not


class GraphedForward:
    """The model's forward and backward as a CUDA graph for batches shaped like the captured one;
    any other shape (an epoch's last, smaller batch) runs the module's own forward."""

    def __init__(self, model: nn.Module, sample: Tensor) -> None:
        self.shape = tuple(sample.shape)
        self.eager = type(model).forward  # make_graphed_callables replaces the instance's forward
        # a module in, a module out (its forward and backward graphed)
        self.model = cast(nn.Module, torch.cuda.make_graphed_callables(model, (sample.clone(),)))

    def __call__(self, x: Tensor) -> Tensor:
        if tuple(x.shape) == self.shape and self.model.training:
            return self.model(x)
        return self.eager(self.model, x)


def capture(model: nn.Module, sample: Tensor, required: bool) -> Optional[GraphedForward]:
    """Capture `model` (in training mode) for batches like `sample`; None if it fails and not `required`."""
    model.train()
    kept = copy.deepcopy(model.state_dict())  # the warm-up steps move BatchNorm's running statistics
    try:
        graphed = GraphedForward(model, sample)
        model.load_state_dict(kept)  # (in place: the graph's tensors stay where they were captured)
        return graphed
    except Exception as exc:  # an op that cannot be captured: train eagerly (auto) or say so (on)
        if required:
            raise ColorizeError(f"trainer.cuda_graphs=on: the step could not be captured: {exc}") from None
        log.warning("CUDA graph capture failed (%s): training eagerly", str(exc).splitlines()[0])
        return None
