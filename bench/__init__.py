"""Benchmark harness for machine unlearning in large language models."""

__version__ = "0.1.0"
