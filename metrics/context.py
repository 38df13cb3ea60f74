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

from bench.encoding import IGNORE_INDEX, Encoded, collate, collate_prompts, encode_many, pad

PERTURBED = "perturbed_answer"

Scored = tuple  # (per-token log-probs of an answer (n,), whether every token is the greedy argmax)


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate.

    Args:
        batch_size: sequences per forward pass or generation batch.
        max_new_tokens: greedy generation budget (TOFU uses 200; short answers need far fewer).
        max_length: sequences are cut to this many tokens.
        retain_questions: retain questions evaluated, spread evenly over the split (0 = all).
        share_prompts: run each question's prompt once and reuse its KV cache for all of its
            answers (needs a model that returns `past_key_values`; false scores every sequence whole).
        reuse_teacher_forcing: skip decoding a question whose true answer is the argmax at every
            token under teacher forcing (greedy decoding would reproduce it exactly).
    """

    batch_size: int = 64
    max_new_tokens: int = 200
    max_length: int = 256
    retain_questions: int = 200
    share_prompts: bool = True
    reuse_teacher_forcing: bool = True


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
        self.score(split, [field])
        return self._cache[("token_logprobs", split, field)]

    def score(self, split: str, fields: list[str]) -> None:
        """Scores the answer fields of a split together, so each question's prompt is run once.

        A family that will read several fields of a split (answer, paraphrase, perturbations) asks for
        them here first; fields already scored are skipped.
        """
        missing = [f for f in dict.fromkeys(fields) if ("token_logprobs", split, f) not in self._cache]
        if not missing:
            return
        records = self.records(split)
        answers = [[a for f in missing for a in (r[f] if f == PERTURBED else [r[f]])] for r in records]
        scored = self._score_questions([r["question"] for r in records], answers)
        for i, field in enumerate(missing):
            per_field = []
            for r, per_question in zip(records, scored):
                offset = sum(len(r[f]) if f == PERTURBED else 1 for f in missing[:i])
                per_field += per_question[offset : offset + (len(r[field]) if field == PERTURBED else 1)]
            self._cache[("token_logprobs", split, field)] = [logp for logp, _ in per_field]
            self._cache[("greedy_match", split, field)] = [match for _, match in per_field]

    def greedy_match(self, split: str, field: str = "answer") -> list[bool]:
        """Whether every answer token (end-of-sequence included) is the model's argmax given the true prefix."""
        self.score(split, [field])
        return self._cache[("greedy_match", split, field)]

    def _score_questions(self, questions: list[str], answers: list[list[str]]) -> list[list[Scored]]:
        """Per-token answer log-probs and greedy matches, grouped like `answers` (a list per question)."""
        encoded = encode_many(self.tokenizer, [(q, a) for q, ans in zip(questions, answers) for a in ans],
                              self.config.max_length)
        groups, start = [], 0
        for ans in answers:
            groups.append(encoded[start : start + len(ans)])
            start += len(ans)
        shared = self.config.share_prompts and all(g[0].answer_start > 0 for g in groups if g)
        flat = self._score_shared_prompts(groups) if shared else self._score([e for g in groups for e in g])
        out, start = [], 0
        for g in groups:
            out.append(flat[start : start + len(g)])
            start += len(g)
        return out

    @torch.inference_mode()
    def _score(self, encoded: list[Encoded]) -> list[Scored]:
        """Scores each sequence on its own (prompt included), length-sorted into batches."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))  # less padding
        out: list[Scored | None] = [None] * len(encoded)
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            batch = {k: v.to(self.device) for k, v in collate([encoded[i] for i in idx], self.tokenizer.pad_token_id).items()}
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            self.forward_passes += 1
            labels = batch["labels"][:, 1:]
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_logp = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
            hit = logits[:, :-1].argmax(-1) == labels
            for row, i in enumerate(idx):
                keep = labels[row] != IGNORE_INDEX
                out[i] = (token_logp[row][keep].cpu().numpy().astype(np.float64), bool(hit[row][keep].all()))
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_shared_prompts(self, groups: list[list[Encoded]]) -> list[Scored]:
        """Scores groups of answers to one prompt each: the prompt runs once, its KV cache is reused.

        On TOFU-style data the prompt is about half of every scored sequence and a question has up to
        seven answers (true, paraphrased, five perturbed), so this roughly halves the tokens run.
        Prompts are left-padded with explicit position ids, as in batched generation.
        """
        order = sorted((g for g in range(len(groups)) if groups[g]),
                       key=lambda g: max(len(e.input_ids) for e in groups[g]))
        flat_index, n = [], 0
        for g in groups:
            flat_index.append(list(range(n, n + len(g))))
            n += len(g)
        out: list[Scored | None] = [None] * n
        pad_id = self.tokenizer.pad_token_id
        while order:
            batch, rows = [], 0
            while order and (not batch or rows + len(groups[order[0]]) <= self.config.batch_size):
                rows += len(groups[order[0]])
                batch.append(order.pop(0))
            prompt_ids, prompt_mask = (t.to(self.device) for t in pad(
                [groups[g][0].input_ids[: groups[g][0].answer_start] for g in batch], pad_id, left=True))
            first = self.model(input_ids=prompt_ids, attention_mask=prompt_mask,
                               position_ids=(prompt_mask.cumsum(-1) - 1).clamp_min(0), use_cache=True)
            owner = torch.tensor([b for b, g in enumerate(batch) for _ in groups[g]], device=self.device)
            cache = first.past_key_values
            if cache is None:
                raise ValueError(f"{type(self.model).__name__} returned no KV cache; set `share_prompts: false` "
                                 "under `eval` to score every sequence whole")
            cache.reorder_cache(owner)  # one copy of the prompt's keys and values per answer
            answers = [e.input_ids[e.answer_start:] for g in batch for e in groups[g]]
            answer_ids, answer_mask = (t.to(self.device) for t in pad(answers, pad_id))
            positions = prompt_mask.sum(-1)[owner].unsqueeze(1) + torch.arange(answer_ids.shape[1], device=self.device)
            second = self.model(input_ids=answer_ids, attention_mask=torch.cat([prompt_mask[owner], answer_mask], 1),
                                position_ids=positions, past_key_values=cache, use_cache=True)
            self.forward_passes += 2
            # The prompt's last position predicts the first answer token.
            logits = torch.cat([first.logits[owner, -1:], second.logits[:, :-1]], dim=1)
            token_logp = torch.log_softmax(logits.float(), -1).gather(-1, answer_ids.unsqueeze(-1)).squeeze(-1)
            hit = logits.argmax(-1) == answer_ids
            rows_out = [i for g in batch for i in flat_index[g]]
            for row, i in enumerate(rows_out):
                n_tokens = len(answers[row])
                out[i] = (token_logp[row, :n_tokens].cpu().numpy().astype(np.float64), bool(hit[row, :n_tokens].all()))
        return out  # type: ignore[return-value]

    def generations(self, split: str) -> list[str]:
        """Greedy answers to every question of the split, cut at end-of-sequence and stripped.

        With `reuse_teacher_forcing`, a question whose true answer is the model's argmax at every
        token under teacher forcing (end-of-sequence included) is answered with that answer: greedy
        decoding follows the same tokens, so only the other questions are decoded.
        """
        key = ("generations", split)
        if key not in self._cache:
            records = self.records(split)
            known = self._teacher_forced_answers(split) if self.config.reuse_teacher_forcing else [None] * len(records)
            todo = [i for i, text in enumerate(known) if text is None]
            decoded = dict(zip(todo, self.generate([records[i]["question"] for i in todo])))
            self._cache[key] = [decoded[i] if text is None else text for i, text in enumerate(known)]
        return self._cache[key]

    def _teacher_forced_answers(self, split: str) -> list[str | None]:
        """The greedy answer where teacher forcing already determines it (see `generations`), else None."""
        records = self.records(split)
        encoded = encode_many(self.tokenizer, [(r["question"], r["answer"]) for r in records], self.config.max_length)
        out: list[str | None] = []
        for e, match in zip(encoded, self.greedy_match(split, "answer")):
            answer = e.input_ids[e.answer_start :]
            if not match or answer[-1] != self.tokenizer.eos_token_id:  # cut by max_length: what follows is unknown
                out.append(None)
                continue
            tokens = answer[: self.config.max_new_tokens]  # what greedy decoding emits within its budget
            if self.tokenizer.eos_token_id in tokens:
                tokens = tokens[: tokens.index(self.tokenizer.eos_token_id)]
            out.append(self.tokenizer.decode(tokens, skip_special_tokens=True).strip())
        return out

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
