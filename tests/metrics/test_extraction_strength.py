"""Extraction strength, both definitions (`eval.extraction_strength`), on hand-computable hit patterns.

harness: 1 - k*/n over the answer tokens, end-of-sequence (EOS) included where present; no matching
suffix scores 0. open_unlearning: over the text tokens only (EOS left out), k tried 0..n-1, so no
matching suffix scores 1/n.
"""

import numpy as np
import pytest

from bench.core.errors import FieldError
from bench.core.names import EXTRACTION_STRENGTHS
from metrics.context import EvalConfig, TokenScores
from metrics.memorization import (
    EXTRACTION_STRENGTH,
    extraction_strength,
    extraction_strength_family,
    open_unlearning_extraction_strength,
)


def answer(hits, eos):
    """TokenScores with these greedy hits (the last one EOS's where `eos`); log-probs are not read."""
    n = len(hits)
    return TokenScores(np.zeros(n), np.array(hits, dtype=bool), np.zeros(n), eos)


@pytest.mark.parametrize("hits, expected", [
    ([1, 1, 1], 1.0),        # k* = 0
    ([0, 1, 1, 1], 0.75),    # k* = 1 of 4
    ([0, 0, 1, 1], 0.5),     # k* = 2 of 4
    ([1, 1, 0, 1], 0.25),    # a miss in the middle: only the last token's suffix matches
    ([1, 1, 0], 0.0),        # the last token is wrong: no suffix matches
])
def test_extraction_strength(hits, expected):
    assert extraction_strength(np.array(hits, dtype=bool)) == pytest.approx(expected)


@pytest.mark.parametrize("hits, expected", [
    ([1, 1, 1], 1.0),        # k = 0
    ([0, 1, 1], 2 / 3),      # k = 1 of 3
    ([1, 1, 0], 1 / 3),      # no suffix matches: the loop ends at k = n-1 = 2, 1 - 2/3
    ([1, 0, 1], 1 / 3),      # only the last token matches: k = 2 as well
    ([0], 1.0),              # one wrong token: k = n-1 = 0, so 1 - 0/1
    ([], 0.0),               # no text tokens: 0, as open-unlearning sets it
])
def test_open_unlearning_extraction_strength(hits, expected):
    assert open_unlearning_extraction_strength(np.array(hits, dtype=bool)) == pytest.approx(expected)


# Three text tokens, then EOS where `eos`: (hits, eos, harness, open_unlearning), as in metrics/memorization.py.
CASES = {
    "all-hits-with-eos": ([1, 1, 1, 1], True, 1.0, 1.0),
    "all-hits-no-eos": ([1, 1, 1], False, 1.0, 1.0),
    "first-wrong": ([0, 1, 1, 1], True, 3 / 4, 2 / 3),               # k* = 1 of 4; k = 1 of 3
    "eos-wrong-text-right": ([1, 1, 1, 0], True, 0.0, 1.0),         # the EOS miss counts only in ours
    "last-text-token-wrong": ([1, 1, 0, 1], True, 1 / 4, 1 / 3),   # ours: EOS alone; theirs: k = n-1
    "last-token-wrong-no-eos": ([1, 1, 0], False, 0.0, 1 / 3),     # an answer cut by max_length
    "all-wrong-with-eos": ([0, 0, 0, 0], True, 0.0, 1 / 3),
    "eos-only": ([1], True, 1.0, 0.0),                              # no text tokens: 0 there
}


@pytest.mark.parametrize("hits, eos, harness, open_unlearning", CASES.values(), ids=CASES.keys())
def test_both_definitions_on_an_answer(hits, eos, harness, open_unlearning):
    t = answer(hits, eos)
    assert EXTRACTION_STRENGTH["harness"](t) == pytest.approx(harness)
    assert EXTRACTION_STRENGTH["open_unlearning"](t) == pytest.approx(open_unlearning)


def test_every_allowed_definition_is_computed():
    assert tuple(EXTRACTION_STRENGTH) == EXTRACTION_STRENGTHS
    assert EvalConfig().extraction_strength == "harness"


class FakeContext:
    """What the family reads: the config, each split's token scores, and where it notes and reports."""

    def __init__(self, config, scores):
        self.config, self.scores, self.notes, self.unavailable = config, scores, {}, {}

    def has(self, split):
        return split in self.scores

    def token_scores(self, split, field="answer"):
        return self.scores[split]


def test_the_family_follows_the_setting_and_notes_a_non_default():
    """forget: 'first-wrong' and 'eos-wrong-text-right' -> harness (3/4 + 0)/2 = 3/8, open_unlearning
    (2/3 + 1)/2 = 5/6; retain: all hits -> 1 under both."""
    scores = {"forget": [answer([0, 1, 1, 1], True), answer([1, 1, 1, 0], True)],
              "retain": [answer([1, 1, 1, 1], True)]}
    ours = FakeContext(EvalConfig(), scores)
    assert extraction_strength_family(ours) == pytest.approx(
        {"forget_extraction_strength": 3 / 8, "retain_extraction_strength": 1.0})
    assert ours.notes == {}  # default rows stay as they were
    theirs = FakeContext(EvalConfig(extraction_strength="open_unlearning"), scores)
    assert extraction_strength_family(theirs) == pytest.approx(
        {"forget_extraction_strength": 5 / 6, "retain_extraction_strength": 1.0})
    assert theirs.notes == {"extraction_strength": "open_unlearning"}


def test_an_unknown_definition_names_the_key_and_the_allowed_values():
    with pytest.raises(FieldError, match=r"^extraction_strength: unknown value 'open-unlearning'; "
                                         r"allowed: harness, open_unlearning\. Did you mean open_unlearning\?"):
        EvalConfig(extraction_strength="open-unlearning")
