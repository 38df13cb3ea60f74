"""IdkNLL, WGA, SatImp and CE-U on inputs small enough to compute by hand.

The fake model has a 2-token vocabulary and the same logits at every position; with equal logits
every answer token has probability 1/2, with logits (ln 3, 0) the probabilities are (3/4, 1/4), so
token NLLs are ln 2, ln(4/3) and ln 4.
"""

import math

import pytest
import torch
from helpers import FixedLogits, qa_inputs, run_loss as run, sgd_step

from bench.core.errors import FieldError
from methods import METHODS

# Importing a method module registers it, so these imports also put the four methods in METHODS.
from methods.ce_u import CEUArgs, ce_u_loss, without_first_answer_tokens
from methods.idk_nll import IdkNLLArgs
from methods.satimp import SatImpArgs, satimp_weight
from methods.wga import WGAArgs, wga_weight

LN2, LN3 = math.log(2), math.log(3)
LN4_3, LN4 = math.log(4 / 3), math.log(4)






def probs(model):
    return torch.softmax(model.logits.detach(), 0)


# --- IdkNLL ------------------------------------------------------------------------------------

def test_idk_nll_by_hand_and_never_reads_forget():
    """p = (3/4, 1/4). Refusals [0] and [1, 1]: token NLLs ln(4/3), ln 4, ln 4, token-weighted mean
    (ln(4/3) + 2 ln 4) / 3. Retain [0]: ln(4/3), weighted alpha 0.5. The batch has no forget stream at all."""
    model = FixedLogits([LN3, 0.0])
    loss, parts = run("idk_nll", model, alternate=qa_inputs([[0], [1, 1]]), retain=qa_inputs([[0]]), alpha=0.5)
    refusal = (LN4_3 + 2 * LN4) / 3
    assert parts["refusal_nll"] == pytest.approx(refusal)
    assert parts["retain_loss"] == pytest.approx(LN4_3)
    assert loss.item() == pytest.approx(refusal + 0.5 * LN4_3)


def test_idk_nll_kl_retain_is_zero_when_equal_to_reference():
    """Model == reference: KL 0, leaving the refusal NLL ln 2 of equal logits."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, parts = run("idk_nll", model, ref, alternate=qa_inputs([[0, 1]]), retain=qa_inputs([[1]]), retain_loss="kl")
    assert parts["retain_loss"] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(LN2)


def test_idk_nll_step_raises_refusal_probability():
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("idk_nll", model, alternate=qa_inputs([[0, 0]]), retain=qa_inputs([[1]]), alpha=0.0)
    sgd_step(model, loss)
    assert probs(model)[0] > 0.5


# --- WGA ---------------------------------------------------------------------------------------

def test_wga_weights_each_token_by_its_probability_to_the_beta():
    """p = (3/4, 1/4), beta 2: token 0 weighs (3/4)^2 = 9/16 with NLL ln(4/3), token 1 (1/4)^2 = 1/16 with
    NLL ln 4. Answers [0] and [1, 1]: forget = -(9/16 ln(4/3) + 2/16 ln 4) / 3 (token-weighted)."""
    model = FixedLogits([LN3, 0.0])
    loss, parts = run("wga", model, forget=qa_inputs([[0], [1, 1]]), retain=qa_inputs([[0]]), beta=2.0, alpha=0.0)
    expected = -(9 / 16 * LN4_3 + 2 / 16 * LN4) / 3
    assert loss.item() == pytest.approx(expected)
    assert parts["forget_loss"] == pytest.approx(expected)
    assert parts["forget_nll"] == pytest.approx((LN4_3 + 2 * LN4) / 3)
    torch.testing.assert_close(wga_weight(torch.tensor([LN4_3, LN4]), 2.0), torch.tensor([9 / 16, 1 / 16]))


def test_wga_beta_zero_is_gradient_ascent():
    """beta 0: every weight 1, forget = -mean NLL = -(ln(4/3) + 2 ln 4) / 3."""
    model = FixedLogits([LN3, 0.0])
    loss, _ = run("wga", model, forget=qa_inputs([[0], [1, 1]]), retain=qa_inputs([[0]]), beta=0.0, alpha=0.0)
    assert loss.item() == pytest.approx(-(LN4_3 + 2 * LN4) / 3)


def test_wga_gamma_and_alpha_weigh_the_terms():
    """Equal logits, beta 1: forget = -(1/2) ln 2; gamma 2 -> -ln 2; retain NLL ln 2 x alpha 0.5 -> -0.5 ln 2."""
    model = FixedLogits([0.0, 0.0])
    loss, parts = run("wga", model, forget=qa_inputs([[1, 0]]), retain=qa_inputs([[1]]), gamma=2.0, alpha=0.5)
    assert parts["forget_loss"] == pytest.approx(-0.5 * LN2)
    assert parts["mean_weight"] == pytest.approx(0.5)
    assert loss.item() == pytest.approx(-0.5 * LN2)


def test_wga_weight_carries_no_gradient():
    """Equal logits, token 1, beta 1: forget = sg(p) log p_1 with sg(p) = 1/2. d log p_1 / dz = (-1/2, 1/2),
    so the gradient is (-1/4, 1/4). Were the weight differentiated (p log p), d/dz_1 would be
    (1 + ln p) p (1 - p) = (1 - ln 2)/4 instead."""
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("wga", model, forget=qa_inputs([[1]]), retain=qa_inputs([[0]]), alpha=0.0)
    loss.backward()
    torch.testing.assert_close(model.logits.grad, torch.tensor([-0.25, 0.25]))


def test_wga_kl_retain_is_zero_when_equal_to_reference():
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, parts = run("wga", model, ref, forget=qa_inputs([[1]]), retain=qa_inputs([[0, 1]]), retain_loss="kl")
    assert parts["retain_loss"] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(-0.5 * LN2)


def test_wga_step_lowers_forget_probability():
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("wga", model, forget=qa_inputs([[1, 1]]), retain=qa_inputs([[1]]), alpha=0.0)
    sgd_step(model, loss)
    assert probs(model)[1] < 0.5


# --- SatImp ------------------------------------------------------------------------------------

def test_satimp_weight_by_hand():
    """p = (3/4, 1/4), beta1 2, beta2 1: token 0 weighs (3/4)^2 (1/4) = 9/64, token 1 (1/4)^2 (3/4) = 3/64.
    Answers [0] and [1]: forget = -(9/64 ln(4/3) + 3/64 ln 4) / 2."""
    model = FixedLogits([LN3, 0.0])
    loss, parts = run("satimp", model, forget=qa_inputs([[0], [1]]), retain=qa_inputs([[0]]),
                      beta1=2.0, beta2=1.0, alpha=0.0)
    assert loss.item() == pytest.approx(-(9 / 64 * LN4_3 + 3 / 64 * LN4) / 2)
    assert parts["mean_weight"] == pytest.approx((9 / 64 + 3 / 64) / 2)
    torch.testing.assert_close(satimp_weight(torch.tensor([LN4_3, LN4]), 2.0, 1.0), torch.tensor([9 / 64, 3 / 64]))


def test_satimp_defaults():
    """Equal logits, beta1 5, beta2 0.1: weight (1/2)^5 (1/2)^0.1 = 2^-5.1, forget = -2^-5.1 ln 2; gamma 1;
    retain NLL ln 2 x alpha 0.1."""
    model = FixedLogits([0.0, 0.0])
    loss, parts = run("satimp", model, forget=qa_inputs([[1, 0]]), retain=qa_inputs([[0]]))
    assert parts["forget_loss"] == pytest.approx(-(2 ** -5.1) * LN2)
    assert loss.item() == pytest.approx(-(2 ** -5.1) * LN2 + 0.1 * LN2)


def test_satimp_without_importance_is_wga():
    """beta2 0 leaves the saturation weight p^beta1, which is WGA's with beta = beta1."""
    model = FixedLogits([0.4, -0.3])
    batch = {"forget": qa_inputs([[0, 1], [1]]), "retain": qa_inputs([[0]])}
    sat, _ = run("satimp", model, **batch, beta1=3.0, beta2=0.0, alpha=0.5)
    wga, _ = run("wga", model, **batch, beta=3.0, alpha=0.5)
    assert sat.item() == pytest.approx(wga.item())


def test_satimp_step_lowers_forget_probability():
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("satimp", model, forget=qa_inputs([[1, 1]]), retain=qa_inputs([[1]]), alpha=0.0)
    sgd_step(model, loss)
    assert probs(model)[1] < 0.5


# --- CE-U --------------------------------------------------------------------------------------

def test_ce_u_by_hand_skips_first_answer_token():
    """With 2 tokens, masking the true token leaves the target one-hot on the other one: CE = -ln(1 - p(y)).
    p = (3/4, 1/4): true 0 -> ln 4, true 1 -> ln(4/3). Answers [0, 1] and [1, 1, 0] without their first
    tokens leave 1; 1, 0: (2 ln(4/3) + ln 4) / 3. forget_nll counts all 5 tokens: (2 ln(4/3) + 3 ln 4) / 5."""
    model = FixedLogits([LN3, 0.0])
    loss, parts = run("ce_u", model, forget=qa_inputs([[0, 1], [1, 1, 0]], prompt_len=2))
    assert loss.item() == pytest.approx((2 * LN4_3 + LN4) / 3)
    assert parts["forget_nll"] == pytest.approx((2 * LN4_3 + 3 * LN4) / 5)
    every, _ = run("ce_u", model, forget=qa_inputs([[0, 1], [1, 1, 0]]), ignore_first=0)
    assert every.item() == pytest.approx((2 * LN4 + 3 * LN4_3) / 5)


def test_without_first_answer_tokens():
    mask = torch.tensor([[False, True, True, True], [False, False, True, False]])
    kept = without_first_answer_tokens(mask, 1)
    assert kept.tolist() == [[False, False, True, True], [False, False, False, False]]
    assert without_first_answer_tokens(mask, 0).tolist() == mask.tolist()


def test_ce_u_gradient_is_p_minus_target():
    """3 tokens, equal logits, true token 0: p = (1/3, 1/3, 1/3), target q = (0, 1/2, 1/2); CE = ln 3, and the
    gradient on the logits is p - q = (1/3, -1/6, -1/6): the true token pushed down with force p(y)."""
    logits = torch.zeros(1, 3, requires_grad=True)
    loss = ce_u_loss(logits, torch.tensor([0]))
    loss.backward()
    assert loss.item() == pytest.approx(LN3)
    torch.testing.assert_close(logits.grad, torch.tensor([[1 / 3, -1 / 6, -1 / 6]]))


def test_ce_u_with_equal_logits_is_ln2():
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("ce_u", model, forget=qa_inputs([[0, 1, 1]]))
    assert loss.item() == pytest.approx(LN2)


def test_ce_u_step_lowers_forget_probability():
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("ce_u", model, forget=qa_inputs([[1, 1, 1]]))
    sgd_step(model, loss)
    assert probs(model)[1] < 0.5


# --- Registration, needs and arguments ---------------------------------------------------------

def test_needs_are_declared():
    idk, wga, satimp, ce_u = (METHODS.get(n) for n in ("idk_nll", "wga", "satimp", "ce_u"))
    assert idk.needs(IdkNLLArgs()) == {"alternate", "retain"}
    assert idk.needs(IdkNLLArgs(retain_loss="kl")) == {"alternate", "retain", "reference"}
    assert wga.needs(WGAArgs()) == {"forget", "retain"}
    assert wga.needs(WGAArgs(retain_loss="kl")) == {"forget", "retain", "reference"}
    assert satimp.needs(SatImpArgs()) == {"forget", "retain"}
    assert satimp.needs(SatImpArgs(retain_loss="kl")) == {"forget", "retain", "reference"}
    assert ce_u.needs(CEUArgs()) == {"forget"}
    assert all(spec.version == 1 for spec in (idk, wga, satimp, ce_u))


def test_defaults():
    assert METHODS.get("idk_nll").hyperparameters() == {"alpha": 1.0, "retain_loss": "nll"}
    assert METHODS.get("wga").hyperparameters() == {"beta": 1.0, "gamma": 1.0, "alpha": 1.0, "retain_loss": "nll"}
    assert METHODS.get("satimp").hyperparameters() == {"beta1": 5.0, "beta2": 0.1, "gamma": 1.0, "alpha": 0.1,
                                                       "retain_loss": "nll"}
    assert METHODS.get("ce_u").hyperparameters() == {"ignore_first": 1}


@pytest.mark.parametrize("cls, kwargs, field", [
    (IdkNLLArgs, {"alpha": -1.0}, "alpha"),
    (IdkNLLArgs, {"retain_loss": "mse"}, "retain_loss"),
    (WGAArgs, {"beta": -1.0}, "beta"),
    (WGAArgs, {"beta": float("nan")}, "beta"),
    (WGAArgs, {"gamma": -0.5}, "gamma"),
    (WGAArgs, {"alpha": float("nan")}, "alpha"),
    (WGAArgs, {"retain_loss": "KL"}, "retain_loss"),
    (SatImpArgs, {"beta1": -5.0}, "beta1"),
    (SatImpArgs, {"beta2": -0.1}, "beta2"),
    (SatImpArgs, {"gamma": float("nan")}, "gamma"),
    (SatImpArgs, {"alpha": -0.1}, "alpha"),
    (SatImpArgs, {"retain_loss": "l2"}, "retain_loss"),
    (CEUArgs, {"ignore_first": -1}, "ignore_first"),
    (CEUArgs, {"ignore_first": 1.5}, "ignore_first"),
    (CEUArgs, {"ignore_first": True}, "ignore_first"),
])
def test_bad_args_raise(cls, kwargs, field):
    with pytest.raises(FieldError, match=field) as caught:
        cls(**kwargs)
    assert caught.value.key == field


def test_ce_u_has_no_retain_weight():
    with pytest.raises(FieldError, match="allowed: ignore_first"):
        METHODS.get("ce_u").make_args({"alpha": 1.0})
