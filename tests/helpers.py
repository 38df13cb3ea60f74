"""Small fakes shared by the tests: a model whose logits are fixed, and inputs built by hand."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from bench.encoding import IGNORE_INDEX


class FixedLogits(torch.nn.Module):
    """A causal LM stand-in: the same logits (V,) at every position, plus a trainable offset."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None):
        b, t = input_ids.shape
        return SimpleNamespace(logits=self.logits.expand(b, t, -1))


def qa_inputs(answer_tokens: list[list[int]], prompt_len: int = 1) -> dict:
    """Inputs whose first `prompt_len` tokens are prompt and the rest answer (right-padded with -100 labels)."""
    width = prompt_len + max(len(a) for a in answer_tokens)
    ids = torch.zeros((len(answer_tokens), width), dtype=torch.long)
    labels = torch.full_like(ids, IGNORE_INDEX)
    mask = torch.zeros_like(ids)
    for row, answer in enumerate(answer_tokens):
        n = prompt_len + len(answer)
        ids[row, prompt_len:n] = torch.tensor(answer)
        labels[row, prompt_len:n] = torch.tensor(answer)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
