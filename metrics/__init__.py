"""Evaluation metrics: one module per family, each registering in `METRICS`, all reading one context."""

from bench.core.registry import load_plugins

from . import knowledge, memorization, mia, multiple_choice, tofu  # noqa: F401  (registration happens on import)
from .base import (
    METRICS,
    MetricSpec,
    MetricUnavailable,
    Output,
    default_families,
    evaluate,
    metric_columns,
    metric_outputs,
    prefetch,
    written_families,
)
from .context import EvalConfig, EvalContext

load_plugins()  # a user's own metrics, after the built-in ones

__all__ = ["METRICS", "EvalConfig", "EvalContext", "MetricSpec", "MetricUnavailable", "Output", "default_families", "evaluate",
           "metric_columns", "metric_outputs", "prefetch", "written_families"]
