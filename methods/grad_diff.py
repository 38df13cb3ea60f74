"""Gradient difference: ascent on the forget set, descent on the retain set.

Liu et al. 2022, "Continual Learning and Private Unlearning"; the GradDiff baseline of TOFU
(Maini et al. 2024). loss = -gamma * NLL(forget) + alpha * L_retain, with L_retain the NLL of the
retain answers or KL(p_ref || p_theta) on their tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.errors import check_choice

from .base import METHODS, MethodContext
from .losses import joint_token_nll, masked_mean, mean_nll, retain_kl

RETAIN_LOSSES = ("nll", "kl")


@dataclass(frozen=True)
class GradDiffArgs:
    gamma: float = 1.0  # weight of the forget (ascent) term
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_choice("retain_loss", self.retain_loss, RETAIN_LOSSES)


def retain_term(model, batch: dict, ctx: MethodContext, kind: str) -> torch.Tensor:
    """The retain loss shared by methods that keep utility with a retain term."""
    if kind == "kl":
        return retain_kl(model, ctx.reference, batch["retain"])
    return mean_nll(model, batch["retain"])


def answer_nlls_and_retain(model, batch: dict, ctx: MethodContext, streams: list[str],
                           retain_loss: str) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Per-token answer NLLs (B, T) and answer masks of the named streams, and the retain term.

    With the NLL retain term every stream and the retain batch share one forward pass; the KL term needs
    the retain logits themselves, so it gets its own pass through `retain_term`.
    """
    inputs = [batch[s] for s in streams]
    if retain_loss == "nll":
        *outs, (r_nll, r_mask) = joint_token_nll(model, *inputs, batch["retain"])
        return outs, masked_mean(r_nll, r_mask)
    return joint_token_nll(model, *inputs), retain_term(model, batch, ctx, retain_loss)


def retain_needs(args) -> frozenset:
    return frozenset({"forget", "retain"} | ({"reference"} if args.retain_loss == "kl" else set()))


def grad_diff_loss(forget_nll: torch.Tensor, retain_loss: torch.Tensor, gamma: float, alpha: float) -> torch.Tensor:
    return -gamma * forget_nll + alpha * retain_loss


@METHODS.register("grad_diff", args=GradDiffArgs, needs=retain_needs, version=1,
                  paper='Liu et al. 2022, "Continual Learning and Private Unlearning"; TOFU\'s GradDiff (Maini et al. 2024)')
def grad_diff(model, batch: dict, ctx: MethodContext):
    """Gradient difference: -gamma*NLL(forget) + alpha*(NLL or KL on retain)."""
    a: GradDiffArgs = ctx.args
    [(f_nll, f_mask)], retain = answer_nlls_and_retain(model, batch, ctx, ["forget"], a.retain_loss)
    forget_nll = masked_mean(f_nll, f_mask)
    loss = grad_diff_loss(forget_nll, retain, a.gamma, a.alpha)
    return loss, {"forget_nll": float(forget_nll.detach()), "retain_loss": float(retain.detach())}
