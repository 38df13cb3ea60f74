"""The reference-model and GradNorm membership attacks: their scores on hand-computable cases, what they
cost, and (slow) the acceptance test on prepared models: a memorised target scores AUROC near 1, the retain
model, never trained on the forget set, near 0.5."""

import copy
import math

import numpy as np
import pytest
import torch

from helpers import THREE_QA, FixedLogits

from bench.core.encoding import Encoded, encode_many
from bench.models.baseline_stats import base_statistics, retain_statistics
from bench.models.zoo import build_model, train_tokenizer
from metrics import EvalConfig, EvalContext, evaluate, metric_columns
from metrics.context import TokenScores
from metrics.mia import (
    BASE_LOSSES,
    answer_nll,
    gradient_norms,
    gradnorm_scores,
    reference_score,
    reference_scores,
)

LN2 = math.log(2)
EOS = 1


def test_reference_score_by_hand():
    """Text tokens ln(1/2), ln(1/4) then EOS ln(1/8): the model's mean NLL over the text is 1.5 ln2. A reference
    at 3 ln2 gives -(1.5 ln2 - 3 ln2) = +1.5 ln2 (the model finds the answer easier than its base did);
    a reference at 1 ln2 gives -0.5 ln2."""
    t = TokenScores(np.log([0.5, 0.25, 0.125]), np.zeros(3, bool), np.zeros(3), True)
    assert reference_score(t, -3 * LN2) == pytest.approx(1.5 * LN2)
    assert reference_score(t, -LN2) == pytest.approx(-0.5 * LN2)


def test_answer_nll_leaves_out_the_prompt_and_end_of_sequence():
    """p = (1/2, 1/4, 1/4) everywhere; sequence [2 | 0, 2, EOS=1] (prompt | answer): the text tokens 0 and 2
    cost ln2 and 2 ln2, mean 1.5 ln2; the EOS (ln 4) is left out, the prompt token is no answer token."""
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25])).expand(4, 3)
    labels = torch.tensor([-100, 0, 2, EOS])
    assert answer_nll(logits, labels, EOS).item() == pytest.approx(1.5 * LN2)
    assert answer_nll(logits, labels, None).item() == pytest.approx((LN2 + 2 * LN2 + 2 * LN2) / 3)  # no EOS known


@pytest.mark.parametrize("logits, ids, expected", [
    ([0.0, 0.0], [0, 0, 0], math.sqrt(1 / 2)),        # p = (1/2, 1/2), text (0, 0): g = (-1/2, 1/2)
    ([0.0, 0.0], [0, 0, EOS], math.sqrt(1 / 2)),      # text (0), then EOS, left out: the same gradient
    ([0.0, 0.0], [0, 0, 1, 0], math.sqrt(2) / 6),     # text (0, 1, 0): an EOS inside the text counts
    ([0.0, 0.0, 0.0], [0, 0, 2, 0, 2], math.sqrt(1 / 6)),
])
def test_gradient_norms_by_hand(logits, ids, expected):
    """One L2 norm of the gradient of the mean text-token NLL with respect to the logits (FixedLogits' one
    parameter): d/dl of -log softmax(l)[y] is p - onehot(y), so the gradient is p minus the text tokens'
    frequencies. Third case: g = (1/2 - 2/3, 1/2 - 1/3) = (-1/6, 1/6). Fourth: p = 1/3 each, text (0, 2, 0, 2),
    g = (1/3 - 1/2, 1/3, 1/3 - 1/2), ||g|| = sqrt(1/36 + 1/9 + 1/36) = sqrt(1/6)."""
    model = FixedLogits(logits)
    norm, = gradient_norms(model, [Encoded(ids, 1)], pad_token_id=0, eos_token_id=EOS)
    assert norm == pytest.approx(expected, abs=1e-6)


def test_gradient_norm_of_a_skewed_distribution():
    """p = (1/2, 1/4, 1/4), text token 0: g = (-1/2, 1/4, 1/4), ||g|| = sqrt(1/4 + 1/16 + 1/16) = sqrt(3/8)."""
    model = FixedLogits(torch.log(torch.tensor([0.5, 0.25, 0.25])).tolist())
    norm, = gradient_norms(model, [Encoded([2, 0], 1)], pad_token_id=0, eos_token_id=EOS)
    assert norm == pytest.approx(math.sqrt(3 / 8), abs=1e-6)


def test_gradient_norms_leave_the_model_as_they_found_it():
    """No step, no `.grad` written, a frozen parameter stays frozen (and counts), the model ends in eval mode."""
    model = FixedLogits([0.0, 0.0]).train()
    before = model.logits.detach().clone()
    model.logits.requires_grad_(False)  # as a method that trains other parameters would leave it
    norm, = gradient_norms(model, [Encoded([0, 0, 0], 1)], pad_token_id=0, eos_token_id=EOS)
    assert norm == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert not model.logits.requires_grad and model.logits.grad is None and not model.training
    assert torch.equal(model.logits.detach(), before)
    with torch.inference_mode():  # an evaluation run under inference mode still gets its gradients
        assert gradient_norms(model, [Encoded([0, 0, 0], 1)], 0, EOS) == [norm]


@pytest.fixture(scope="module")
def uniform():
    """A tokenizer and a model with uniform logits over its vocabulary: every token costs ln V."""
    tok = train_tokenizer([r[k] for r in THREE_QA for k in ("question", "answer", "paraphrased_answer")] * 10, 300)
    return FixedLogits([0.0] * len(tok)), tok


def _ctx(model, tok, baselines=None):
    """Forget: the first two questions; holdout: the third (the Bo Lind one) and the first again."""
    splits = {"forget": THREE_QA[:2], "holdout": [THREE_QA[2], THREE_QA[0]]}
    return EvalContext(model, tok, splits, EvalConfig(share_prompts=False), baselines=baselines)


def test_reference_family_calibrates_by_the_base_and_runs_no_pass_of_its_own(uniform):
    """Under uniform logits every answer's LOSS score is -ln V, so the score is -ln V minus the base's loss:
    forget answers the base found hard (-5, -6) against holdout ones it found easy (-1, -2) give AUROC 1;
    the other way round 0. The reference scores read the LOSS scores the `mia` family already computed."""
    model, tok = uniform
    ctx = _ctx(model, tok, {BASE_LOSSES: {"forget": [-5.0, -6.0], "holdout": [-1.0, -2.0]}})
    row = evaluate(ctx, ["mia"])
    passes = ctx.forward_passes
    assert evaluate(ctx, ["mia_ref"]) == {"mia_ref_auc": 1.0} and ctx.forward_passes == passes
    assert reference_scores(ctx, "forget") == pytest.approx([-math.log(len(tok)) + 5, -math.log(len(tok)) + 6])
    assert row["mia_loss_auc"] == 0.5  # every LOSS score ties: the calibration is all there is
    swapped = _ctx(model, tok, {BASE_LOSSES: {"forget": [-1.0, -2.0], "holdout": [-5.0, -6.0]}})
    assert evaluate(swapped, ["mia_ref"]) == {"mia_ref_auc": 0.0}


@pytest.mark.parametrize("baselines, reason", [
    ({}, "prepare.target: as_is"),  # no base: a target used as it is, or `bench eval`
    ({BASE_LOSSES: {"forget": [-1.0], "holdout": [-1.0, -2.0]}}, "cover 1 forget answers, this evaluation has 2"),
])
def test_reference_family_without_the_base_losses_says_why(uniform, baselines, reason):
    model, tok = uniform
    ctx = _ctx(model, tok, baselines)
    row = evaluate(ctx, ["mia_ref", "mia"])
    assert math.isnan(row["mia_ref_auc"]) and reason in ctx.unavailable["mia_ref_auc"]
    assert not math.isnan(row["mia_mink_pp_auc"])  # the other attacks do not depend on it


def test_gradnorm_family_costs_one_forward_and_one_backward_pass_per_answer(uniform):
    """Uniform p = 1/V: each answer's gradient is p minus the frequencies of its text tokens (EOS left out),
    so ||g||^2 = sum_v (1/V - c_v/n)^2; the score is minus that norm. The holdout's copy of the first
    question scores as the forget one does. Counted: 4 forward and 4 backward passes, cached after."""
    model, tok = uniform
    ctx = _ctx(model, tok)
    scores = {s: gradnorm_scores(ctx, s) for s in ("forget", "holdout")}
    assert (ctx.forward_passes, ctx.backward_passes, ctx.scored_sequences) == (4, 4, 4)
    v = len(tok)
    for split, records in ctx.splits.items():
        for record, score in zip(records, scores[split]):
            e, = encode_many(tok, [(record["question"], record["answer"])], 256)
            text = e.input_ids[e.answer_start:-1]  # the EOS left out
            freq = np.bincount(text, minlength=v) / len(text)
            assert score == pytest.approx(-np.linalg.norm(1 / v - freq), rel=1e-5)
    assert scores["holdout"][1] == scores["forget"][0]
    row = evaluate(ctx, ["mia_gradnorm"])
    assert (ctx.forward_passes, ctx.backward_passes) == (4, 4)  # read from the cache
    assert 0 <= row["mia_gradnorm_auc"] <= 1


def test_new_columns_are_registered():
    assert "mia_ref_auc" in metric_columns() and "mia_gradnorm_auc" not in metric_columns()  # GradNorm is opt-in
    assert metric_columns(["mia_ref"]) == ["mia_ref_auc"] and metric_columns(["mia_gradnorm"]) == ["mia_gradnorm_auc"]


def test_retain_statistics_hold_the_auroc_a_trial_computes():
    """The base's losses and the retain model's reference-model and GradNorm AUROCs in the baseline statistics
    are, to the last digit, what evaluating the retain model with those losses gives."""
    qa = THREE_QA
    tok = train_tokenizer([r[k] for r in qa for k in ("question", "answer", "paraphrased_answer")] * 10, 300)
    base = build_model("tiny-llama", tok, seed=0).eval()
    retain = build_model("tiny-llama", tok, seed=1).eval()
    splits = {"forget": qa[:2], "holdout": qa[1:]}
    cfg = EvalConfig(metrics=("mia", "mia_ref", "mia_gradnorm", "forget_quality"))
    losses = base_statistics(base, tok, splits, cfg)
    assert {s: len(v) for s, v in losses[BASE_LOSSES].items()} == {"forget": 2, "holdout": 2}
    stats = retain_statistics(retain, tok, splits, cfg, losses[BASE_LOSSES])
    ctx = EvalContext(copy.deepcopy(retain), tok, splits, cfg, baselines=losses)
    row = evaluate(ctx, ["mia_ref", "mia_gradnorm"])
    assert stats["retain_mia_ref_auc"] == row["mia_ref_auc"]
    assert stats["retain_mia_gradnorm_auc"] == row["mia_gradnorm_auc"]
    without = retain_statistics(retain, tok, splits, EvalConfig(metrics=("mia", "forget_quality")))
    assert "retain_mia_ref_auc" not in without and "retain_mia_gradnorm_auc" not in without  # neither runs


# The acceptance test: 12 synthetic authors (3 forget, 6 retain, 3 holdout: 30 forget and 30 holdout
# questions), a base pre-trained 15 steps, the target and the retain model fine-tuned 60 steps from it.
ACCEPTANCE_DATA = dict(n_authors=12, forget_fraction=0.25, forget_val_fraction=0.0, n_holdout_authors=3,
                       n_general_authors=40, general_fact_repeats=2)
ACCEPTANCE_PREPARE = dict(pretrain_steps=15, finetune_steps=60, batch_size=16, vocab_size=400, warmup_steps=3)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from bench.config.suite import DataConfig, PrepareConfig
    from bench.models.prepare import prepare_model

    cfg = EvalConfig(max_new_tokens=8, retain_questions=20, metrics=("mia", "mia_ref", "mia_gradnorm"))
    prepared = prepare_model("tiny-llama", DataConfig(**ACCEPTANCE_DATA), PrepareConfig(**ACCEPTANCE_PREPARE), cfg,
                             tmp_path_factory.mktemp("mia-cache"), log=lambda _m: None)
    return prepared, cfg


@pytest.mark.slow
def test_memorised_target_scores_near_one_and_the_retain_model_near_one_half(prepared):
    from bench.data.store import read_splits
    from bench.models.baseline_stats import load_baseline_stats
    from bench.models.zoo import load_model, load_tokenizer
    from bench.run.evaluation import EVAL_SPLITS, evaluate_model

    prepared, cfg = prepared
    assert "-base-" in prepared.base_dir  # the reference is the pre-trained base the two were fine-tuned from
    baselines = load_baseline_stats(prepared.baseline_stats)
    splits = read_splits(prepared.data_dir, list(EVAL_SPLITS))
    assert {s: len(v) for s, v in baselines[BASE_LOSSES].items()} == {s: len(splits[s]) for s in ("forget", "holdout")}
    rows = {}
    for role, where in (("target", prepared.target_dir), ("retain", prepared.retain_dir)):
        rows[role] = evaluate_model(load_model(where), load_tokenizer(where), cfg, splits, baselines).columns
    for column in ("mia_ref_auc", "mia_gradnorm_auc"):
        assert rows["target"][column] > 0.95, (column, rows)
        assert abs(rows["retain"][column] - 0.5) < 0.2, (column, rows)
        assert rows["retain"][column] == baselines[f"retain_{column}"]  # the retain model's row is its baseline
