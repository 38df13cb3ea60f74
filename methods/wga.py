"""Weighted gradient ascent: gradient ascent whose tokens count by how likely the model still finds them.

Wang et al., ICLR 2025, "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond"
(arXiv 2502.19301). Plain gradient ascent weighs every forget token's gradient by 1/p (the
"inverse confidence" of its log), so tokens already pushed to a low probability p dominate the update
and unlearning overshoots. WGA multiplies each token's log-likelihood by its own probability raised
to beta, held constant (no gradient through the weight):

    forget = mean over forget answer tokens of  w_t * log p_theta(y_t | y_<t, x),   w_t = sg(p_t)^beta

(sg: stop-gradient; the mean is token-weighted over the batch). Minimising it lowers log p, and a token
stops counting once its probability has fallen. loss = gamma * forget + alpha * retain term.

Defaults: beta 1 and gamma = alpha = 1 with the NLL retain term, as in open-unlearning's WGA config
(whose method notes give beta 1 as the paper's value); the authors' own G-effect scripts fall back to
beta 5 when none is given, and their bare `wga` runs have no retain term (`alpha=0` here).

The reweighted ascent itself (`reweighted_ascent`) is shared with `satimp`, whose saturation weight is
this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import METHODS, MethodContext
from .grad_diff import answer_nlls_and_retain, retain_needs
from .losses import masked_mean
from .npo import check_non_negative, check_retain


@dataclass(frozen=True)
class WGAArgs:
    beta: float = 1.0  # power of the token probability that weighs each forget token
    gamma: float = 1.0  # weight of the forget term
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_non_negative("beta", self.beta)
        check_non_negative("gamma", self.gamma)
        check_retain(self.alpha, self.retain_loss)


def weighted_ascent_loss(nll: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """-mean over answer tokens of weight * NLL; the weight carries no gradient.

    Args:
        nll: per-token NLL (B, T), 0 off the answer.
        mask: the answer-token mask (B, T).
        weight: each token's weight (B, T), computed from the detached probabilities.
    """
    return -masked_mean(weight.detach() * nll, mask)


def wga_weight(nll: torch.Tensor, beta: float) -> torch.Tensor:
    """sg(p)^beta per token (B, T), with p = exp(-NLL) the token's probability."""
    return torch.exp(-nll.detach()) ** beta


def reweighted_ascent(model, batch: dict, ctx: MethodContext, weight_fn) -> tuple[torch.Tensor, dict]:
    """gamma * (-mean of weight * NLL over forget answer tokens) + alpha * retain term, with the token
    weights `weight_fn(nll)` (WGA's and SatImp's differ only there); returns the loss and its logged parts."""
    a = ctx.args
    [(nll, mask)], retain = answer_nlls_and_retain(model, batch, ctx, ["forget"], a.retain_loss)
    weight = weight_fn(nll)
    forget = weighted_ascent_loss(nll, mask, weight)
    parts = {
        "forget_loss": float(forget.detach()),
        "forget_nll": float(masked_mean(nll.detach(), mask)),
        "mean_weight": float(masked_mean(weight, mask)),
        "retain_loss": float(retain.detach()),
    }
    return a.gamma * forget + a.alpha * retain, parts


@METHODS.register("wga", args=WGAArgs, needs=retain_needs, version=1,
                  paper='Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond"')
def wga(model, batch: dict, ctx: MethodContext):
    """WGA: gamma*mean(sg(p)^beta * log p) over forget answer tokens + alpha*retain term."""
    return reweighted_ascent(model, batch, ctx, lambda nll: wga_weight(nll, ctx.args.beta))
