"""Benchmark harness for machine unlearning in large language models."""

from .numerics import pin_cpu_kernels

pin_cpu_kernels()  # before anything imports torch: the same numbers on every x86-64 CPU (see bench.numerics)

from .api import Unlearning  # noqa: E402

__all__ = ["Unlearning"]
__version__ = "0.1.0"
