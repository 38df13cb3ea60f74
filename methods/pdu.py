"""PDU: primal-dual unlearning, forgetting as an objective and retention as a constraint.

Entesari et al. 2025, "Constrained Entropic Unlearning: A Primal-Dual Framework for Large Language
Models" (arXiv 2506.05314). Unlearning is the constrained problem

    min_θ L_f(θ)  subject to  L_r(θ) <= ε

with L_f the logit-margin flattening loss on the forget answers: with z_t (V,) the logits that
predict answer token t, the mean over the batch's forget answer tokens of (max_v z_t,v - mean_v z_t,v)².
It is 0 exactly when every logit of a position is equal (the next-token distribution is uniform), needs
no softmax and its gradient does not vanish near the uniform distribution the way the entropy's does.
L_r is the mean NLL of the retain answers. The method descends the Lagrangian in θ,

    loss = gamma * L_f + λ * (L_r - ε),

and ascends it in the dual variable λ, once per optimizer step:

    λ <- max(0, λ + η * (L_r - ε)),

so λ grows while the retain loss breaks its bound and shrinks toward 0 while it keeps it. Step t's
loss uses λ_t (the same value in each of its micro-batches); the update to λ_{t+1} uses the mean of
L_r - ε over step t's micro-batches (with `grad_accum_steps` > 1 the loss runs several times per step).
λ is logged as `dual`.

Defaults: ε = 0.3, λ_0 = 100 and η = 5 are the authors' TOFU settings (open-unlearning,
community/methods/PDU/run.sh: retain_loss_eps 0.3, alpha 100, dual_step_size 5; MUSE used
ε 0.1 to 1.5, λ_0 50, η 1), gamma = 1.

Choices the paper leaves to us:
    epsilon: the authors pick an absolute bound a little above the fine-tuned model's retain loss
        (their README), and the paper suggests ε = (1 + tolerance) * L_r(original model).
        `epsilon: null` takes the relative bound, with L_r measured on the first retain batch (the
        model still equals the original there; one batch, so an estimate). Our default keeps the
        absolute 0.3: a target fine-tuned to near-zero retain loss (as TOFU's, and this harness's
        tiny models at ~0.01) gets a relative bound near 0 that no forgetting step can keep, and λ
        then only grows.
    dual_warmup_steps: the authors hold λ at λ_0 for the first epochs (5 of 10 on TOFU); our loop
        counts steps, so the warm-up is a number of steps, 0 by default.
    The forget loss reads the logits that predict each answer token (this harness's convention for
    every token loss); the open-unlearning code masks the positions of the answer tokens themselves,
    one position later. The retain NLL is the token-weighted mean, as in that code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.errors import FieldError

from .base import METHODS, MethodContext
from .losses import masked_mean, mean_nll, shifted_logits_labels
from .npo import check_non_negative


@dataclass(frozen=True)
class PDUArgs:
    gamma: float = 1.0  # weight of the forget (logit-margin) term
    dual_init: float = 100.0  # λ_0, the dual variable (retain weight) before any update
    dual_step_size: float = 5.0  # η of the dual ascent step; 0 keeps λ at dual_init
    epsilon: float | None = 0.3  # bound on the retain NLL; None: (1 + tolerance) x the first retain batch's NLL
    tolerance: float = 0.5  # allowed relative rise of the retain NLL when epsilon is None (unused otherwise)
    dual_warmup_steps: int = 0  # steps whose constraint values do not update λ

    def __post_init__(self):
        for name in ("gamma", "dual_init", "dual_step_size", "tolerance"):
            check_non_negative(name, getattr(self, name))
        if self.epsilon is not None and not self.epsilon > 0:
            raise FieldError("epsilon", "a number > 0, or null for (1 + tolerance) x the first retain batch's NLL",
                             self.epsilon)
        if isinstance(self.dual_warmup_steps, bool) or not isinstance(self.dual_warmup_steps, int) \
                or self.dual_warmup_steps < 0:
            raise FieldError("dual_warmup_steps", "an integer >= 0", self.dual_warmup_steps)


def logit_margin_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of (max_v z_v - mean_v z_v)².

    Args:
        logits: (B, T, V) the logits that predict each position's token.
        mask: (B, T) the answer positions; the mean is token-weighted over the batch.
    """
    z = logits.float()
    margin = z.max(dim=-1).values - z.mean(dim=-1)  # (B, T), >= 0
    return masked_mean(margin ** 2, mask)


def current_dual(state: dict, step: int, a: PDUArgs) -> float:
    """λ for `step`: on the first call of a new step, the previous step's mean constraint value moves it.

    `state` holds λ, the step it belongs to and the sum and count of L_r - ε over that step's calls.
    """
    if "dual" not in state:
        state.update(dual=a.dual_init, dual_step=step, slack_sum=0.0, slack_calls=0)
    elif step != state["dual_step"]:
        if state["slack_calls"] and state["dual_step"] >= a.dual_warmup_steps:
            slack = state["slack_sum"] / state["slack_calls"]
            state["dual"] = max(0.0, state["dual"] + a.dual_step_size * slack)
        state.update(dual_step=step, slack_sum=0.0, slack_calls=0)
    return state["dual"]


@METHODS.register("pdu", args=PDUArgs, needs={"forget", "retain"}, version=1,
                  paper='Entesari et al. 2025, "Constrained Entropic Unlearning: A Primal-Dual Framework for Large Language Models"')
def pdu(model, batch: dict, ctx: MethodContext):
    """PDU: gamma*logit-margin flattening on forget + λ*(NLL(retain) - ε); λ <- max(0, λ + η*(NLL(retain) - ε)) per step."""
    a: PDUArgs = ctx.args
    state = ctx.state
    logits, _, mask = shifted_logits_labels(model, batch["forget"])
    forget = logit_margin_loss(logits, mask)
    retain = mean_nll(model, batch["retain"])
    if "epsilon" not in state:  # first call: the model is still the original
        state["epsilon"] = a.epsilon if a.epsilon is not None else (1.0 + a.tolerance) * float(retain.detach())
    eps = state["epsilon"]
    dual = current_dual(state, ctx.step, a)
    slack = float(retain.detach()) - eps
    state["slack_sum"] += slack
    state["slack_calls"] += 1
    loss = a.gamma * forget + dual * (retain - eps)
    parts = {
        "forget_loss": float(forget.detach()),
        "retain_loss": float(retain.detach()),
        "constraint": slack,
        "dual": dual,
        "epsilon": eps,
    }
    return loss, parts
