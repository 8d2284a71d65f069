"""Fused trials: the forward pass of several models of one architecture as one stacked model.

`torch.func.vmap` over `torch.func.functional_call` turns the members' convolutions into one
grouped convolution per layer, so one forward and one backward serve the whole group. Each member
keeps its own parameters, optimizer, generator and early stopping: the parameters are stacked
afresh at every step (a few small copies for these nets), so the gradients land on each member's
own tensors and its own optimizer steps them exactly as in a trial of its own (any optimizer, any
lr, momentum or weight decay). Buffers (BatchNorm statistics) are stacked too and written back.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap


class StackedForward:
    """`forward(x)` with `x` of shape (members, batch, ...) returns (members, batch, ...): member g's
    model applied to `x[g]`. All models must share one architecture (the same parameter shapes)."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.models = list(models)
        base = self.models[0]
        shapes = [[p.shape for p in m.parameters()] for m in self.models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("fused members need one architecture: their parameter shapes differ")
        self.base = base
        self.param_names = [n for n, _ in base.named_parameters()]
        self.buffer_names = [n for n, _ in base.named_buffers()]
        self.params = [list(m.parameters()) for m in self.models]
        self.buffers = [list(m.buffers()) for m in self.models]
        # randomness="different": a dropout layer draws its own mask per member, as separate trials would
        self._batched = vmap(self._one, in_dims=(0, 0, 0), randomness="different")

    def _one(self, params: dict, buffers: dict, x: Tensor) -> Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def __len__(self) -> int:
        return len(self.models)

    def __call__(self, x: Tensor) -> Tensor:
        if x.shape[0] != len(self.models):
            raise ValueError(f"a fused batch has {x.shape[0]} members, the group {len(self.models)}")
        params = {n: torch.stack([p[i] for p in self.params]) for i, n in enumerate(self.param_names)}
        buffers = {n: torch.stack([b[i] for b in self.buffers]) for i, n in enumerate(self.buffer_names)}
        out = self._batched(params, buffers, x)
        if self.buffer_names and self.base.training:  # BatchNorm updated its running statistics in place
            with torch.no_grad():
                for i, n in enumerate(self.buffer_names):
                    torch._foreach_copy_([b[i] for b in self.buffers], list(buffers[n].unbind(0)))
        return out


class StackedModule(nn.Module):
    """A fused group as one module (its members' parameters and buffers are its own), whose forward is
    their StackedForward: what `torch.cuda.make_graphed_callables` captures for a group
    (colorize/training/graphs.py), since it takes modules, not callables over other modules' weights."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)
        self.stacked = StackedForward(models)

    def forward(self, x: Tensor) -> Tensor:
        return self.stacked(x)
