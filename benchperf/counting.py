"""The evaluation context `bench perf` counts with: what a minimal evaluation would run (the distinct
(question, answer) sequences scored, the distinct prompts decoded, its own batched `generate()` calls)
and, from a hook on the model, every call and the positions (batch x length, padding included) of the
scoring calls, i.e. those outside generation."""

from __future__ import annotations

import math

from metrics.context import PERTURBED, EvalContext


class CountingContext(EvalContext):
    """An `EvalContext` that counts its work; its numbers are the plain context's."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sequences: dict[str, set] = {}  # split -> {(question, answer)}
        self.prompts: set[tuple[int, ...]] = set()
        self.generate_calls = 0
        self.positions = self.generation_positions = self.calls = self.generation_calls = 0
        self.model.register_forward_pre_hook(self._count_call, with_kwargs=True)

    def _count_call(self, _module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.positions += ids.numel() if ids is not None else 0
        self.calls += 1

    @property
    def scoring_positions(self) -> int:
        return self.positions - self.generation_positions

    @property
    def scoring_calls(self) -> int:
        """Model calls outside generation, whoever made them."""
        return self.calls - self.generation_calls

    def score(self, split, fields):
        super().score(split, fields)
        seen = self.sequences.setdefault(split, set())
        for r in self.records(split):
            for f in fields:
                seen.update((r["question"], a) for a in (r[f] if f == PERTURBED else [r[f]]))

    def generate_from_ids(self, prompts, max_new_tokens):
        self.prompts.update(tuple(p) for p in prompts)
        self.generate_calls += math.ceil(len(prompts) / self.config.batch_size)  # its loop's batches
        positions, calls = self.positions, self.calls
        try:
            return super().generate_from_ids(prompts, max_new_tokens)
        finally:
            self.generation_positions += self.positions - positions
            self.generation_calls += self.calls - calls
