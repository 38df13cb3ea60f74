"""NPO, SimNPO, DPO and UNDIAL on inputs small enough to compute by hand.

The fake model has a 2-token vocabulary and the same logits at every position; with equal logits
every answer token has probability 1/2, with logits (ln 3, 0) the probabilities are (3/4, 1/4).
"""

import math

import pytest
import torch
from helpers import FixedLogits, qa_inputs, run_loss as run, sgd_step

from methods import METHODS, MethodContext

# Importing a method module registers it, so these imports also put the four methods in METHODS.
from methods.dpo import DPOArgs, dpo_forget_loss
from methods.npo import NPOArgs, npo_forget_loss
from methods.simnpo import SimNPOArgs, simnpo_forget_loss
from methods.undial import UNDIALArgs, adjusted_targets, undial_loss

LN2, LN3 = math.log(2), math.log(3)






# --- NPO ---------------------------------------------------------------------------------------

def test_npo_equal_to_reference_is_two_over_beta_ln2():
    """Model == reference: log-ratio 0, log sigmoid(0) = -ln 2, forget = (2/beta) ln 2 = 4 ln 2 at beta 0.5."""
    model, ref = FixedLogits([0.3, -0.2]), FixedLogits([0.3, -0.2])
    loss, parts = run("npo", model, ref, forget=qa_inputs([[1, 0], [1]]), retain=qa_inputs([[0]]), beta=0.5, alpha=0.0)
    assert loss.item() == pytest.approx(4 * LN2)
    assert parts["log_ratio"] == pytest.approx(0.0, abs=1e-7)


def test_npo_uses_sequence_sum_log_ratio():
    """p_theta(1) = 1/2, p_ref(1) = 1/4: log-ratio ln 2 per token, so ln 2 and 2 ln 2 for answers of 1 and 2
    tokens. With beta 1: -2 ln sigmoid(-ln 2) = -2 ln(1/3) = 2 ln 3 and -2 ln sigmoid(-2 ln 2) = 2 ln 5;
    mean ln 3 + ln 5 = ln 15 (a per-token mean ratio would give 2 ln 3 for both)."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([LN3, 0.0])
    loss, parts = run("npo", model, ref, forget=qa_inputs([[1], [1, 1]]), retain=qa_inputs([[0]]), beta=1.0, alpha=0.0)
    assert loss.item() == pytest.approx(math.log(15))
    assert parts["log_ratio"] == pytest.approx(1.5 * LN2)
    assert npo_forget_loss(torch.tensor([-LN2]), torch.tensor([-2 * LN2]), 1.0).item() == pytest.approx(2 * LN3)


class CountingModel(FixedLogits):
    calls = 0

    def forward(self, input_ids, attention_mask=None):
        CountingModel.calls += 1
        return super().forward(input_ids, attention_mask)


def test_reference_logps_are_computed_once_per_example():
    """The frozen reference runs only for batches holding an example it has not scored yet.

    p_ref(1) = 1/4 per token: answers of 1 and 2 tokens have log p_ref = -ln 4 and -2 ln 4, whichever
    batch (and so whichever padding) they come back in.
    """
    from methods.npo import reference_logps

    ref = CountingModel([LN3, 0.0])
    ctx = MethodContext(args=None, reference=ref)
    first = {"forget": {**qa_inputs([[1], [1, 1]]), "index": torch.tensor([0, 1])}}
    again = {"forget": {**qa_inputs([[1, 1], [1]]), "index": torch.tensor([1, 0])}}
    unindexed = {"forget": qa_inputs([[1]])}
    [a] = reference_logps(ctx, first, ["forget"])
    calls = CountingModel.calls
    [b] = reference_logps(ctx, again, ["forget"])
    assert CountingModel.calls == calls  # both examples remembered
    assert a.tolist() == pytest.approx([-math.log(4), -2 * math.log(4)])
    assert b.tolist() == pytest.approx([-2 * math.log(4), -math.log(4)])
    reference_logps(ctx, unindexed, ["forget"])  # a batch without indices is always computed
    assert CountingModel.calls == calls + 1


def test_npo_retain_term_is_weighted_by_alpha():
    """Model == reference at beta 0.5: 4 ln 2 from the forget term; retain NLL ln 2 weighted 0.5 -> 4.5 ln 2."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, parts = run("npo", model, ref, forget=qa_inputs([[1]]), retain=qa_inputs([[0, 1]]), beta=0.5, alpha=0.5)
    assert loss.item() == pytest.approx(4.5 * LN2)
    assert parts["retain_loss"] == pytest.approx(LN2)
    assert parts["forget_loss"] == pytest.approx(4 * LN2)


def test_npo_kl_retain_is_zero_when_equal_to_reference():
    """KL(p_ref || p_theta) is 0 when the model equals its reference, leaving (2/beta) ln 2 = 20 ln 2."""
    model, ref = FixedLogits([0.4, 0.1]), FixedLogits([0.4, 0.1])
    loss, parts = run("npo", model, ref, forget=qa_inputs([[1]]), retain=qa_inputs([[0, 1]]), retain_loss="kl")
    assert parts["retain_loss"] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(20 * LN2)


def test_npo_step_lowers_forget_probability():
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, _ = run("npo", model, ref, forget=qa_inputs([[1, 1]]), retain=qa_inputs([[1]]), alpha=0.0)
    sgd_step(model, loss)
    assert torch.softmax(model.logits.detach(), 0)[1] < 0.5


# --- SimNPO ------------------------------------------------------------------------------------

def test_simnpo_length_normalised_with_default_weights():
    """p = 1/2 per token: log p/|a| = -ln 2 for the 1- and the 3-token answer alike. beta 1, delta 0:
    -2 ln sigmoid(ln 2) = -2 ln(2/3) = 2 ln 1.5; times gamma 0.125 -> 0.25 ln 1.5; plus alpha 1 x retain
    NLL ln 2."""
    model = FixedLogits([0.0, 0.0])
    loss, parts = run("simnpo", model, forget=qa_inputs([[1], [0, 1, 1]]), retain=qa_inputs([[1]]), beta=1.0)
    assert parts["forget_loss"] == pytest.approx(2 * math.log(1.5))
    assert loss.item() == pytest.approx(0.25 * math.log(1.5) + LN2)


def test_simnpo_margin_is_inside_beta():
    """beta 2, delta ln 2: beta * (-ln 2 + ln 2) = 0 -> -(2/2) ln sigmoid(0) = ln 2. With the margin outside
    (beta * x + delta = -ln 2) it would be -ln sigmoid(-ln 2) = ln 3."""
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("simnpo", model, forget=qa_inputs([[0, 1]]), retain=qa_inputs([[1]]),
                  beta=2.0, delta=LN2, gamma=1.0, alpha=0.0)
    assert loss.item() == pytest.approx(LN2)
    torch.testing.assert_close(simnpo_forget_loss(torch.tensor([-2 * LN2]), torch.tensor([2]), 2.0, LN2),
                               torch.tensor(LN2))


def test_simnpo_step_lowers_forget_probability():
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("simnpo", model, forget=qa_inputs([[1, 1]]), retain=qa_inputs([[1]]), alpha=0.0)
    sgd_step(model, loss)
    assert torch.softmax(model.logits.detach(), 0)[1] < 0.5


# --- DPO ---------------------------------------------------------------------------------------

def test_dpo_equal_to_reference_is_two_over_beta_ln2():
    """Both log-ratios 0: margin 0, forget = (2/beta) ln 2 = 8 ln 2 at beta 0.25."""
    model, ref = FixedLogits([0.3, -0.2]), FixedLogits([0.3, -0.2])
    loss, parts = run("dpo", model, ref, forget=qa_inputs([[1, 1]]), alternate=qa_inputs([[0]]),
                      retain=qa_inputs([[0]]), beta=0.25, alpha=0.0)
    assert loss.item() == pytest.approx(8 * LN2)
    assert parts["margin"] == pytest.approx(0.0, abs=1e-7)


def test_dpo_prefers_the_alternate_answer():
    """p_theta = (1/2, 1/2), p_ref = (3/4, 1/4); refusal y_w = token 0, true answer y_l = token 1.
    Ratios: y_w ln(1/2) - ln(3/4) = ln(2/3); y_l ln(1/2) - ln(1/4) = ln 2; margin ln(2/3) - ln 2 = -ln 3.
    beta 1: -2 ln sigmoid(-ln 3) = -2 ln(1/4) = 4 ln 2. Swapping the roles: margin +ln 3 ->
    -2 ln sigmoid(ln 3) = -2 ln(3/4)."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([LN3, 0.0])
    loss, parts = run("dpo", model, ref, forget=qa_inputs([[1]]), alternate=qa_inputs([[0]]),
                      retain=qa_inputs([[0]]), beta=1.0, alpha=0.0)
    assert loss.item() == pytest.approx(4 * LN2)
    assert parts["margin"] == pytest.approx(-LN3)
    swapped, _ = run("dpo", model, ref, forget=qa_inputs([[0]]), alternate=qa_inputs([[1]]),
                     retain=qa_inputs([[0]]), beta=1.0, alpha=0.0)
    assert swapped.item() == pytest.approx(-2 * math.log(0.75))
    lp = torch.tensor([-LN2])
    assert dpo_forget_loss(lp, torch.tensor([math.log(0.75)]), lp, torch.tensor([math.log(0.25)]), 1.0).item() == \
        pytest.approx(4 * LN2)


def test_dpo_retain_term_is_weighted_by_alpha():
    """Model == reference at beta 0.1: 20 ln 2; retain NLL ln 2 x alpha 2 -> 22 ln 2."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, _ = run("dpo", model, ref, forget=qa_inputs([[1]]), alternate=qa_inputs([[0, 0]]),
                  retain=qa_inputs([[1, 0]]), alpha=2.0)
    assert loss.item() == pytest.approx(22 * LN2)


def test_dpo_refuses_misaligned_streams():
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    with pytest.raises(ValueError, match="alternate"):
        run("dpo", model, ref, forget=qa_inputs([[1], [1]]), alternate=qa_inputs([[0]]), retain=qa_inputs([[0]]))


def test_dpo_step_lowers_true_answer_relative_to_refusal():
    """log p(y_l) - log p(y_w) = 2 (log p_1 - log p_0) must fall after one step."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, _ = run("dpo", model, ref, forget=qa_inputs([[1, 1]]), alternate=qa_inputs([[0, 0]]),
                  retain=qa_inputs([[0]]), alpha=0.0)
    sgd_step(model, loss, lr=0.05)
    lp = torch.log_softmax(model.logits.detach(), 0)
    assert 2 * (lp[1] - lp[0]) < 0.0


# --- UNDIAL ------------------------------------------------------------------------------------

def test_undial_targets_by_hand():
    """Equal reference logits, beta 2: token 0 -> softmax([-2, 0]) = (1/(1+e^2), e^2/(1+e^2)); token 1 the
    mirror image. beta ln 3 on token 0: softmax([-ln 3, 0]) = (1/4, 3/4)."""
    e2 = math.exp(2)
    q = adjusted_targets(torch.zeros(2, 2), torch.tensor([0, 1]), 2.0)
    torch.testing.assert_close(q, torch.tensor([[1 / (1 + e2), e2 / (1 + e2)], [e2 / (1 + e2), 1 / (1 + e2)]]))
    q = adjusted_targets(torch.zeros(1, 2), torch.tensor([0]), LN3)
    torch.testing.assert_close(q, torch.tensor([[0.25, 0.75]]))


def test_undial_equal_to_reference_with_equal_logits():
    """p_theta = (1/2, 1/2), so CE = -sum_v q_v ln(1/2) = ln 2 whatever the target q (which sums to 1)."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, parts = run("undial", model, ref, forget=qa_inputs([[0, 1, 1]]), beta=2.0)
    assert loss.item() == pytest.approx(LN2)
    assert parts["forget_nll"] == pytest.approx(LN2)


def test_undial_cross_entropy_per_true_token():
    """Student p = (3/4, 1/4), reference logits equal, beta ln 3. True token 0: q = (1/4, 3/4),
    CE0 = -(1/4 ln 3/4 + 3/4 ln 1/4). True token 1: q = (3/4, 1/4), CE1 = -(3/4 ln 3/4 + 1/4 ln 1/4).
    Answers [0] and [1, 1]: the mean over the 3 answer tokens is (CE0 + 2 CE1) / 3 (a mean of per-example
    means would give (CE0 + CE1) / 2); the 2 prompt tokens count for nothing."""
    ce0 = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    ce1 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    model, ref = FixedLogits([LN3, 0.0]), FixedLogits([0.0, 0.0])
    loss, _ = run("undial", model, ref, forget=qa_inputs([[0], [1, 1]], prompt_len=2), beta=LN3)
    assert loss.item() == pytest.approx((ce0 + 2 * ce1) / 3)
    logits = torch.tensor([[LN3, 0.0]] * 2)
    assert undial_loss(logits, torch.zeros(2, 2), torch.tensor([0, 1]), LN3).item() == pytest.approx((ce0 + ce1) / 2)


def test_undial_step_lowers_true_token_probability():
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, _ = run("undial", model, ref, forget=qa_inputs([[1, 1]]))
    sgd_step(model, loss)
    assert torch.softmax(model.logits.detach(), 0)[1] < 0.5


# --- Registration, needs and arguments ---------------------------------------------------------

def test_needs_are_declared():
    npo, simnpo, dpo, undial = (METHODS.get(n) for n in ("npo", "simnpo", "dpo", "undial"))
    assert npo.needs(NPOArgs()) == {"forget", "retain", "reference"}
    assert npo.needs(NPOArgs(retain_loss="kl")) == {"forget", "retain", "reference"}
    assert simnpo.needs(SimNPOArgs()) == {"forget", "retain"}
    assert simnpo.needs(SimNPOArgs(retain_loss="kl")) == {"forget", "retain", "reference"}
    assert dpo.needs(DPOArgs()) == {"forget", "alternate", "retain", "reference"}
    assert undial.needs(UNDIALArgs()) == {"forget", "reference"}
    assert all(spec.version == 1 for spec in (npo, simnpo, dpo, undial))


def test_defaults():
    assert METHODS.get("npo").hyperparameters() == {"beta": 0.1, "alpha": 1.0, "retain_loss": "nll"}
    assert METHODS.get("simnpo").hyperparameters() == {"beta": 4.5, "delta": 0.0, "gamma": 0.125, "alpha": 1.0,
                                                       "retain_loss": "nll"}
    assert METHODS.get("dpo").hyperparameters() == {"beta": 0.1, "alpha": 1.0, "retain_loss": "nll"}
    assert METHODS.get("undial").hyperparameters() == {"beta": 10.0}


@pytest.mark.parametrize("cls, kwargs, field", [
    (NPOArgs, {"beta": 0.0}, "beta"),
    (NPOArgs, {"alpha": -1.0}, "alpha"),
    (NPOArgs, {"retain_loss": "mse"}, "retain_loss"),
    (SimNPOArgs, {"beta": -4.5}, "beta"),
    (SimNPOArgs, {"gamma": -0.1}, "gamma"),
    (SimNPOArgs, {"delta": float("nan")}, "delta"),
    (SimNPOArgs, {"retain_loss": "l2"}, "retain_loss"),
    (DPOArgs, {"beta": float("nan")}, "beta"),
    (DPOArgs, {"retain_loss": "KL"}, "retain_loss"),
    (UNDIALArgs, {"beta": -1.0}, "beta"),
])
def test_bad_args_raise(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_undial_has_no_retain_weight():
    with pytest.raises(ValueError, match="allowed: beta"):
        METHODS.get("undial").make_args({"alpha": 1.0})
