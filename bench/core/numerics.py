"""CPU kernels pinned to one instruction set, so the same seed gives the same numbers on any x86-64 CPU.

PyTorch and MKL pick their kernels by the CPU they find (AVX2 on one machine, AVX-512 on the next),
and the kernels round differently. One ulp is enough: a tiny model trained for 2,000 steps from the
same seed ends somewhere else, and a forget quality of 2e-4 on one machine reads 4e-7 on another.
On this harness's own runs, forcing torch's generic kernels instead of its AVX2 ones moved 17 of 49
metric columns of a miniature suite; MKL's AVX2 reproducibility mode moved 16.

So, unless told otherwise, the harness asks every library for its AVX2 code path, which nearly every
x86-64 CPU of the last ten years has (Intel since 2013, AMD Zen):

- `ATEN_CPU_CAPABILITY=avx2`: torch's vectorised kernels (read when torch is imported);
- `MKL_CBWR=AVX2,STRICT`: MKL's conditional numerical reproducibility mode (matrix products), strict:
  the same bits whatever the arrays' memory alignment. MKL's automatic mode promises neither: here,
  with nothing pinned, a miniature run moved 89 of 204 figures while the cores were busy with other
  work and none when they were idle;
- `ONEDNN_MAX_CPU_ISA=AVX2`: oneDNN's kernels.

They cost about 6% of a training step here. They must be set before torch is imported, which
`import bench` does first; a process that imported torch before the harness keeps its own kernels,
and `kernel_profile()` (stored in every row's `environment`) says which were in effect. Set
`BENCH_CPU_KERNELS=native` to leave the libraries their own choice (faster on AVX-512 machines, but
numbers then depend on the CPU). A variable the user set is never overridden. On other processors
(ARM) nothing is pinned: their numbers differ from x86's.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

OPT_OUT_ENV = "BENCH_CPU_KERNELS"
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"}


@functools.lru_cache(maxsize=None)
def _cpuinfo(field: str) -> str | None:
    """A field of the first CPU in /proc/cpuinfo (None where there is none, e.g. macOS); read once,
    as trial ids ask for the kernels often."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo("flags") or "").split())


def cpu_name() -> str:
    """The CPU's model name, e.g. "AMD EPYC" (platform.processor() is often empty on Linux)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_flags()
    return "avx2" in flags or not flags  # no cpuinfo to read (macOS, Windows): x86-64 CPUs have had it for a decade


def pin_cpu_kernels() -> dict[str, str]:
    """Sets the variables of `PINNED` that the user left unset; returns those it set.

    Does nothing when `BENCH_CPU_KERNELS=native`, on non-x86 CPUs, or once torch is imported
    (it would not read them any more: setting them would only make the rows lie).
    """
    if os.environ.get(OPT_OUT_ENV, "").lower() == "native" or "torch" in sys.modules or not _has_avx2():
        return {}
    set_now = {k: v for k, v in PINNED.items() if k not in os.environ}
    os.environ.update(set_now)
    return set_now


def kernel_key() -> dict[str, str | None]:
    """The kernel variables where they differ from the pinned ones, for cache keys and trial ids: a
    model prepared or a trial run on other kernels is another artifact. Empty in the default case (and
    where nothing is pinned, off x86), so those keys stay what they were before kernels were keyed."""
    current = {k: os.environ.get(k) for k in PINNED}
    return {} if current == PINNED or not _has_avx2() else current


def worker_env() -> dict[str, str]:
    """The kernel variables of this process, for processes started elsewhere (Ray workers on other nodes)."""
    return {k: os.environ[k] for k in (*PINNED, OPT_OUT_ENV) if k in os.environ}


def kernel_profile() -> dict:
    """The kernels in effect: torch's vector capability, the variables, and whether they are the pinned ones."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    variables = {k: os.environ.get(k) for k in PINNED}
    pinned = capability.lower() == PINNED["ATEN_CPU_CAPABILITY"] and variables == PINNED
    return {"cpu": cpu_name(), "torch_capability": capability, **variables, "pinned": pinned}
