"""IdkNLL: fine-tune the forget questions toward a refusal ("I don't know") instead of their answers.

The "I don't know" baseline of TOFU (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for
LLMs"; called IdkNLL in open-unlearning): ordinary NLL training on the forget questions paired with a
refusal (the `alternate` stream, the records' `alternate_answer`), plus a retain term. Nothing pushes
the true answers down directly; they fade as the refusal takes their place.

    loss = NLL(refusals to the forget questions) + alpha * retain term

both NLLs token-weighted over their batch. TOFU takes a single token-weighted mean over the refusal and
retain tokens together (one concatenated batch), which weighs the two terms by their token counts; we
keep them as two means with the retain weight alpha, as the other methods here do. alpha 1 weighs
them equally; where both batches hold as many tokens, TOFU's loss is half of this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import METHODS, MethodContext
from .npo import answer_logps_and_retain, check_retain, token_mean_nll


@dataclass(frozen=True)
class IdkNLLArgs:
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_retain(self.alpha, self.retain_loss)


def idk_needs(args: IdkNLLArgs) -> frozenset:
    # The forget stream is always built (the alternate answers are aligned with it), so it need not be
    # declared: this loss never reads it.
    return frozenset({"alternate", "retain"} | ({"reference"} if args.retain_loss == "kl" else set()))


@METHODS.register("idk_nll", args=IdkNLLArgs, needs=idk_needs, version=1,
                  paper='Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs" (the "I don\'t know" baseline)')
def idk_nll(model, batch: dict, ctx: MethodContext):
    """IdkNLL: NLL of refusals to the forget questions + alpha*retain term."""
    a: IdkNLLArgs = ctx.args
    [(logp, n_tokens)], retain = answer_logps_and_retain(model, batch, ctx, ["alternate"], a.retain_loss)
    refusal_nll = -logp.sum() / n_tokens.sum().clamp_min(1)  # token-weighted mean over the batch
    loss = refusal_nll + a.alpha * retain
    parts = {"refusal_nll": token_mean_nll(logp, n_tokens), "retain_loss": float(retain.detach())}
    return loss, parts
