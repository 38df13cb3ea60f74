"""DPO with a refusal as the preferred answer.

Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward
Model", used for unlearning as in TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning
for LLMs"): the preferred answer y_w is a refusal ("I don't know"), the dispreferred y_l the true
forget answer. With sequence-sum log-probs,
-(2/beta) * mean(log sigmoid(beta * ((log p_theta(y_w) - log p_ref(y_w)) - (log p_theta(y_l) - log p_ref(y_l)))))
plus alpha times a retain term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import METHODS, MethodContext
from .npo import (answer_logps_and_retain, check_positive, check_retain, observing_reference, reference_logps,
                  token_mean_nll)


@dataclass(frozen=True)
class DPOArgs:
    beta: float = 0.1  # inverse temperature of the log-ratio margin
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_positive("beta", self.beta)
        check_retain(self.alpha, self.retain_loss)


def dpo_forget_loss(logp_w: torch.Tensor, ref_logp_w: torch.Tensor, logp_l: torch.Tensor, ref_logp_l: torch.Tensor,
                    beta: float) -> torch.Tensor:
    """-(2/beta) * mean(log sigmoid(beta * ((logp_w - ref_logp_w) - (logp_l - ref_logp_l)))).

    Args:
        logp_w: log p_theta of the preferred answer (the refusal) per example (B,).
        ref_logp_w: log p_ref of the preferred answer (B,).
        logp_l: log p_theta of the dispreferred answer (the true forget answer) (B,).
        ref_logp_l: log p_ref of the dispreferred answer (B,).
        beta: inverse temperature, > 0.
    """
    margin = (logp_w - ref_logp_w) - (logp_l - ref_logp_l)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def preferred_over_forget(model, batch: dict, ctx: MethodContext, preferred: str, method: str):
    """The DPO loss with the `preferred` stream's answers (aligned row by row with `forget`) preferred to the
    true forget answers, plus alpha times the retain term; returns the loss, its logged parts, and the
    preferred answers' log-probs and token counts (a method may log more of them)."""
    a = ctx.args
    # The pairs are matched by row, so a misaligned stream would silently pair unrelated questions.
    n_alt, n_forget = batch[preferred]["input_ids"].shape[0], batch["forget"]["input_ids"].shape[0]
    if n_alt != n_forget:
        raise ValueError(f"{method} needs one {preferred} answer per forget example, got {n_alt} for {n_forget}")
    streams = [preferred, "forget"]
    [(logp_w, n_w), (logp_l, n_l)], retain = answer_logps_and_retain(model, batch, ctx, streams, a.retain_loss)
    ref_logp_w, ref_logp_l = reference_logps(ctx, batch, streams)
    forget = dpo_forget_loss(logp_w, ref_logp_w, logp_l, ref_logp_l, a.beta)
    margin = (logp_w.detach() - ref_logp_w) - (logp_l.detach() - ref_logp_l)
    parts = {
        "forget_loss": float(forget.detach()),
        "margin": float(margin.mean()),
        "forget_nll": token_mean_nll(logp_l, n_l),
        "retain_loss": float(retain.detach()),
    }
    return forget + a.alpha * retain, parts, (logp_w, n_w)


@METHODS.register("dpo", args=DPOArgs, needs={"forget", "alternate", "retain", "reference"}, version=1,
                  observe=observing_reference("alternate", "forget"),
                  paper='Rafailov et al. 2023, "Direct Preference Optimization", with a refusal preferred as in TOFU (Maini et al. 2024)')
def dpo(model, batch: dict, ctx: MethodContext):
    """DPO (refusal preferred over the true answer) on forget + alpha*retain term."""
    loss, parts, _ = preferred_over_forget(model, batch, ctx, "alternate", "dpo")
    return loss, parts
