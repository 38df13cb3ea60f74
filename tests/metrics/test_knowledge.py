"""Keyword accuracy (RWKU-style) on hand-computable cases, and its unavailability without keywords."""

import math

import pytest

from metrics import MetricUnavailable
from metrics.knowledge import keyword_accuracy, keyword_hit


class Answers:
    """The part of an EvalContext keyword accuracy reads: records and greedy answers per split."""

    def __init__(self, splits: dict[str, list[tuple[dict, str]]]):
        self.splits, self.unavailable = splits, {}

    def has(self, split):
        return bool(self.splits.get(split))

    def records(self, split):
        return [r for r, _ in self.splits[split]]

    def generations(self, split):
        return [g for _, g in self.splits[split]]


def test_keyword_hit_ignores_case_and_needs_the_whole_keyword():
    assert keyword_hit("Paris", "The capital of France is paris.")
    assert keyword_hit(" New Delhi ", "It is New Delhi.")
    assert not keyword_hit("New Delhi", "It is Delhi.")


def test_keyword_accuracy_is_the_share_of_answers_naming_the_keyword():
    """Forget: 1 of 4 answers names its capital; retain: 2 of 2; a split the data lacks is NaN with the reason."""
    ctx = Answers({"forget": [({"keyword": "Paris"}, "Paris."), ({"keyword": "Tokyo"}, "Kyoto."),
                              ({"keyword": "Cairo"}, "I do not know."), ({"keyword": "Oslo"}, "")],
                   "retain": [({"keyword": "Sofia"}, "The capital is Sofia."), ({"keyword": "Riga"}, "Riga")]})
    out = keyword_accuracy(ctx)
    assert out == {"forget_keyword_acc": pytest.approx(0.25), "retain_keyword_acc": 1.0}
    ctx = Answers({"forget": [({"keyword": "Paris"}, "Paris.")]})
    out = keyword_accuracy(ctx)
    assert out["forget_keyword_acc"] == 1.0 and math.isnan(out["retain_keyword_acc"])
    assert "retain" in ctx.unavailable["retain_keyword_acc"]


def test_questions_without_keywords_make_it_unavailable_not_zero():
    with pytest.raises(MetricUnavailable, match="keyword"):
        keyword_accuracy(Answers({"forget": [({"question": "q"}, "a")]}))
    with pytest.raises(MetricUnavailable, match="1 of 2 forget questions"):
        keyword_accuracy(Answers({"forget": [({"keyword": "Paris"}, "Paris"), ({}, "a")]}))
