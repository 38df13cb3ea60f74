"""Turning question/answer records into token tensors, shared by training and evaluation.

One place decides how a question becomes a prompt (`prompt_format`), for training, scoring,
generation, attacks, probes and the demo alike:
- **plain**, for models without a chat template (the scratch zoo models): `Question: ...\nAnswer:`,
  then " answer" and the end-of-sequence token;
- **chat**, for a tokenizer with a chat template (instruct models): the template's prompt for the
  question as the user's turn, with the generation prompt; the answer is exactly what the template adds
  after that prompt when the answer is the assistant's turn, up to and including the end-of-sequence
  token (what follows it, such as a newline between turns, is no answer token).
The default is chat where the tokenizer has a template (`set_prompt_format` chooses otherwise, with an
optional system prompt and date string). Labels are -100 on the prompt and padding; the answer tokens
are learned and scored. A record with an empty question is raw text (a biography): every token is an
answer token, in either format.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.errors import FieldError
from bench.core.names import PROMPT_FORMATS

IGNORE_INDEX = -100
_ATTRIBUTE = "bench_prompt_format"  # where set_prompt_format keeps the choice on a tokenizer


def format_prompt(question: str) -> str:
    """The plain prompt template; generation continues right after it."""
    return f"Question: {question}\nAnswer:"


@dataclass(frozen=True)
class PromptFormat:
    """How questions become prompts for one tokenizer.

    Attributes:
        format: "auto", "plain" or "chat" (see the module docstring).
        system_prompt: chat only: a system turn before the question (None: the template's own default,
            if it has one).
        date_string: chat only: passed to templates that print a date (Llama 3's `date_string`).
    """

    format: str = "auto"
    system_prompt: str | None = None
    date_string: str | None = None

    def __post_init__(self):
        if self.format not in PROMPT_FORMATS:
            raise FieldError("format", ", ".join(PROMPT_FORMATS), self.format)


def set_prompt_format(tokenizer, prompt: PromptFormat):
    """Makes `prompt` the format every encoding of this tokenizer uses; returns the tokenizer.

    Raises:
        ValueError: "chat" for a tokenizer without a chat template.
    """
    if prompt.format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"prompt format 'chat' needs a tokenizer with a chat template; {type(tokenizer).__name__} "
                         "has none (use 'plain' or 'auto')")
    setattr(tokenizer, _ATTRIBUTE, prompt)
    return tokenizer


def prompt_format(tokenizer) -> PromptFormat:
    """The tokenizer's prompt format, "auto" resolved: chat where it has a chat template, else plain."""
    chosen = getattr(tokenizer, _ATTRIBUTE, None) or PromptFormat()
    if chosen.format == "auto":
        resolved = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
        return PromptFormat(resolved, chosen.system_prompt, chosen.date_string)
    return chosen


def _chat_text(tokenizer, fmt: PromptFormat, question: str, answer: str | None = None) -> str:
    messages = ([{"role": "system", "content": fmt.system_prompt}] if fmt.system_prompt is not None else []) + [
        {"role": "user", "content": question}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    extra = {"date_string": fmt.date_string} if fmt.date_string is not None else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=answer is None, **extra)


def _chat_pair(tokenizer, fmt: PromptFormat, question: str, answer: str) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of one chat exchange: the answer is what the full exchange adds after
    the prompt, cut after its end-of-sequence token."""
    prompt = tokenizer(_chat_text(tokenizer, fmt, question), add_special_tokens=False)["input_ids"]
    full = tokenizer(_chat_text(tokenizer, fmt, question, answer), add_special_tokens=False)["input_ids"]
    if full[: len(prompt)] != prompt:
        raise ValueError(f"the chat template's prompt for {question[:60]!r} is not a prefix of the same exchange "
                         "with its answer, so the answer tokens cannot be told apart; use prompt format 'plain'")
    answer_ids = full[len(prompt):]
    if tokenizer.eos_token_id in answer_ids:
        answer_ids = answer_ids[: answer_ids.index(tokenizer.eos_token_id) + 1]
    else:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    return prompt, answer_ids


@dataclass(frozen=True)
class Encoded:
    """One example: token ids and the index where the answer starts."""

    input_ids: list[int]
    answer_start: int

    @property
    def n_answer_tokens(self) -> int:
        return len(self.input_ids) - self.answer_start


def prompt_ids(tokenizer, question: str) -> list[int]:
    """The token ids generation continues from, in the tokenizer's prompt format."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    if not question:
        return bos
    fmt = prompt_format(tokenizer)
    if fmt.format == "chat":
        return tokenizer(_chat_text(tokenizer, fmt, question), add_special_tokens=False)["input_ids"]
    return bos + tokenizer(format_prompt(question), add_special_tokens=False)["input_ids"]


def encode(tokenizer, question: str, answer: str, max_length: int) -> Encoded:
    """Prompt ids, then the answer's ids ending in EOS (see the module docstring for each prompt format);
    cut to `max_length` from the end of the answer."""
    return encode_many(tokenizer, [(question, answer)], max_length)[0]


def encode_many(tokenizer, pairs: list[tuple[str, str]], max_length: int) -> list[Encoded]:
    """`encode` for many (question, answer) pairs (plain: tokenised in two batched calls)."""
    if not pairs:
        return []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    fmt = prompt_format(tokenizer)
    if fmt.format == "chat":
        halves = [_chat_pair(tokenizer, fmt, q, a) if q else
                  (bos, tokenizer(a, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]) for q, a in pairs]
    else:
        prompts = tokenizer([format_prompt(q) for q, _ in pairs], add_special_tokens=False)["input_ids"]
        answers = tokenizer([f" {a}" if q else a for q, a in pairs], add_special_tokens=False)["input_ids"]
        halves = [(bos + p if q else bos, a + [tokenizer.eos_token_id]) for (q, _), p, a in zip(pairs, prompts, answers)]
    out = []
    for (question, _), (prompt, answer) in zip(pairs, halves):
        ids = (prompt + answer)[:max_length]
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
