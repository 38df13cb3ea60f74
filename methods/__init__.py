"""Unlearning methods: one module per method, each registering its loss in `METHODS`."""

from . import ga_gd, grad_ascent, grad_diff  # noqa: F401  (registration happens on import)
from .base import METHODS, MethodContext, MethodSpec

__all__ = ["METHODS", "MethodContext", "MethodSpec"]
