"""Negative preference optimization: push the forget answers below the original model's likelihood.

Zhang et al. 2024, "Negative Preference Optimization: From Catastrophic Collapse to Effective
Unlearning". NPO is DPO with only a dispreferred answer: with the log-ratio
r = log p_theta(a|q) - log p_ref(a|q) (sequence sums), the forget loss is
-(2/beta) * mean(log sigmoid(-beta * r)), plus alpha times a retain term (the NLL of the retain
answers, or KL(p_ref || p_theta) on their tokens). Unlike gradient ascent the forget loss is
bounded below, so its gradient fades once an answer is well below the reference.

The helpers here (argument checks, answer log-probs with the retain term in one pass) are shared by
the other preference-style methods (`simnpo`, `dpo`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bench.core.errors import FieldError, check_choice

from .base import METHODS, MethodContext
from .grad_diff import RETAIN_LOSSES, answer_nlls_and_retain
from .losses import joint_token_nll


def check_positive(name: str, value: float) -> None:
    """Raises FieldError unless `value` > 0 (NaN is refused too)."""
    if not value > 0:
        raise FieldError(name, "a number > 0", value)


def check_non_negative(name: str, value: float) -> None:
    """Raises FieldError unless `value` >= 0 (NaN is refused too)."""
    if not value >= 0:
        raise FieldError(name, "a number >= 0", value)


def check_retain(alpha: float, retain_loss: str) -> None:
    """Checks the retain-term hyperparameters shared by the methods that have one."""
    check_non_negative("alpha", alpha)
    check_choice("retain_loss", retain_loss, RETAIN_LOSSES)


def answer_logps_and_retain(model, batch: dict, ctx: MethodContext, streams: list[str],
                            retain_loss: str) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Per-example answer log-probs of the named streams, and the retain term (one forward pass for all
    of them with the NLL retain term: `grad_diff.answer_nlls_and_retain`).

    Args:
        model: the model being unlearned.
        batch: the collated batches, keyed by stream name.
        ctx: the method context (its reference is used by the KL retain term).
        streams: the batch keys whose answer log-probs are wanted, e.g. ["forget"].
        retain_loss: "nll" or "kl".

    Returns:
        Per stream, (log p(a|q) summed over the answer (B,), number of answer tokens (B,)); and the
        scalar retain term.
    """
    outs, retain = answer_nlls_and_retain(model, batch, ctx, streams, retain_loss)
    return [(-nll.sum(dim=1), mask.sum(dim=1)) for nll, mask in outs], retain


def reference_logps(ctx: MethodContext, batch: dict, streams: list[str]) -> list[torch.Tensor]:
    """Per-example answer log-probs (B,) of the named streams under the frozen reference.

    The reference never changes, so an example's value is computed the first time a batch holds it
    and looked up after that (batches carry their examples' `index`); over 100 steps of 8 from 100
    forget questions this runs the reference on the first epoch only, as trl's precomputed
    reference log-probs do. Without `ctx.remember_reference` it runs on every batch.
    """
    memo = ctx.state.setdefault("reference_logps", {}) if ctx.remember_reference else {}
    keys = {s: [(s, int(i)) for i in batch[s]["index"]] if "index" in batch[s] else None for s in streams}
    if all(k is not None and all(key in memo for key in k) for k in keys.values()):
        return [torch.stack([memo[key] for key in keys[s]]) for s in streams]
    with torch.no_grad():
        outs = joint_token_nll(ctx.reference, *[batch[s] for s in streams])
    values = [-nll.sum(dim=1) for nll, _ in outs]
    for s, v in zip(streams, values):
        if keys[s] is not None:
            memo.update(zip(keys[s], v.unbind()))
    return values


def observing_reference(*streams: str):
    """A method's `observe`: the reference log-probs of another worker's micro-batch, into this worker's memo.

    An example's memoised value is computed in the batch it first appeared in (padding and shapes move
    the last float bits), so every worker must see every micro-batch, in order, for the values to be
    those one process would use."""
    def observe(batch: dict, ctx: MethodContext) -> None:
        reference_logps(ctx, batch, list(streams))

    return observe


def token_mean_nll(logp: torch.Tensor, n_tokens: torch.Tensor) -> float:
    """The token-weighted mean NLL of a batch from its sequence log-probs, for logging."""
    return float(-logp.detach().sum() / n_tokens.sum().clamp_min(1))


@dataclass(frozen=True)
class NPOArgs:
    beta: float = 0.1  # inverse temperature of the log-ratio
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_positive("beta", self.beta)
        check_retain(self.alpha, self.retain_loss)


def npo_forget_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """-(2/beta) * mean(log sigmoid(-beta * (logp - ref_logp))).

    Args:
        logp: log p_theta(a|q) per example (B,), summed over the answer tokens.
        ref_logp: log p_ref(a|q) per example (B,).
        beta: inverse temperature, > 0.
    """
    return -(2.0 / beta) * F.logsigmoid(-beta * (logp - ref_logp)).mean()


@METHODS.register("npo", args=NPOArgs, needs={"forget", "retain", "reference"}, version=1,
                  observe=observing_reference("forget"),
                  paper='Zhang et al. 2024, "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"')
def npo(model, batch: dict, ctx: MethodContext):
    """NPO: -(2/beta)*mean(log sigmoid(-beta*(log p_theta - log p_ref))) on forget + alpha*retain term."""
    a: NPOArgs = ctx.args
    [(logp, n_tokens)], retain = answer_logps_and_retain(model, batch, ctx, ["forget"], a.retain_loss)
    [ref_logp] = reference_logps(ctx, batch, ["forget"])
    forget = npo_forget_loss(logp, ref_logp, a.beta)
    loss = forget + a.alpha * retain
    parts = {
        "forget_loss": float(forget.detach()),
        "log_ratio": float((logp.detach() - ref_logp).mean()),
        "forget_nll": token_mean_nll(logp, n_tokens),
        "retain_loss": float(retain.detach()),
    }
    return loss, parts
