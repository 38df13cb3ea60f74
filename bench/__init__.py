"""Benchmark harness for machine unlearning in large language models.

Importing `bench` pins the CPU kernels (before anything loads torch) and nothing else: a plugin
package that imports `bench.core` must not pull in the API, the runner or torch. `bench.Unlearning`
is loaded on first use.
"""

from bench.core.numerics import pin_cpu_kernels

pin_cpu_kernels()  # before anything imports torch: the same numbers on every x86-64 CPU (see bench.core.numerics)

__all__ = ["Unlearning"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Unlearning":
        from bench.api import Unlearning

        return Unlearning
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
