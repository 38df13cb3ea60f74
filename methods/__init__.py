"""Unlearning methods: one module per method, each registering its loss in `METHODS`."""

from bench.core.registry import load_plugins

from . import dpo, ga_gd, grad_ascent, grad_diff, npo, rmu, simnpo, undial  # noqa: F401  (registration happens on import)
from .base import METHODS, MethodContext, MethodSpec

load_plugins()  # a user's own methods, after the built-in ones

__all__ = ["METHODS", "MethodContext", "MethodSpec"]
