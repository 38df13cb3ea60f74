"""Gradient ascent: maximise the NLL of the forget answers.

The simplest unlearning baseline (e.g. Jang et al. 2023, "Knowledge Unlearning for Mitigating
Privacy Risks in Language Models"; the GA baseline of TOFU, Maini et al. 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import METHODS, MethodContext
from .losses import mean_nll


@dataclass(frozen=True)
class GradAscentArgs:
    pass


@METHODS.register("grad_ascent", args=GradAscentArgs, needs={"forget"}, version=1,
                  paper='Jang et al. 2023, "Knowledge Unlearning for Mitigating Privacy Risks in Language Models"')
def grad_ascent(model, batch: dict, ctx: MethodContext):
    """Gradient ascent on the forget set: loss = -NLL(forget), token-weighted over the batch."""
    forget_nll = mean_nll(model, batch["forget"])
    return -forget_nll, {"forget_nll": float(forget_nll.detach())}
