"""SatImp: gradient ascent reweighted per token by saturation and importance.

Yang et al., ICML 2025, "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning"
(arXiv 2505.11953). Two goals of loss reweighting: *saturation* (emphasise what is not yet unlearned:
the weight grows with the token probability p) and *importance* (emphasise the tokens that carry the
knowledge, which the paper finds have the lower likelihoods: the weight grows with 1 - p). SatImp
multiplies the two, held constant (no gradient through the weight):

    forget = mean over forget answer tokens of  w_t * log p_theta(y_t | y_<t, x),
    w_t = sg(p_t)^beta1 * (1 - sg(p_t))^beta2

(sg: stop-gradient; the mean is token-weighted over the batch). loss = gamma * forget + alpha * retain
term. beta2 = 0 is WGA (`wga`) with beta = beta1.

Defaults are the authors' recommendation in their code release (tmlr-group/SatImp): beta1 5,
beta2 0.1, and the retain NLL weighted 0.1 against the forget term (gamma 1, alpha 0.1: the forget
term ten times the retain term, as open-unlearning's SatImp notes also say). open-unlearning's
config differs (beta2 1, gamma 0.1, alpha 1); pass those to reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import METHODS, MethodContext
from .grad_diff import retain_needs
from .npo import check_non_negative, check_retain
from .wga import reweighted_ascent


@dataclass(frozen=True)
class SatImpArgs:
    beta1: float = 5.0  # power of p: the saturation weight
    beta2: float = 0.1  # power of 1 - p: the importance weight
    gamma: float = 1.0  # weight of the forget term
    alpha: float = 0.1  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_non_negative("beta1", self.beta1)
        check_non_negative("beta2", self.beta2)
        check_non_negative("gamma", self.gamma)
        check_retain(self.alpha, self.retain_loss)


def satimp_weight(nll: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """sg(p)^beta1 * (1 - sg(p))^beta2 per token (B, T), with p = exp(-NLL) the token's probability."""
    p = torch.exp(-nll.detach())
    return p ** beta1 * (1 - p).clamp_min(0) ** beta2


@METHODS.register("satimp", args=SatImpArgs, needs=retain_needs, version=1,
                  paper='Yang et al. 2025, "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning"')
def satimp(model, batch: dict, ctx: MethodContext):
    """SatImp: gamma*mean(sg(p)^beta1 (1-sg(p))^beta2 log p) over forget answer tokens + alpha*retain term."""
    a: SatImpArgs = ctx.args
    return reweighted_ascent(model, batch, ctx, lambda nll: satimp_weight(nll, a.beta1, a.beta2))
