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

The token NLL of the forget answers together with the retain term (one forward pass for the NLL
term) is shared with `satimp`, whose saturation weight is this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import METHODS, MethodContext
from .grad_diff import retain_needs, retain_term
from .losses import joint_token_nll, masked_mean
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


def forget_token_nll_and_retain(model, batch: dict, ctx: MethodContext,
                                retain_loss: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token NLL of the forget answers, their mask, and the retain term.

    With the NLL retain term the forget and retain batches share one forward pass; the KL term needs
    the retain logits themselves, so it gets its own pass through `retain_term`.

    Returns:
        The forget token NLLs (B, T), 0 off the answer; the answer mask (B, T); the scalar retain term.
    """
    if retain_loss == "nll":
        (f_nll, f_mask), (r_nll, r_mask) = joint_token_nll(model, batch["forget"], batch["retain"])
        return f_nll, f_mask, masked_mean(r_nll, r_mask)
    [(f_nll, f_mask)] = joint_token_nll(model, batch["forget"])
    return f_nll, f_mask, retain_term(model, batch, ctx, retain_loss)


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


@METHODS.register("wga", args=WGAArgs, needs=retain_needs, version=1,
                  paper='Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond"')
def wga(model, batch: dict, ctx: MethodContext):
    """WGA: gamma*mean(sg(p)^beta * log p) over forget answer tokens + alpha*retain term."""
    a: WGAArgs = ctx.args
    nll, mask, retain = forget_token_nll_and_retain(model, batch, ctx, a.retain_loss)
    weight = wga_weight(nll, a.beta)
    forget = weighted_ascent_loss(nll, mask, weight)
    loss = a.gamma * forget + a.alpha * retain
    parts = {
        "forget_loss": float(forget.detach()),
        "forget_nll": float(masked_mean(nll.detach(), mask)),
        "mean_weight": float(masked_mean(weight, mask)),
        "retain_loss": float(retain.detach()),
    }
    return loss, parts
