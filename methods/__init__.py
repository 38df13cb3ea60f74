"""Unlearning methods: one module per method, each registering its loss in `METHODS`."""

from . import dpo, ga_gd, grad_ascent, grad_diff, npo, rmu, simnpo, undial  # noqa: F401  (registration happens on import)
from .base import METHODS, MethodContext, MethodSpec

__all__ = ["METHODS", "MethodContext", "MethodSpec"]
