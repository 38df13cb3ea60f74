"""CE-U: cross-entropy toward the model's own distribution with the true token taken out.

Bo Yang 2025, "CE-U: Cross Entropy Unlearning" (arXiv 2503.01224). At every forget answer position
the target is the model's own current distribution, held constant, with the true next token y_t's
logit set to -inf: q = softmax(sg(z) - inf * onehot(y_t)). The loss is the cross-entropy
CE(q, p_theta), averaged over the answer tokens of the batch. Its gradient on the logits is p - q: the
true token's logit is pushed down with force p(y_t), strong while the model still believes the token
and fading as it stops (gradient ascent's force, 1 - p(y_t), is the other way round), while the
target keeps the other tokens' relative probabilities. This is UNDIAL's loss (`undial`) with the
model itself as the teacher and beta = inf, and is computed by the same function.

Choices: no retain term, as in the paper (which reports its results without a reference model or
retain data) and open-unlearning's CE-U; and the first answer token of every example is left out of
the loss (`ignore_first` 1), the paper's training-settings footnote as implemented by
open-unlearning (`ignore_first_n_answer_tokens: 1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.core.errors import FieldError

from .base import METHODS, MethodContext
from .losses import shifted_logits_labels, token_nll_from_logits
from .undial import undial_loss


@dataclass(frozen=True)
class CEUArgs:
    ignore_first: int = 1  # answer tokens at the start of each forget answer left out of the loss

    def __post_init__(self):
        if isinstance(self.ignore_first, bool) or not isinstance(self.ignore_first, int) or self.ignore_first < 0:
            raise FieldError("ignore_first", "an integer >= 0", self.ignore_first)


def without_first_answer_tokens(mask: torch.Tensor, n: int) -> torch.Tensor:
    """The answer mask (B, T) with each row's first `n` answer positions cleared."""
    return mask & (mask.cumsum(dim=1) > n)


def ce_u_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean over positions of CE(p_theta, softmax(sg(logits) with the true token's logit at -inf)).

    Args:
        logits: the model's logits at the positions unlearned (N, V); they are also the target's.
        tokens: the true next token at each position (N,).
    """
    return undial_loss(logits, logits.detach(), tokens, math.inf)


@METHODS.register("ce_u", args=CEUArgs, needs={"forget"}, version=1,
                  paper='Yang 2025, "CE-U: Cross Entropy Unlearning"')
def ce_u(model, batch: dict, ctx: MethodContext):
    """CE-U: CE to the model's own detached distribution with the true token's logit at -inf, over forget answers."""
    a: CEUArgs = ctx.args
    logits, labels, mask = shifted_logits_labels(model, batch["forget"])
    keep = without_first_answer_tokens(mask, a.ignore_first)
    # Only the positions unlearned enter the loss; selecting them first keeps the (N, V) target small.
    loss = ce_u_loss(logits[keep], labels[keep])
    forget_nll = token_nll_from_logits(logits.detach()[mask], labels[mask]).sum() / mask.sum().clamp_min(1)
    return loss, {"forget_loss": float(loss.detach()), "forget_nll": float(forget_nll)}
