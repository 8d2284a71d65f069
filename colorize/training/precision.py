"""Which arithmetic a run computes in: float32, or bfloat16 autocast where the device has it natively.

bfloat16 halves the memory traffic of a conv net, but only hardware with bf16 units gains from it:
elsewhere every bf16 op is emulated and the run is many times slower than fp32 (10.7x measured on an
AVX2-only CPU). So ``trainer.precision=auto`` chooses bf16 only where it is native:

- CUDA: compute capability >= 8.0 (Ampere and later). ``torch.cuda.is_bf16_supported()`` is not
  used: by default it also says yes where bf16 is emulated (a T4, sm75).
- CPU: the AVX512-BF16 or AMX-BF16 flag, and neither oneDNN (``ONEDNN_MAX_CPU_ISA``) nor ATen
  (``ATEN_CPU_CAPABILITY``) capped below AVX-512. ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``
  is not used: it only checks AVX-512 BW/VL/DQ (true on Skylake, which emulates bf16) and ignores
  the cap.

:func:`bf16_is_native` is the pure decision; :func:`probe` reads its inputs off this process.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

# oneDNN's ISA names and their feature bitmasks (dnnl_cpu_isa_t): a cap allows an ISA when the
# cap's mask contains the ISA's mask.
ONEDNN_ISA_MASKS = {
    "SSE41": 0x1, "AVX": 0x3, "AVX2": 0x7, "AVX2_VNNI": 0xF, "AVX2_VNNI_2": 0x1F,
    "AVX512_CORE": 0x27, "AVX512_CORE_VNNI": 0x67, "AVX512_CORE_BF16": 0xE7,
    "AVX10_1_512": 0x1EF, "AVX512_CORE_FP16": 0x1EF,
    "AVX10_1_512_AMX": 0xFEF, "AVX512_CORE_AMX": 0xFEF,
    "AVX10_1_512_AMX_FP16": 0x1FEF, "AVX512_CORE_AMX_FP16": 0x1FEF,
}
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


@dataclass(frozen=True)
class Hardware:
    """What the decision needs to know about a device (read by :func:`probe`, or given in tests)."""

    device_type: str  # "cpu" | "cuda"
    cuda_capability: Optional[tuple[int, int]] = None
    cpu_flags: frozenset[str] = frozenset()
    onednn_max_isa: Optional[str] = None  # $ONEDNN_MAX_CPU_ISA, unset = no cap
    aten_capability: str = "AVX512"  # torch.backends.cpu.get_cpu_capability()


def onednn_allows_bf16(cap: Optional[str]) -> bool:
    """Whether oneDNN capped at `cap` may use its AVX512-BF16 kernels (an unknown name: no)."""
    if cap is None or cap.strip().upper() in ("", "ALL", "DEFAULT"):
        return True
    mask = ONEDNN_ISA_MASKS.get(cap.strip().upper())
    bf16 = ONEDNN_ISA_MASKS["AVX512_CORE_BF16"]
    return mask is not None and mask & bf16 == bf16


def bf16_is_native(hw: Hardware) -> bool:
    """True where bfloat16 runs on native units (see the module docstring for the rule)."""
    if hw.device_type == "cuda":
        return hw.cuda_capability is not None and hw.cuda_capability >= (8, 0)
    if hw.device_type != "cpu":
        return False
    return (
        any(flag in hw.cpu_flags for flag in BF16_FLAGS)
        and onednn_allows_bf16(hw.onednn_max_isa)
        and hw.aten_capability.upper().startswith("AVX512")
    )


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux; empty elsewhere, which means fp32)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def probe(device: torch.device) -> Hardware:
    """This process's view of `device`: CUDA capability, or CPU flags and the ISA caps in force."""
    if device.type == "cuda":
        return Hardware("cuda", cuda_capability=torch.cuda.get_device_capability(device))
    return Hardware(
        device.type,
        cpu_flags=cpu_flags(),
        onednn_max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"),
        aten_capability=torch.backends.cpu.get_cpu_capability(),
    )


def resolve_precision(requested: str, device: torch.device, hw: Optional[Hardware] = None) -> str:
    """`fp32` or `bf16` for a run asking for `requested` (fp32 | bf16 | auto) on `device`.

    An explicit bf16 where it is not native is kept (the user asked for it) with one warning.
    """
    requested = getattr(requested, "value", requested)
    if requested == "fp32":
        return "fp32"
    native = bf16_is_native(hw or probe(device))
    if requested == "auto":
        return "bf16" if native else "fp32"
    if not native:
        warnings.warn(
            f"trainer.precision=bf16 on {device.type}: this device has no native bfloat16, so it is emulated "
            "and may train many times slower than fp32 (use trainer.precision=auto or fp32)",
            RuntimeWarning,
            stacklevel=2,
        )
    return "bf16"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bfloat16 autocast for `precision="bf16"` (mixed precision), a no-op for "fp32"."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision={precision!r} is invalid: must be fp32 or bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
