"""Token-level quantities that several losses share. Shapes: B batch, T sequence, V vocabulary."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.core.encoding import IGNORE_INDEX


def shifted_logits_labels(model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (B, T-1, V) predicting labels (B, T-1), and the answer-token mask (B, T-1)."""
    logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    logits, labels = logits[:, :-1], inputs["labels"][:, 1:]
    return logits, labels, labels != IGNORE_INDEX


def token_nll_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token NLL (B, T); 0 where the label is IGNORE_INDEX."""
    flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="none")  # (B*T,), 0 where ignored
    return flat.view(labels.shape)


def token_nll(model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-answer-token NLL (B, T-1) and the answer mask (B, T-1)."""
    logits, labels, mask = shifted_logits_labels(model, inputs)
    return token_nll_from_logits(logits, labels), mask


def joint_token_nll(model, *inputs: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`token_nll` of several batches in one forward pass; returns (nll, mask) per batch.

    The batches are right-padded to a common width and stacked: the same numbers as separate
    passes (no layer mixes examples), but one pass costs less than two on small models.
    """
    width = max(x["input_ids"].shape[1] for x in inputs)

    def pad(t: torch.Tensor, value: int) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[1]), value=value)

    stacked = {
        "input_ids": torch.cat([pad(x["input_ids"], 0) for x in inputs]),
        "attention_mask": torch.cat([pad(x["attention_mask"], 0) for x in inputs]),
        "labels": torch.cat([pad(x["labels"], IGNORE_INDEX) for x in inputs]),
    }
    nll, mask = token_nll(model, stacked)
    sizes = [x["input_ids"].shape[0] for x in inputs]
    return list(zip(nll.split(sizes), mask.split(sizes)))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over the positions where `mask` is set (token-weighted over the batch)."""
    return (values * mask).sum() / mask.sum().clamp_min(1)


def mean_nll(model, inputs: dict) -> torch.Tensor:
    """Mean NLL over every answer token of the batch (token-weighted, not example-weighted)."""
    return masked_mean(*token_nll(model, inputs))


def sequence_logp(model, inputs: dict) -> torch.Tensor:
    """log p(a|q) per example (B,): the sum of the answer's token log-probabilities."""
    nll, _ = token_nll(model, inputs)
    return -nll.sum(dim=1)


def kl_ref_to_model(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(p_ref || p_theta) per answer token, averaged over the answer tokens of the batch."""
    logp = F.log_softmax(logits.float(), dim=-1)
    ref_logp = F.log_softmax(ref_logits.float(), dim=-1)
    kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)  # (B, T)
    return masked_mean(kl, mask)


def retain_kl(model, reference, inputs: dict) -> torch.Tensor:
    """KL(p_ref || p_theta) on the retain batch's answer tokens; the reference runs without grad."""
    logits, _, mask = shifted_logits_labels(model, inputs)
    with torch.no_grad():
        ref_logits, _, _ = shifted_logits_labels(reference, inputs)
    return kl_ref_to_model(logits, ref_logits, mask)
