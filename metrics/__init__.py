"""Evaluation metrics: one module per family, each registering in `METRICS`, all reading one context."""

from . import tofu  # noqa: F401  (registration happens on import)
from .base import METRICS, MetricSpec, evaluate, metric_columns
from .context import EvalConfig, EvalContext

__all__ = ["METRICS", "MetricSpec", "EvalConfig", "EvalContext", "evaluate", "metric_columns"]
