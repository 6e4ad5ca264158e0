"""Device selection and small helpers shared by every stage."""

from __future__ import annotations

import os
import platform
import sys

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when available, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# The x86 features that choose onnxruntime's INT8 kernels: without VNNI its u8 x s8 products are summed in pairs into
# saturating 16 bits, so 8-bit weights can overflow them (docs/explanations/gate.md#int8-on-cpus-without-vnni).
INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
VNNI_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8")  # those that sum into 32 bits, without saturating


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` of /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.split(":", 1)[0].strip() == field),
                        None)
    except OSError:
        return None


def describe_machine(device: torch.device) -> str:
    """The processor (or GPU) a run used, for checkpoints and cards: e.g. ``AMD EPYC 9B14, 2 CPUs``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{describe_cpu()['model']}, {os.cpu_count()} CPUs"


def describe_cpu() -> dict:
    """The CPU a record was measured on: its model, architecture and, on x86, which of :data:`INT8_FEATURES` it
    has (an INT8 artifact's figures can depend on them; None where the system does not tell, as off Linux)."""
    flags = _cpuinfo("flags")
    return {"model": _cpuinfo("model name") or platform.processor() or platform.machine(),
            "machine": platform.machine(),
            "features": None if flags is None else [f for f in INT8_FEATURES if f in flags.split()]}


def show_progress() -> bool:
    """Progress bars only when a person is watching (stderr is a terminal)."""
    return sys.stderr.isatty()
