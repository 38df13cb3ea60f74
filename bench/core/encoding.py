"""Turning question/answer records into token tensors, shared by training and evaluation.

The prompt and the answer are tokenised separately so the label boundary is exact: labels are -100
on the prompt and padding, and the answer's tokens plus the end-of-sequence token are learned and
scored. A record with an empty question is raw text (a biography): every token is an answer token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


def format_prompt(question: str) -> str:
    """The one prompt template of the harness; generation continues right after it."""
    return f"Question: {question}\nAnswer:"


@dataclass(frozen=True)
class Encoded:
    """One example: token ids and the index where the answer starts."""

    input_ids: list[int]
    answer_start: int

    @property
    def n_answer_tokens(self) -> int:
        return len(self.input_ids) - self.answer_start


def prompt_ids(tokenizer, question: str) -> list[int]:
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    if not question:
        return bos
    return bos + tokenizer(format_prompt(question), add_special_tokens=False)["input_ids"]


def encode(tokenizer, question: str, answer: str, max_length: int) -> Encoded:
    """Prompt ids, then " answer" ids and EOS; cut to `max_length` from the end of the answer."""
    return encode_many(tokenizer, [(question, answer)], max_length)[0]


def encode_many(tokenizer, pairs: list[tuple[str, str]], max_length: int) -> list[Encoded]:
    """`encode` for many (question, answer) pairs, tokenising in two batched calls."""
    if not pairs:
        return []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompts = tokenizer([format_prompt(q) for q, _ in pairs], add_special_tokens=False)["input_ids"]
    answers = tokenizer([f" {a}" if q else a for q, a in pairs], add_special_tokens=False)["input_ids"]
    out = []
    for (question, _), p, a in zip(pairs, prompts, answers):
        prompt = bos + p if question else bos
        ids = (prompt + a + [tokenizer.eos_token_id])[:max_length]
        if len(ids) <= len(prompt):
            raise ValueError(f"max_length={max_length} leaves no answer token for question {question[:60]!r}")
        out.append(Encoded(ids, len(prompt)))
    return out


def collate(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pads a batch: input_ids, attention_mask and labels, each (B, T)."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, e.answer_start : n] = ids[row, e.answer_start : n]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pad(sequences: list[list[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Pads token id lists to one width: (ids, attention_mask), each (B, T); left for generation."""
    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask
