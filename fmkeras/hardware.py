"""What this machine computes fast: a GPU, or bfloat16 natively on the CPU (AMX / AVX512-BF16).

Read by `train.precision=auto` (fmkeras.train.trainer.resolve_precision) and by the choice of the default
recipe (fmkeras.recipes.default_recipe); both follow a oneDNN ISA cap (ONEDNN_MAX_CPU_ISA=AVX2 makes an AMX CPU
train as one without it).
"""
from __future__ import annotations

import os

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still include native bfloat16 instructions.
_BF16_ISA_CAPS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                  "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2")


def cpu_has_native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bfloat16 in hardware (AMX-BF16 or AVX512-BF16 flags) and oneDNN may use it
    (ONEDNN_MAX_CPU_ISA, when set, allows a bfloat16 ISA). False where /proc/cpuinfo does not exist (macOS)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in _BF16_ISA_CAPS:
        return False
    try:
        with open(cpuinfo) as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def has_gpu() -> bool:
    """True when TensorFlow sees a GPU (it then trains there, whatever the CPU's flags)."""
    import tensorflow as tf
    return bool(tf.config.list_physical_devices("GPU"))
