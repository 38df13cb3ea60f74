"""The evaluation context: every expensive quantity computed once per model and split.

Families read per-token log-probabilities of answers, paraphrases and perturbations, and greedy
generations, from here; each is computed in batched forward passes on first use and cached, so
adding a metric does not add a forward pass. `forward_passes` and `generated_prompts` count the
work actually done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.encoding import IGNORE_INDEX, collate, collate_prompts, encode

PERTURBED = "perturbed_answer"


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate.

    Args:
        batch_size: sequences per forward pass or generation batch.
        max_new_tokens: greedy generation budget (TOFU uses 200; short answers need far fewer).
        max_length: sequences are cut to this many tokens.
        retain_questions: retain questions evaluated, spread evenly over the split (0 = all).
    """

    batch_size: int = 64
    max_new_tokens: int = 200
    max_length: int = 256
    retain_questions: int = 200


class EvalContext:
    """Cached model outputs on a set of QA splits.

    Args:
        model: the causal LM under evaluation (put in eval mode here).
        tokenizer: its tokenizer.
        splits: split name -> records with `question`, `answer` and optionally
            `paraphrased_answer`, `perturbed_answer` (list).
        config: batch sizes and generation budget.
        reference: quantities of another model this evaluation compares against, e.g.
            {"retain_forget_truth_ratio": array} for forget quality.
    """

    def __init__(self, model, tokenizer, splits: dict[str, list[dict]], config: EvalConfig = EvalConfig(),
                 reference: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.splits = splits
        self.config = config
        self.reference = reference or {}
        self.forward_passes = 0
        self.generated_prompts = 0
        self._cache: dict = {}

    @property
    def device(self):
        return next(self.model.parameters()).device

    def has(self, split: str) -> bool:
        return bool(self.splits.get(split))

    def records(self, split: str) -> list[dict]:
        if not self.has(split):
            raise KeyError(f"evaluation split {split!r} is missing or empty; have {sorted(self.splits)}")
        return self.splits[split]

    def mean_logprob(self, split: str, field: str = "answer") -> np.ndarray:
        """Mean answer-token log-prob: (N,) for a text field, (N, K) for `perturbed_answer`."""
        key = ("mean_logprob", split, field)
        if key not in self._cache:
            per_token = self.token_logprobs(split, field)
            means = np.array([t.mean() for t in per_token])
            if field == PERTURBED:
                means = means.reshape(len(self.records(split)), -1)
            self._cache[key] = means
        return self._cache[key]

    def token_logprobs(self, split: str, field: str = "answer") -> list[np.ndarray]:
        """Per-token log-probs of each answer (end-of-sequence included); perturbed ones flattened."""
        key = ("token_logprobs", split, field)
        if key not in self._cache:
            pairs = []
            for r in self.records(split):
                answers = r[field] if field == PERTURBED else [r[field]]
                pairs += [(r["question"], a) for a in answers]
            self._cache[key] = self._score(pairs)
        return self._cache[key]

    @torch.inference_mode()
    def _score(self, pairs: list[tuple[str, str]]) -> list[np.ndarray]:
        encoded = [encode(self.tokenizer, q, a, self.config.max_length) for q, a in pairs]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))  # less padding
        out: list[np.ndarray | None] = [None] * len(encoded)
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            batch = {k: v.to(self.device) for k, v in collate([encoded[i] for i in idx], self.tokenizer.pad_token_id).items()}
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            self.forward_passes += 1
            labels = batch["labels"][:, 1:]
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_logp = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
            for row, i in enumerate(idx):
                keep = labels[row] != IGNORE_INDEX
                out[i] = token_logp[row][keep].cpu().numpy().astype(np.float64)
        return out  # type: ignore[return-value]

    def generations(self, split: str) -> list[str]:
        """Greedy answers to every question of the split, cut at end-of-sequence and stripped."""
        key = ("generations", split)
        if key not in self._cache:
            self._cache[key] = self.generate([r["question"] for r in self.records(split)])
        return self._cache[key]

    @torch.inference_mode()
    def generate(self, questions: list[str]) -> list[str]:
        tok = self.tokenizer
        order = sorted(range(len(questions)), key=lambda i: len(questions[i]))
        out: list[str] = [""] * len(questions)
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            batch = {k: v.to(self.device) for k, v in collate_prompts(tok, [questions[i] for i in idx]).items()}
            generated = self.model.generate(
                **batch, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            )
            self.generated_prompts += len(idx)
            new_tokens = generated[:, batch["input_ids"].shape[1] :]
            for row, i in enumerate(idx):
                tokens = new_tokens[row].tolist()
                if tok.eos_token_id in tokens:
                    tokens = tokens[: tokens.index(tok.eos_token_id)]
                out[i] = tok.decode(tokens, skip_special_tokens=True).strip()
        return out
