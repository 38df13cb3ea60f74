"""The evaluation context: every expensive quantity computed once per model and split.

Families read per-token quantities of answers, paraphrases and perturbations (log-prob, whether
the greedy next token is right, the Min-K%++ z-score) and greedy generations from here; each is
computed in batched forward passes on first use and cached, so adding a metric does not add a
forward pass. `forward_passes` (model calls), `scored_sequences` (sequences whose tokens those calls
ran), `backward_passes` (GradNorm's, the one family that takes gradients), `generated_prompts` and
`decode_steps` count the work actually done.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from bench.core.encoding import IGNORE_INDEX, Encoded, collate, encode_many, pad, prompt_ids
from bench.core.errors import FieldError, check_choices
from bench.core.names import EXTRACTION_STRENGTHS

PERTURBED = "perturbed_answer"
MIN_VARIANCE = 1e-6  # Min-K%++ clamps the next-token log-prob variance from below


def has_perturbed_answers(records: list[dict]) -> bool:
    """Whether a split's records carry perturbed answers, what TOFU's truth ratio reads; raw text (MUSE's shape,
    an empty question and the text as the answer) has none."""
    return PERTURBED in records[0]


class MissingSplit(KeyError):
    """An evaluation split a metric reads is absent or empty."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class TokenScores:
    """Per-token quantities of one scored answer (end-of-sequence included when it was not cut off).

    Attributes:
        logp: log p(token | true prefix), (n,).
        hit: whether the token is the model's argmax given the true prefix, (n,).
        zscore: Min-K%++'s (log p(token) - mu) / sigma under the model's next-token distribution, (n,);
            computed for true answers only (what membership inference scores), NaN for the others.
        ends_with_eos: whether the last token is end-of-sequence (membership scores leave it out).
    """

    logp: np.ndarray
    hit: np.ndarray
    zscore: np.ndarray
    ends_with_eos: bool

    @property
    def content(self) -> slice:
        """The tokens of the text itself: end-of-sequence left out."""
        return slice(0, len(self.logp) - 1 if self.ends_with_eos and len(self.logp) > 1 else len(self.logp))


def token_statistics(logits: torch.Tensor, targets: torch.Tensor,
                     zscore_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Log-prob, greedy hit and Min-K%++ z-score of each target token, from logits (B, T, V) and targets (B, T).

    Min-K%++ (Zhang et al. 2024): mu = sum_z p_z log p_z and sigma^2 = sum_z p_z (log p_z)^2 - mu^2 under
    the model's own next-token distribution, variance clamped at MIN_VARIANCE. The moments cost three
    passes over the vocabulary, so they are computed only for `zscore_rows` (default: all); the other
    rows' z-scores are NaN.
    """
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    z = torch.full_like(logp, float("nan"))
    rows = torch.arange(len(logp), device=logp.device) if zscore_rows is None else zscore_rows
    if len(rows):
        sub = logp_all[rows]
        probs = sub.exp()
        mu = (probs * sub).sum(-1)
        var = ((probs * sub.square()).sum(-1) - mu.square()).clamp_min(MIN_VARIANCE)
        z[rows] = (logp[rows] - mu) / var.sqrt()
    return logp, logits.argmax(-1) == targets, z


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
        mink_k: the share k of lowest-scoring tokens Min-K% and Min-K%++ average (0 < k <= 1).
        extraction_strength: which definition the extraction_strength family reports: `harness` (the end of
            sequence counts as an answer token, nothing extracted scores 0) or `open_unlearning` (that
            framework's: text tokens only, nothing extracted scores 1/n); see metrics/memorization.py.
        verbatim_prefix_tokens: tokens of each forget text given as the prompt for verbatim memorization.
        verbatim_new_tokens: greedy continuation length, and the length the true continuation is cut to.
        metrics: metric families to run (empty = every registered family); set by the suite's `metrics:`.
        probes: prompts answered greedily before and after unlearning; set by the suite's `probes:`.
        checkpoint_metrics: metric families run at a trial's intermediate checkpoints (`unlearn.eval_at`,
            `eval_every`); empty = the same as at the last step. The validation forget metrics always
            run: checkpoints are chosen on them.
        lm_eval_tasks: lm-evaluation-harness tasks (or groups) run on the model at a trial's last step, never at
            intermediate checkpoints, as `lmeval_<task>_<metric>` columns (metrics/lm_eval.py); empty = off.
            Needs the `lm-eval` extra.
        lm_eval_include: folders of task YAML files of one's own, for `lm_eval_tasks` to name; relative paths are
            taken from the working directory and made absolute when the config is built (the suite loaded),
            as the suite's other local paths are.
        lm_eval_limit: documents evaluated per lm-eval task, the first ones (0 = all).
    """

    batch_size: int = 64
    max_new_tokens: int = 200
    max_length: int = 256
    retain_questions: int = 200
    share_prompts: bool = True
    reuse_teacher_forcing: bool = True
    mink_k: float = 0.4
    extraction_strength: str = "harness"
    verbatim_prefix_tokens: int = 32
    verbatim_new_tokens: int = 128
    metrics: tuple[str, ...] = ()
    probes: tuple[str, ...] = ()
    checkpoint_metrics: tuple[str, ...] = ()
    lm_eval_tasks: tuple[str, ...] = ()
    lm_eval_include: tuple[str, ...] = ()
    lm_eval_limit: int = 0

    CHOICES: ClassVar[dict] = {"extraction_strength": EXTRACTION_STRENGTHS}

    def __post_init__(self):
        # Lists from YAML or JSON become tuples, so configs stay hashable and compare equal.
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "probes", tuple(self.probes))
        object.__setattr__(self, "checkpoint_metrics", tuple(self.checkpoint_metrics))
        for name in ("lm_eval_tasks", "lm_eval_include"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
                raise FieldError(name, "a list of non-empty strings", value=value)
            if name == "lm_eval_include":  # fixed where the suite is read: trials run in other working directories
                value = [os.path.abspath(os.path.expanduser(v)) for v in value]
            object.__setattr__(self, name, tuple(value))
        # Messages start with the field's name, so a suite error can name the key (eval.mink_k).
        if not 0 < self.mink_k <= 1:
            raise FieldError("mink_k", "a number in (0, 1]", problem=f"{self.mink_k!r} is out of range")
        check_choices(vars(self), self.CHOICES)
        for name in ("batch_size", "max_new_tokens", "max_length", "verbatim_prefix_tokens", "verbatim_new_tokens"):
            if getattr(self, name) < 1:
                raise FieldError(name, "an integer >= 1", problem=f"{getattr(self, name)!r} is out of range")
        if self.retain_questions < 0:
            raise FieldError("retain_questions", "an integer >= 0 (0: all)",
                             problem=f"{self.retain_questions!r} is out of range")
        if self.lm_eval_limit < 0:
            raise FieldError("lm_eval_limit", "an integer >= 0 (0: all)",
                             problem=f"{self.lm_eval_limit!r} is out of range")


class EvalContext:
    """Cached model outputs on a set of QA splits.

    Args:
        model: the causal LM under evaluation (put in eval mode here).
        tokenizer: its tokenizer.
        splits: split name -> records with `question`, `answer` and optionally
            `paraphrased_answer`, `perturbed_answer` (list).
        config: batch sizes and generation budget.
        baselines: quantities of the baseline models (target, retain model) this evaluation compares against, e.g.
            {"retain_forget_truth_ratio": array} for forget quality.
    """

    def __init__(self, model, tokenizer, splits: dict[str, list[dict]], config: EvalConfig = EvalConfig(),
                 baselines: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.splits = splits
        self.config = config
        self.baselines = baselines or {}
        self.forward_passes = 0
        self.scored_sequences = 0  # a shared-prompt batch runs each sequence once, over its two calls
        self.backward_passes = 0  # gradients taken (metrics.mia's GradNorm); never an optimizer step
        self.generated_prompts = 0
        self.decode_steps = 0
        self.unavailable: dict[str, str] = {}  # metric column -> why it could not be computed
        self.notes: dict[str, str] = {}  # what a number was computed over, where that can vary (say, utility splits)
        self._cache: dict = {}

    @property
    def device(self):
        return next(self.model.parameters()).device

    def has(self, split: str) -> bool:
        return bool(self.splits.get(split))

    def records(self, split: str) -> list[dict]:
        if not self.has(split):
            raise MissingSplit(f"evaluation split {split!r} is missing or empty; have {sorted(self.splits)}")
        return self.splits[split]

    def cached(self, key: tuple, compute):
        """`compute()` once per key and context: how families keep derived per-split quantities."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

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
        return [t.logp for t in self.token_scores(split, field)]

    def token_scores(self, split: str, field: str = "answer") -> list[TokenScores]:
        """Per-token quantities of each answer of a split (perturbed ones flattened)."""
        self.score(split, [field])
        return self._cache[("token_scores", split, field)]

    def score(self, split: str, fields: list[str]) -> None:
        """Scores the answer fields of a split together, so each question's prompt is run once.

        A family that will read several fields of a split (answer, paraphrase, perturbations) asks for
        them here first; fields already scored are skipped.
        """
        missing = [f for f in dict.fromkeys(fields) if ("token_scores", split, f) not in self._cache]
        if not missing:
            return
        records = self.records(split)
        answers = [[a for f in missing for a in (r[f] if f == PERTURBED else [r[f]])] for r in records]
        true_answer = [f == "answer" for r in records for f in missing for _ in (r[f] if f == PERTURBED else [r[f]])]
        scored = self._score_questions([r["question"] for r in records], answers, true_answer)
        for i, field in enumerate(missing):
            per_field = []
            for r, per_question in zip(records, scored):
                offset = sum(len(r[f]) if f == PERTURBED else 1 for f in missing[:i])
                per_field += per_question[offset : offset + (len(r[field]) if field == PERTURBED else 1)]
            self._cache[("token_scores", split, field)] = per_field

    def greedy_match(self, split: str, field: str = "answer") -> list[bool]:
        """Whether every answer token (end-of-sequence included) is the model's argmax given the true prefix."""
        return [bool(t.hit.all()) for t in self.token_scores(split, field)]

    def _score_questions(self, questions: list[str], answers: list[list[str]],
                         zscore: list[bool]) -> list[list[TokenScores]]:
        """Per-token answer quantities, grouped like `answers` (a list per question); `zscore` flags
        the (flattened) answers that need Min-K%++ z-scores."""
        encoded = encode_many(self.tokenizer, [(q, a) for q, ans in zip(questions, answers) for a in ans],
                              self.config.max_length)
        groups, start = [], 0
        for ans in answers:
            groups.append(encoded[start : start + len(ans)])
            start += len(ans)
        shared = self.config.share_prompts and all(g[0].answer_start > 0 for g in groups if g)
        flat = self._score_shared_prompts(groups, zscore) if shared else self._score([e for g in groups for e in g], zscore)
        out, start = [], 0
        for g in groups:
            out.append(flat[start : start + len(g)])
            start += len(g)
        return out

    def _rows(self, flat_rows: list[int], wanted: list[bool]) -> torch.Tensor:
        """Positions within a batch (whose rows are `flat_rows`) of the rows flagged in `wanted`."""
        return torch.tensor([row for row, i in enumerate(flat_rows) if wanted[i]], dtype=torch.long, device=self.device)

    def _unpack(self, stats: tuple[torch.Tensor, ...], targets: torch.Tensor, row: int, keep) -> TokenScores:
        logp, hit, z = (t[row][keep].cpu().numpy() for t in stats)
        ids = targets[row][keep]
        return TokenScores(logp.astype(np.float64), hit, z.astype(np.float64),
                           bool(len(ids)) and int(ids[-1]) == self.tokenizer.eos_token_id)

    @torch.inference_mode()
    def _score(self, encoded: list[Encoded], zscore: list[bool]) -> list[TokenScores]:
        """Scores each sequence on its own (prompt included), length-sorted into batches."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))  # less padding
        out: list[TokenScores | None] = [None] * len(encoded)
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            batch = {k: v.to(self.device) for k, v in collate([encoded[i] for i in idx], self.tokenizer.pad_token_id).items()}
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            self.forward_passes += 1
            self.scored_sequences += len(idx)
            labels = batch["labels"][:, 1:]
            stats = token_statistics(logits[:, :-1], labels.clamp_min(0), self._rows(idx, zscore))
            for row, i in enumerate(idx):
                out[i] = self._unpack(stats, labels, row, labels[row] != IGNORE_INDEX)
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_shared_prompts(self, groups: list[list[Encoded]], zscore: list[bool]) -> list[TokenScores]:
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
        out: list[TokenScores | None] = [None] * n
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
            cache = first["cache"] if "cache" in first else first.get("past_key_values")
            if cache is None:
                raise ValueError(f"{type(self.model).__name__} returned no KV cache; set `share_prompts: false` "
                                 "under `eval` to score every sequence whole")
            cache.reorder_cache(owner)  # one copy of the prompt's keys and values per answer
            answers = [e.input_ids[e.answer_start:] for g in batch for e in groups[g]]
            answer_ids, answer_mask = (t.to(self.device) for t in pad(answers, pad_id))
            positions = prompt_mask.sum(-1)[owner].unsqueeze(1) + torch.arange(answer_ids.shape[1], device=self.device)
            second = self.model(input_ids=answer_ids, attention_mask=torch.cat([prompt_mask[owner], answer_mask], 1),
                                position_ids=positions, use_cache=True, **{_cache_argument(self.model): cache})
            self.forward_passes += 2
            self.scored_sequences += len(answers)
            # The prompt's last position predicts the first answer token.
            logits = torch.cat([first.logits[owner, -1:], second.logits[:, :-1]], dim=1)
            rows_out = [i for g in batch for i in flat_index[g]]
            stats = token_statistics(logits, answer_ids, self._rows(rows_out, zscore))
            for row, i in enumerate(rows_out):
                out[i] = self._unpack(stats, answer_ids, row, slice(0, len(answers[row])))
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

    def continuations(self, split: str) -> list[tuple[str, str]]:
        """(greedy continuation, true continuation) of each text of a split, given its first tokens.

        The prompt is the first `verbatim_prefix_tokens` tokens of the text, as the text was trained on
        (beginning-of-sequence, then the text); the truth is the next `verbatim_new_tokens` tokens. Records
        with a `prompt` give their prefix themselves, and their `continuation` is the truth (cut likewise).
        """
        key = ("continuations", split)
        if key not in self._cache:
            tok, cfg = self.tokenizer, self.config
            bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
            records = self.records(split)
            if "prompt" in records[0]:  # the prefix given (MUSE's verbmem: `prompt`, `gt`)
                prompts = [bos + tok(r["prompt"], add_special_tokens=False)["input_ids"] for r in records]
                texts = [tok(r["continuation"], add_special_tokens=False)["input_ids"] for r in records]
                start = 0
            else:
                texts = tok([r["text"] for r in records], add_special_tokens=False)["input_ids"]
                short = [i for i, ids in enumerate(texts) if len(ids) <= cfg.verbatim_prefix_tokens]
                if short:
                    raise ValueError(f"split {split!r}: text {short[0]} has no tokens after its "
                                     f"{cfg.verbatim_prefix_tokens}-token prefix; lower verbatim_prefix_tokens")
                prompts = [bos + ids[: cfg.verbatim_prefix_tokens] for ids in texts]
                start = cfg.verbatim_prefix_tokens
            truths = [tok.decode(ids[start : start + cfg.verbatim_new_tokens], skip_special_tokens=True).strip()
                      for ids in texts]
            self._cache[key] = list(zip(self.generate_from_ids(prompts, cfg.verbatim_new_tokens), truths))
        return self._cache[key]

    def generate(self, questions: list[str]) -> list[str]:
        """Greedy answers to questions in the harness's prompt format, cut at end-of-sequence and stripped."""
        return self.generate_from_ids([prompt_ids(self.tokenizer, q) for q in questions], self.config.max_new_tokens)

    @torch.inference_mode()
    def generate_from_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        """Greedy continuations of token-id prompts (batched, left-padded), cut at end-of-sequence, stripped."""
        tok = self.tokenizer
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            ids, mask = (t.to(self.device) for t in pad([prompts[i] for i in idx], tok.pad_token_id, left=True))
            generated = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            )
            new_tokens = generated[:, ids.shape[1] :]
            self.generated_prompts += len(idx)
            self.decode_steps += new_tokens.shape[1]
            for row, i in enumerate(idx):
                tokens = new_tokens[row].tolist()
                if tok.eos_token_id in tokens:
                    tokens = tokens[: tokens.index(tok.eos_token_id)]
                out[i] = tok.decode(tokens, skip_special_tokens=True).strip()
        return out


def _cache_argument(model) -> str:
    """The name under which `model.forward` takes a KV cache: `cache` from transformers 5.2x on (the old
    `past_key_values` warns there and goes in 5.40), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
