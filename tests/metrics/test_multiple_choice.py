"""Multiple-choice accuracy on hand-computable cases: a bigram model whose next-token distribution depends on
the previous word only, over a whitespace tokenizer, so every log-likelihood is a sum of logs of chosen numbers."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from metrics import evaluate
from metrics.context import EvalConfig, EvalContext
from metrics.multiple_choice import continuation_loglikelihoods, letter_prompt, pick, split_accuracy

WORDS = ["<bos>", "<pad>", "carried", "by", "bats", "mosquitoes", "contaminated", "water", "Answer:", "A", "B",
         "A.", "B.", "X", "heat", "C.", "D.", "C", "D"]
ID = {w: i for i, w in enumerate(WORDS)}


class WordTokenizer:
    bos_token_id, pad_token_id, eos_token_id = ID["<bos>"], ID["<pad>"], None

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ID[w] for w in text.split()]}


class Bigram(torch.nn.Module):
    """logits[t] = log of a chosen next-word distribution given word t (the rest of its mass on "X"; uniform
    after a word without one)."""

    def __init__(self, rows: dict[str, dict[str, float]]):
        super().__init__()
        table = torch.ones((len(WORDS), len(WORDS)))
        for prev, nxt in rows.items():
            table[ID[prev]] = 0.0
            for word, p in nxt.items():
                table[ID[prev], ID[word]] = p
            table[ID[prev], ID["X"]] += 1.0 - sum(nxt.values())
        self.log_table = torch.nn.Parameter((table / table.sum(-1, keepdim=True)).log(), requires_grad=False)

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.log_table[input_ids])


def context(model, splits=None, batch_size=64):
    return EvalContext(model, WordTokenizer(), splits or {}, EvalConfig(batch_size=batch_size))


def test_letter_prompt_is_lm_evals_layout():
    assert letter_prompt(" Which? ", ["x", "y"]) == "Which?\nA. x\nB. y\nAnswer:"


def test_pick_by_sum_or_per_character():
    """log .4 > log .3 by sum; per character log(.3)/10 = -0.120 > log(.4)/4 = -0.229."""
    ll = np.log([0.4, 0.3])
    assert pick(ll) == 0
    assert pick(ll, np.array([4.0, 10.0])) == 1


def test_continuation_loglikelihood_sums_its_tokens():
    """'carried by' + ' contaminated water': log p(contaminated | by) + log p(water | contaminated) = log .5 + log .8."""
    model = Bigram({"by": {"contaminated": 0.5, "bats": 0.5}, "contaminated": {"water": 0.8, "heat": 0.2}})
    ll = continuation_loglikelihoods(context(model), [("carried by", " contaminated water"), ("carried by", " bats")])
    assert ll == pytest.approx([math.log(0.5) + math.log(0.8), math.log(0.5)], abs=1e-6)


def test_batches_do_not_change_the_numbers():
    model = Bigram({"by": {"bats": 0.3, "mosquitoes": 0.7}})
    pairs = [("carried by", " bats"), ("carried by carried by", " mosquitoes"), ("by", " bats")]
    one = continuation_loglikelihoods(context(model, batch_size=1), pairs)
    assert continuation_loglikelihoods(context(model, batch_size=3), pairs) == pytest.approx(one, abs=1e-6)


def test_accuracy_by_text_by_character_and_by_letter():
    """Item 1: bats .4 vs mosquitoes .3 (acc picks bats, right; acc_norm picks mosquitoes, wrong); the letter
    prompt gives A .2, B .7 (picks B, wrong). Item 2: mosquitoes .7 (all right by text); letters A .2 B .7
    with the answer B (right). acc = 1, acc_norm = 1/2, letter_acc = 1/2."""
    model = Bigram({"by": {"bats": 0.4, "mosquitoes": 0.3}, "Answer:": {"A": 0.2, "B": 0.7}})
    items = [{"question": "carried by", "choices": ["bats", "mosquitoes"], "answer": 0},
             {"question": "X carried by", "choices": ["bats", "mosquitoes"], "answer": 1}]
    model2 = Bigram({"by": {"bats": 0.1, "mosquitoes": 0.7}, "Answer:": {"A": 0.2, "B": 0.7}})
    first = split_accuracy(context(model, {"forget_mc": items[:1]}), "forget_mc")
    second = split_accuracy(context(model2, {"forget_mc": items[1:]}), "forget_mc")
    assert first == {"acc": 1.0, "acc_norm": 0.0, "letter_acc": 0.0}
    assert second == {"acc": 1.0, "acc_norm": 1.0, "letter_acc": 1.0}


def test_family_reports_both_splits_and_chance():
    model = Bigram({"by": {"bats": 0.9}})
    forget = [{"question": "carried by", "choices": ["bats", "mosquitoes", "heat", "water"], "answer": 1}]
    general = [{"question": "carried by", "choices": ["bats", "heat"], "answer": 0}]
    out = evaluate(context(model, {"forget_mc": forget, "general_mc": general}), ["multiple_choice"])
    assert out["forget_mc_acc"] == 0.0 and out["general_mc_acc"] == 1.0
    assert out["mc_chance"] == 0.25  # one item of four choices


def test_family_without_items_is_unavailable_not_zero():
    ctx = context(Bigram({}), {"forget": [{"question": "q", "answer": "a"}]})
    out = evaluate(ctx, ["multiple_choice"])
    assert math.isnan(out["forget_mc_acc"]) and "multiple-choice" in ctx.unavailable["forget_mc_acc"]
