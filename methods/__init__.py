"""Unlearning methods: one module per method, each registering its loss in `METHODS`."""

from bench.core.registry import load_plugins

from . import (  # noqa: F401  (registration happens on import)
    altpo, ce_u, dpo, ga_gd, grad_ascent, grad_diff, idk_nll, npo, pdu, rmu, satimp, simnpo, undial, wga,
)
from .base import METHODS, MethodContext, MethodSpec

load_plugins()  # a user's own methods, after the built-in ones

__all__ = ["METHODS", "MethodContext", "MethodSpec"]
