"""AltPO: DPO that prefers a plausible wrong answer to the true one.

Mekala et al. 2025, "Alternate Preference Optimization for Unlearning Factual Knowledge in Large
Language Models" (COLING 2025, arXiv 2409.13474). Negative feedback on the true forget answer y comes
with in-domain positive feedback: a plausible alternate answer ỹ to the same question (another name,
date or title, in the answer's own form), preferred to y by a DPO loss. With sequence-sum log-probs
and Δ(a) = log p_theta(a|q) - log p_ref(a|q),

    -(2/beta) * mean(log sigmoid(beta * (Δ(ỹ) - Δ(y)))) + alpha * retain term.

Unlike `dpo`, whose preferred answer is a refusal, the model learns to keep answering in the same
form, wrongly, instead of refusing or producing gibberish.

Defaults: beta 0.1 with the retain NLL at weight 1, the authors' TOFU command (their repository's
README: forget_loss=subdpo beta=0.1 retain_wt=1) and open-unlearning's DPO config, which runs its AltPO
recipe. The preference and retain terms are summed with no separate likelihood term on ỹ: the
authors' code trains AltPO that way (an NLL on the alternate appears only in its other variants,
paired with NPO or gradient ascent), and DPO already raises ỹ relative to y.

The paper samples several alternates per question from the model itself (5 in its TOFU runs, each
paired with the true answer, the pair losses averaged). We have one per question, the data's
`plausible_answer` (the `plausible` stream, aligned row by row with `forget`): the case of one
alternate, k = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import METHODS, MethodContext
from .dpo import preferred_over_forget
from .npo import observing_reference
from .npo import check_positive, check_retain, token_mean_nll


@dataclass(frozen=True)
class AltPOArgs:
    beta: float = 0.1  # inverse temperature of the log-ratio margin
    alpha: float = 1.0  # weight of the retain term
    retain_loss: str = "nll"  # "nll" or "kl" (KL to the frozen original on retain answers)

    def __post_init__(self):
        check_positive("beta", self.beta)
        check_retain(self.alpha, self.retain_loss)


@METHODS.register("altpo", args=AltPOArgs, needs={"forget", "plausible", "retain", "reference"}, version=1,
                  observe=observing_reference("plausible", "forget"),
                  paper='Mekala et al. 2025, "Alternate Preference Optimization for Unlearning Factual Knowledge in Large Language Models"')
def altpo(model, batch: dict, ctx: MethodContext):
    """AltPO: DPO preferring a plausible wrong answer to the true one on forget + alpha*retain term."""
    loss, parts, (logp_w, n_w) = preferred_over_forget(model, batch, ctx, "plausible", "altpo")
    return loss, {**parts, "plausible_nll": token_mean_nll(logp_w, n_w)}
