"""Memorization, membership-inference and privacy-leakage formulas on hand-computable cases (extraction
strength: test_extraction_strength.py)."""

import math

import numpy as np
import pytest
import torch

from metrics.context import TokenScores, token_statistics
from metrics.memorization import perplexity, rouge_l_f1
from metrics.mia import (
    auroc,
    loss_score,
    lowest_k_mean,
    mink_pp_score,
    mink_score,
    privacy_leakage_score,
    zlib_length,
    zlib_score,
)

LN2 = math.log(2)


def scores(logp, zscore=None, eos=False):
    logp = np.asarray(logp, dtype=float)
    return TokenScores(logp, np.zeros(len(logp), bool), np.asarray(zscore if zscore is not None else logp, float), eos)


def test_perplexity_is_token_weighted():
    """Tokens with p = 1/2, 1/2 and 1/4: mean NLL = (ln2 + ln2 + 2 ln2)/3 = 4/3 ln2, so ppl = 2^(4/3)."""
    assert perplexity([np.log([0.5, 0.5]), np.log([0.25])]) == pytest.approx(2 ** (4 / 3))


def test_rouge_l_f1():
    """'the cat' against 'the cat sat': precision 1, recall 2/3, F1 = 2·(2/3)/(5/3) = 0.8."""
    assert rouge_l_f1("the cat sat", "the cat") == pytest.approx(0.8)
    assert rouge_l_f1("Paris", "Rome") == 0.0


def test_zlib_length_of_fixed_strings():
    """zlib's 2-byte header, an empty final block and the 4-byte Adler-32: 8 bytes for '', 9 for 'a'."""
    assert zlib_length("") == 8
    assert zlib_length("a") == 9
    assert zlib_length("a" * 1000) < zlib_length("".join(chr(97 + (i * 7919) % 26) for i in range(1000)))


def test_lowest_k_mean():
    values = np.array([-1.0, -2.0, -3.0, -4.0, -5.0])
    assert lowest_k_mean(values, 0.4) == pytest.approx(-4.5)  # floor(0.4·5) = 2 lowest: -5, -4
    assert lowest_k_mean(values, 0.1) == pytest.approx(-5.0)  # max(1, floor(0.5)) = 1
    assert lowest_k_mean(values, 1.0) == pytest.approx(-3.0)


def test_membership_scores_leave_out_end_of_sequence():
    """Log-probs ln(1/2), ln(1/4), then EOS at ln(1/8): LOSS = -1.5 ln2 over the text tokens only."""
    t = scores(np.log([0.5, 0.25, 0.125]), zscore=[1.0, -3.0, -9.0], eos=True)
    assert loss_score(t) == pytest.approx(-1.5 * LN2)
    assert zlib_score(t, "a") == pytest.approx(-1.5 * LN2 / 9)
    assert mink_score(t, 0.5) == pytest.approx(-2 * LN2)  # one lowest of two: ln(1/4)
    assert mink_pp_score(t, 0.5) == pytest.approx(-3.0)
    assert loss_score(scores(np.log([0.5, 0.25]))) == pytest.approx(-1.5 * LN2)  # no EOS: all tokens


def test_min_k_plus_plus_zscore_by_hand():
    """Next-token distribution (1/2, 1/4, 1/8, 1/8), in units of ln2: log p = (-1, -2, -3, -3),
    mu = -1.75, E[(log p)^2] = 3.75, sigma^2 = 3.75 - 1.75^2 = 0.6875; token 0 has z = 0.75/sqrt(0.6875)."""
    logits = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125])).view(1, 1, 4)
    logp, hit, z = token_statistics(logits, torch.tensor([[0]]))
    assert logp.item() == pytest.approx(-LN2, abs=1e-6) and hit.item()
    assert z.item() == pytest.approx(0.75 / math.sqrt(0.6875), abs=1e-5)
    _, hit3, z3 = token_statistics(logits, torch.tensor([[3]]))
    assert not hit3.item() and z3.item() == pytest.approx(-1.25 / math.sqrt(0.6875), abs=1e-5)


def test_min_k_plus_plus_clamps_a_certain_distribution():
    """One token certain: sigma^2 = 0 is clamped to 1e-6, so z is finite."""
    logits = torch.tensor([[[0.0, -1e4]]])
    _, _, z = token_statistics(logits, torch.tensor([[0]]))
    assert math.isfinite(z.item())


def test_auroc():
    assert auroc([3.0, 4.0], [1.0, 2.0]) == 1.0  # every member above every non-member
    assert auroc([1.0, 2.0], [3.0, 4.0]) == 0.0
    assert auroc([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert auroc([1.0, 3.0], [2.0]) == 0.5  # one of two pairs ranked right


def test_privacy_leakage_orientation():
    """MUSE: A = 1 - AUROC, 100 (A_u - A_r)/A_r. A target at AUROC 0.98 against a retain model at 0.5
    gives 100 (0.02 - 0.5)/0.5 = -96; the retain model itself 0; an over-unlearned model at 0.2 gives +60."""
    assert privacy_leakage_score(0.98, 0.5) == pytest.approx(-96.0)
    assert privacy_leakage_score(0.5, 0.5) == 0.0
    assert privacy_leakage_score(0.2, 0.5) == pytest.approx(60.0)
