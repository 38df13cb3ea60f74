"""Evaluation metrics: one module per family, each registering in `METRICS`, all reading one context."""

from . import memorization, mia, tofu  # noqa: F401  (registration happens on import)
from .base import (
    METRICS,
    MetricSpec,
    MetricUnavailable,
    evaluate,
    metric_columns,
    prefetch,
)
from .context import EvalConfig, EvalContext

__all__ = ["METRICS", "EvalConfig", "EvalContext", "MetricSpec", "MetricUnavailable", "evaluate", "metric_columns", "prefetch"]
