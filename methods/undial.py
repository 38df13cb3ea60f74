"""UNDIAL: self-distillation toward the original model's logits with the true token pushed down.

Dong et al., NAACL 2025, "UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in
Large Language Models". At every forget answer position the teacher is the frozen original's
distribution with beta subtracted from the logit of the true next token x_t:
q = softmax(z_ref(.|x<t) - beta * onehot(x_t)). The loss is the cross-entropy CE(q, p_theta)
averaged over the answer tokens of the batch. The target keeps the rest of the original
distribution, so the model only loses the memorised token instead of being driven to arbitrary
text as in gradient ascent. The paper uses no retain term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import METHODS, MethodContext
from .losses import shifted_logits_labels, token_nll_from_logits
from .npo import check_non_negative


@dataclass(frozen=True)
class UNDIALArgs:
    beta: float = 10.0  # how far the true token's logit is lowered in the teacher

    def __post_init__(self):
        check_non_negative("beta", self.beta)


def adjusted_targets(ref_logits: torch.Tensor, tokens: torch.Tensor, beta: float) -> torch.Tensor:
    """softmax(ref_logits - beta * onehot(tokens)) over the last axis.

    Args:
        ref_logits: the teacher's logits (..., V).
        tokens: the true next token at each position (...).
        beta: how much the true token's logit is lowered.
    """
    adjusted = ref_logits.float().scatter_add(
        -1, tokens.unsqueeze(-1), torch.full(tokens.shape + (1,), -beta, dtype=torch.float32, device=tokens.device))
    return torch.softmax(adjusted, dim=-1)


def undial_loss(logits: torch.Tensor, ref_logits: torch.Tensor, tokens: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over positions of CE(p_theta, softmax(ref_logits - beta * onehot(tokens))).

    Args:
        logits: the student's logits at the answer positions (N, V).
        ref_logits: the frozen teacher's logits at the same positions (N, V).
        tokens: the true next token at each position (N,).
        beta: how much the true token's logit is lowered in the teacher.
    """
    targets = adjusted_targets(ref_logits.detach(), tokens, beta)
    # A batch whose answers were all truncated away gives 0, not the NaN of an empty mean.
    return F.cross_entropy(logits.float(), targets, reduction="sum") / max(tokens.numel(), 1)


@METHODS.register("undial", args=UNDIALArgs, needs={"forget", "reference"}, version=1,
                  paper='Dong et al. 2025, "UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in Large Language Models"')
def undial(model, batch: dict, ctx: MethodContext):
    """UNDIAL: CE to the reference's logits with the true token lowered by beta, over forget answer tokens."""
    a: UNDIALArgs = ctx.args
    logits, labels, mask = shifted_logits_labels(model, batch["forget"])
    with torch.no_grad():
        ref_logits, _, _ = shifted_logits_labels(ctx.reference, batch["forget"])
    # Only answer positions enter the loss; selecting them first keeps the (N, V) teacher small.
    loss = undial_loss(logits[mask], ref_logits[mask], labels[mask], a.beta)
    forget_nll = token_nll_from_logits(logits.detach()[mask], labels[mask]).sum() / mask.sum().clamp_min(1)
    return loss, {"forget_loss": float(loss.detach()), "forget_nll": float(forget_nll)}
