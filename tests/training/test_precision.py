"""trainer.precision=auto: bf16 only where the device computes it natively (decision table + a real run)."""

import warnings

import pytest
import torch

from colorize.training.precision import Hardware, bf16_is_native, cpu_flags, onednn_allows_bf16, resolve_precision
from tests.conftest import run_cli
from tests.test_train import runs_in

ZEN4 = frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"})
SKYLAKE = frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"})  # AVX-512, no BF16
SAPPHIRE_RAPIDS = SKYLAKE | {"avx512_bf16", "amx_bf16", "amx_tile"}
AMX_ONLY = SKYLAKE | {"amx_bf16"}
EPYC_AVX2 = frozenset({"avx", "avx2", "fma"})


@pytest.mark.parametrize("hw,native", [
    # CUDA: compute capability 8.0 (Ampere) and later; a T4 (sm75) emulates bf16
    (Hardware("cuda", cuda_capability=(7, 5)), False),
    (Hardware("cuda", cuda_capability=(8, 0)), True),
    (Hardware("cuda", cuda_capability=(9, 0)), True),
    # CPUs, uncapped
    (Hardware("cpu", cpu_flags=EPYC_AVX2, aten_capability="AVX2"), False),
    (Hardware("cpu", cpu_flags=SKYLAKE), False),
    (Hardware("cpu", cpu_flags=ZEN4), True),
    (Hardware("cpu", cpu_flags=SAPPHIRE_RAPIDS), True),
    (Hardware("cpu", cpu_flags=AMX_ONLY), True),
    # each capped by ONEDNN_MAX_CPU_ISA below AVX512_CORE_BF16 ...
    (Hardware("cpu", cpu_flags=ZEN4, onednn_max_isa="AVX2"), False),
    (Hardware("cpu", cpu_flags=ZEN4, onednn_max_isa="AVX512_CORE_VNNI"), False),
    (Hardware("cpu", cpu_flags=SAPPHIRE_RAPIDS, onednn_max_isa="avx2"), False),
    (Hardware("cpu", cpu_flags=AMX_ONLY, onednn_max_isa="AVX512_CORE"), False),
    (Hardware("cpu", cpu_flags=SKYLAKE, onednn_max_isa="AVX2"), False),
    # ... or at/above it (or to everything), where bf16 stays native
    (Hardware("cpu", cpu_flags=ZEN4, onednn_max_isa="AVX512_CORE_BF16"), True),
    (Hardware("cpu", cpu_flags=SAPPHIRE_RAPIDS, onednn_max_isa="AVX512_CORE_AMX"), True),
    (Hardware("cpu", cpu_flags=ZEN4, onednn_max_isa="ALL"), True),
    # ATen capped to AVX2 (ATEN_CPU_CAPABILITY=avx2): its bf16 kernels are emulated
    (Hardware("cpu", cpu_flags=ZEN4, aten_capability="AVX2"), False),
    (Hardware("cpu", cpu_flags=ZEN4, onednn_max_isa="AVX2", aten_capability="AVX2"), False),
    (Hardware("mps"), False),
])
def test_auto_decision_table(hw, native):
    assert bf16_is_native(hw) is native
    assert resolve_precision("auto", torch.device(hw.device_type if hw.device_type != "mps" else "cpu"), hw) == (
        "bf16" if native else "fp32")


def test_unknown_isa_cap_counts_as_a_cap():
    assert not onednn_allows_bf16("AVX3000") and onednn_allows_bf16(None) and onednn_allows_bf16("")


def test_fp32_is_always_fp32_and_explicit_bf16_warns_once_where_emulated():
    emulated = Hardware("cpu", cpu_flags=SKYLAKE)
    assert resolve_precision("fp32", torch.device("cpu"), Hardware("cpu", cpu_flags=ZEN4)) == "fp32"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            assert resolve_precision("bf16", torch.device("cpu"), emulated) == "bf16"
    assert len(caught) == 1 and "many times slower than fp32" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # native: no warning at all
        assert resolve_precision("bf16", torch.device("cpu"), Hardware("cpu", cpu_flags=ZEN4)) == "bf16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.e2e
def test_a_run_capped_to_avx2_resolves_auto_to_fp32(faces, mlflow_uri, tmp_path):
    """A real run with ONEDNN_MAX_CPU_ISA=AVX2: its MLflow tag reads fp32, whatever this CPU has."""
    proc = run_cli(
        "data=faces", f"data.root={faces}", "data.limit=16", "trainer.max_epochs=1", "trainer.precision=auto",
        f"tracking.uri={mlflow_uri}", "tracking.experiment=precision", f"hydra.run.dir={tmp_path}",
        env={"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "precision fp32 (trainer.precision=auto)" in proc.stderr + proc.stdout
    _, runs = runs_in(mlflow_uri, "precision")
    assert [(r.data.tags["precision"], r.data.params["trainer.precision"]) for r in runs] == [("fp32", "auto")]
