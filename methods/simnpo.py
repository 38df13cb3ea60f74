"""SimNPO: NPO without the reference model, on length-normalised log-probs.

Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM
Unlearning". The reference log-prob of NPO is replaced by a margin delta and the sequence log-prob
by its mean per answer token, so long answers are not favoured over short ones:
gamma * (-(2/beta) * mean(log sigmoid(-beta * (log p_theta(a|q)/|a| + delta)))) + alpha * retain term,
|a| the number of answer tokens of each example. The margin sits inside beta * (...), as in the
authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.core.errors import FieldError

from .base import METHODS, MethodContext
from .grad_diff import retain_needs
from .npo import answer_logps_and_retain, check_non_negative, check_positive, check_retain, token_mean_nll


@dataclass(frozen=True)
class SimNPOArgs:
    beta: float = 4.5  # inverse temperature of the length-normalised log-prob
    delta: float = 0.0  # reward margin, inside beta * (...)
    gamma: float = 0.125  # weight of the forget term
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_positive("beta", self.beta)
        if self.delta != self.delta:  # NaN would silently turn every loss into NaN
            raise FieldError("delta", "a real number (not NaN)", self.delta)
        check_non_negative("gamma", self.gamma)
        check_retain(self.alpha, self.retain_loss)


def simnpo_forget_loss(logp: torch.Tensor, n_tokens: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """-(2/beta) * mean(log sigmoid(-beta * (logp/|a| + delta))), without the weight gamma.

    Args:
        logp: log p_theta(a|q) per example (B,), summed over the answer tokens.
        n_tokens: |a|, the number of answer tokens per example (B,). An example with none (its
            answer truncated away) counts as length 1, so its log-prob of 0 stays 0 instead of NaN.
        beta: inverse temperature, > 0.
        delta: the margin.
    """
    per_token = logp / n_tokens.clamp_min(1).to(logp.dtype)
    return -(2.0 / beta) * F.logsigmoid(-beta * (per_token + delta)).mean()


@METHODS.register("simnpo", args=SimNPOArgs, needs=retain_needs, version=1,
                  paper='Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning"')
def simnpo(model, batch: dict, ctx: MethodContext):
    """SimNPO: gamma*(-(2/beta)*mean(log sigmoid(-beta*(log p/|a| + delta)))) on forget + alpha*retain term."""
    a: SimNPOArgs = ctx.args
    [(logp, n_tokens)], retain = answer_logps_and_retain(model, batch, ctx, ["forget"], a.retain_loss)
    forget = simnpo_forget_loss(logp, n_tokens, a.beta, a.delta)
    loss = a.gamma * forget + a.alpha * retain
    parts = {
        "forget_loss": float(forget.detach()),
        "forget_nll": token_mean_nll(logp, n_tokens),
        "retain_loss": float(retain.detach()),
    }
    return loss, parts
