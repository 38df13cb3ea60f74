"""The GA+GD forget/retain factor recipe.

Every answer token carries its example's signed factor f: negative on forget examples (gradient
ascent), positive on retain examples (gradient descent). The loss is the mean over the batch's
answer tokens of f x token NLL. Retain examples are repeated `retain_repeat` times so they outweigh
the forget ones; repeating an example r times is the same as giving its tokens weight r in both the
sum and the token count, which is how it is computed here (no duplicated forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.errors import FieldError

from .base import METHODS, MethodContext
from .losses import joint_token_nll, masked_mean


@dataclass(frozen=True)
class GAGDArgs:
    forget_factor: float = -0.1  # factor of every forget answer token (negative: ascent)
    retain_factor: float = 5.0  # factor of every retain answer token (positive: descent)
    retain_repeat: int = 5  # times each retain example appears in the batch

    def __post_init__(self):
        if self.retain_repeat < 1:
            raise FieldError("retain_repeat", "an integer >= 1", self.retain_repeat)


def signed_factor_loss(token_nlls: list[torch.Tensor], masks: list[torch.Tensor], factors: list[float],
                       repeats: list[int]) -> torch.Tensor:
    """Mean over all (repeated) answer tokens of factor x token NLL.

    Args:
        token_nlls: per group, token NLLs (B, T), zero off the answer.
        masks: per group, the answer-token mask (B, T).
        factors: per group, the signed factor of its tokens.
        repeats: per group, how many times each of its examples is counted.
    """
    total = sum(f * r * nll.sum() for nll, f, r in zip(token_nlls, factors, repeats))
    count = sum(r * m.sum() for m, r in zip(masks, repeats))
    return total / count.clamp_min(1)


@METHODS.register("ga_gd", args=GAGDArgs, needs={"forget", "retain"}, version=1,
                  paper='Yao et al. 2024, "Machine Unlearning of Pre-trained Large Language Models" (GA+GD), with signed per-token factors')
def ga_gd(model, batch: dict, ctx: MethodContext):
    """GA+GD recipe: mean over answer tokens of signed factor x NLL (forget < 0, retain > 0, retain repeated)."""
    a: GAGDArgs = ctx.args
    (f_nll, f_mask), (r_nll, r_mask) = joint_token_nll(model, batch["forget"], batch["retain"])
    loss = signed_factor_loss([f_nll, r_nll], [f_mask, r_mask], [a.forget_factor, a.retain_factor], [1, a.retain_repeat])
    parts = {
        "forget_nll": float(masked_mean(f_nll.detach(), f_mask)),
        "retain_nll": float(masked_mean(r_nll.detach(), r_mask)),
    }
    return loss, parts
