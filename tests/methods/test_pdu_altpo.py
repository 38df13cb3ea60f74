"""PDU and AltPO on inputs small enough to compute by hand.

The fake model has the same logits at every position. With a 2-token vocabulary and logits (ln 3, 0)
the probabilities are (3/4, 1/4) and the logit margin max - mean is ln 3 - (ln 3)/2 = (ln 3)/2; with
equal logits every token has probability 1/2 and the margin is 0.
"""

import math

import pytest
import torch
from helpers import FixedLogits, qa_inputs, run_loss as run, sgd_step

from bench.core.errors import FieldError
from methods import METHODS, MethodContext

# Importing the modules registers the two methods.
from methods.altpo import AltPOArgs
from methods.pdu import PDUArgs, logit_margin_loss

LN2, LN3 = math.log(2), math.log(3)
MARGIN_LOSS = LN3 ** 2 / 4  # ((ln 3)/2)², the forget loss of logits (ln 3, 0) at any position





def pdu_context(**args) -> MethodContext:
    """One trial's context, kept across calls so that the dual variable lives on."""
    return MethodContext(args=METHODS.get("pdu").make_args(args))


def pdu_call(ctx, model, step, retain_answers, forget_answers=((1,),)):
    ctx.step = step
    batch = {"forget": qa_inputs([list(a) for a in forget_answers]), "retain": qa_inputs(retain_answers)}
    return METHODS.get("pdu").fn(model, batch, ctx)




# --- PDU ---------------------------------------------------------------------------------------

def test_logit_margin_loss_by_hand():
    """Logits (0, 0, 3): max 3, mean 1, margin 2, squared 4. Logits (1, 1, 1): margin 0. The mean over
    the masked positions: 4 with only the first, (4 + 0)/2 = 2 with both."""
    logits = torch.tensor([[[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])  # (1, 2, 3)
    assert logit_margin_loss(logits, torch.tensor([[1, 0]])).item() == pytest.approx(4.0)
    assert logit_margin_loss(logits, torch.tensor([[1, 1]])).item() == pytest.approx(2.0)


def test_pdu_loss_by_hand():
    """p = (3/4, 1/4): forget loss (ln 3)²/4 per answer token. Retain answer [1]: NLL ln 4. epsilon ln 2 ->
    constraint ln 4 - ln 2 = ln 2. gamma 2, dual 2: loss = 2 (ln 3)²/4 + 2 ln 2."""
    model = FixedLogits([LN3, 0.0])
    loss, parts = run("pdu", model, forget=qa_inputs([[0, 1], [1]]), retain=qa_inputs([[1]]),
                      gamma=2.0, dual_init=2.0, epsilon=LN2)
    assert loss.item() == pytest.approx(2 * MARGIN_LOSS + 2 * LN2)
    assert parts["forget_loss"] == pytest.approx(MARGIN_LOSS)
    assert parts["retain_loss"] == pytest.approx(2 * LN2)
    assert parts["constraint"] == pytest.approx(LN2)
    assert parts["dual"] == 2.0
    assert parts["epsilon"] == pytest.approx(LN2)


def test_pdu_epsilon_from_first_retain_batch():
    """Equal logits: retain NLL ln 2, so epsilon = (1 + 0.5) ln 2 and the constraint is -0.5 ln 2; the
    forget loss is 0, loss = 1 x (-0.5 ln 2). At the next step the model gives p = (3/4, 1/4) and retain
    answer [1] has NLL ln 4: epsilon stays 1.5 ln 2, constraint 2 ln 2 - 1.5 ln 2 = 0.5 ln 2."""
    model = FixedLogits([0.0, 0.0])
    ctx = pdu_context(dual_init=1.0, dual_step_size=0.0, epsilon=None, tolerance=0.5)
    loss, parts = pdu_call(ctx, model, 0, [[0, 1]])
    assert parts["epsilon"] == pytest.approx(1.5 * LN2)
    assert loss.item() == pytest.approx(-0.5 * LN2)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([LN3, 0.0]))
    _, parts = pdu_call(ctx, model, 1, [[1]])
    assert parts["epsilon"] == pytest.approx(1.5 * LN2)
    assert parts["constraint"] == pytest.approx(0.5 * LN2)


def test_pdu_dual_update_over_two_steps():
    """dual_init 1, step size 2, epsilon ln 2, p = (3/4, 1/4).
    Step 0 uses λ = 1; retain [1]: NLL ln 4, constraint ln 2; loss (ln 3)²/4 + 1 x ln 2.
    Step 1 uses λ = 1 + 2 ln 2; retain [0]: NLL ln(4/3), constraint ln(4/3) - ln 2 = ln(2/3);
    loss (ln 3)²/4 + (1 + 2 ln 2) ln(2/3).
    Step 2 uses λ = 1 + 2 ln 2 + 2 ln(2/3) = 1 + 2 ln(4/3)."""
    model = FixedLogits([LN3, 0.0])
    ctx = pdu_context(dual_init=1.0, dual_step_size=2.0, epsilon=LN2)
    loss, parts = pdu_call(ctx, model, 0, [[1]])
    assert parts["dual"] == pytest.approx(1.0)
    assert loss.item() == pytest.approx(MARGIN_LOSS + LN2)
    loss, parts = pdu_call(ctx, model, 1, [[0]])
    assert parts["dual"] == pytest.approx(1 + 2 * LN2)
    assert parts["constraint"] == pytest.approx(math.log(2 / 3))
    assert loss.item() == pytest.approx(MARGIN_LOSS + (1 + 2 * LN2) * math.log(2 / 3))
    _, parts = pdu_call(ctx, model, 2, [[0]])
    assert parts["dual"] == pytest.approx(1 + 2 * math.log(4 / 3))


def test_pdu_dual_is_clamped_at_zero():
    """Equal logits: retain NLL ln 2, epsilon ln 4, constraint -ln 2. λ = max(0, 0.5 - 1 x ln 2) = 0."""
    model = FixedLogits([0.0, 0.0])
    ctx = pdu_context(dual_init=0.5, dual_step_size=1.0, epsilon=2 * LN2)
    pdu_call(ctx, model, 0, [[1]])
    _, parts = pdu_call(ctx, model, 1, [[1]])
    assert parts["dual"] == 0.0


def test_pdu_dual_moves_once_per_step_under_accumulation():
    """Two micro-batches at step 0 (retain [1]: constraint ln 2; retain [0]: ln(2/3)) both use λ = 1;
    step 1 moves λ by 2 x their mean, (ln 2 + ln(2/3))/2 = ln(4/3)/2: λ = 1 + ln(4/3), for both of its
    micro-batches."""
    model = FixedLogits([LN3, 0.0])
    ctx = pdu_context(dual_init=1.0, dual_step_size=2.0, epsilon=LN2)
    duals = [pdu_call(ctx, model, step, answers)[1]["dual"]
             for step, answers in [(0, [[1]]), (0, [[0]]), (1, [[1]]), (1, [[0]])]]
    assert duals == pytest.approx([1.0, 1.0, 1 + math.log(4 / 3), 1 + math.log(4 / 3)])


def test_pdu_dual_warmup_holds_the_initial_value():
    """Constraint ln 2 at every step (p = (3/4, 1/4), retain [1], epsilon ln 2). With one warm-up step,
    step 0's value is not used: λ is 1 at steps 0 and 1, then 1 + 2 ln 2 at step 2."""
    model = FixedLogits([LN3, 0.0])
    ctx = pdu_context(dual_init=1.0, dual_step_size=2.0, epsilon=LN2, dual_warmup_steps=1)
    duals = [pdu_call(ctx, model, step, [[1]])[1]["dual"] for step in range(3)]
    assert duals == pytest.approx([1.0, 1.0, 1 + 2 * LN2])


def test_pdu_step_lowers_forget_probability():
    """Logits (0, 1): the forget answer token 1 has p > 1/2 and margin 1/2. With the retain term off
    (λ = 0, fixed) one step moves the logits toward equal, so p(1) falls."""
    model = FixedLogits([0.0, 1.0])
    p_before = torch.softmax(model.logits.detach(), 0)[1].item()
    loss, _ = run("pdu", model, forget=qa_inputs([[1, 1]]), retain=qa_inputs([[1]]), dual_init=0.0, dual_step_size=0.0)
    sgd_step(model, loss)
    assert torch.softmax(model.logits.detach(), 0)[1].item() < p_before


# --- AltPO -------------------------------------------------------------------------------------

def test_altpo_equal_to_reference_is_two_over_beta_ln2():
    """Both log-ratios 0: margin 0, forget = (2/beta) ln 2 = 8 ln 2 at beta 0.25."""
    model, ref = FixedLogits([0.3, -0.2]), FixedLogits([0.3, -0.2])
    loss, parts = run("altpo", model, ref, forget=qa_inputs([[1, 1]]), plausible=qa_inputs([[0]]),
                      retain=qa_inputs([[0]]), beta=0.25, alpha=0.0)
    assert loss.item() == pytest.approx(8 * LN2)
    assert parts["margin"] == pytest.approx(0.0, abs=1e-7)


def test_altpo_by_hand():
    """p_theta = (1/2, 1/2), p_ref = (3/4, 1/4); plausible answer [0, 0], true answer [1].
    Log-ratios: plausible 2 (ln(1/2) - ln(3/4)) = 2 ln(2/3); true ln(1/2) - ln(1/4) = ln 2.
    Margin 2 ln(2/3) - ln 2 = ln(2/9); sigmoid(ln(2/9)) = (2/9)/(1 + 2/9) = 2/11.
    beta 1: -2 ln(2/11) = 2 ln(11/2); plus alpha 0.5 x retain NLL ln 2.
    A refusal in the `alternate` stream is not read: the loss is the same with one."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([LN3, 0.0])
    streams = dict(forget=qa_inputs([[1]]), plausible=qa_inputs([[0, 0]]), retain=qa_inputs([[0]]))
    loss, parts = run("altpo", model, ref, **streams, beta=1.0, alpha=0.5)
    assert loss.item() == pytest.approx(2 * math.log(5.5) + 0.5 * LN2)
    assert parts["forget_loss"] == pytest.approx(2 * math.log(5.5))
    assert parts["margin"] == pytest.approx(math.log(2 / 9))
    assert parts["plausible_nll"] == pytest.approx(LN2)
    assert parts["forget_nll"] == pytest.approx(LN2)
    with_refusal, _ = run("altpo", model, ref, **streams, alternate=qa_inputs([[1, 1, 1]]), beta=1.0, alpha=0.5)
    assert with_refusal.item() == pytest.approx(loss.item())


def test_altpo_kl_retain_is_zero_when_equal_to_reference():
    """KL(p_ref || p_theta) = 0 and margin 0: (2/beta) ln 2 = 20 ln 2 at the default beta 0.1."""
    model, ref = FixedLogits([0.4, 0.1]), FixedLogits([0.4, 0.1])
    loss, parts = run("altpo", model, ref, forget=qa_inputs([[1]]), plausible=qa_inputs([[0]]),
                      retain=qa_inputs([[0, 1]]), retain_loss="kl")
    assert parts["retain_loss"] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(20 * LN2)


def test_altpo_refuses_misaligned_streams():
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    with pytest.raises(ValueError, match="plausible"):
        run("altpo", model, ref, forget=qa_inputs([[1], [1]]), plausible=qa_inputs([[0]]), retain=qa_inputs([[0]]))


def test_altpo_step_lowers_true_answer_relative_to_plausible():
    """log p(true) - log p(plausible) = 2 (log p_1 - log p_0) must fall after one step (retain term off)."""
    model, ref = FixedLogits([0.0, 0.0]), FixedLogits([0.0, 0.0])
    loss, _ = run("altpo", model, ref, forget=qa_inputs([[1, 1]]), plausible=qa_inputs([[0, 0]]),
                  retain=qa_inputs([[1]]), alpha=0.0)
    sgd_step(model, loss, lr=0.05)
    lp = torch.log_softmax(model.logits.detach(), 0)
    assert 2 * (lp[1] - lp[0]) < 0.0


# --- Registration, needs and arguments ---------------------------------------------------------

def test_needs_versions_and_defaults():
    pdu, altpo = METHODS.get("pdu"), METHODS.get("altpo")
    assert pdu.needs(PDUArgs()) == {"forget", "retain"}
    assert altpo.needs(AltPOArgs()) == {"forget", "plausible", "retain", "reference"}
    assert pdu.version == altpo.version == 1
    assert pdu.hyperparameters() == {"gamma": 1.0, "dual_init": 100.0, "dual_step_size": 5.0, "epsilon": 0.3,
                                     "tolerance": 0.5, "dual_warmup_steps": 0}
    assert altpo.hyperparameters() == {"beta": 0.1, "alpha": 1.0, "retain_loss": "nll"}


@pytest.mark.parametrize("cls, kwargs, field", [
    (PDUArgs, {"gamma": -1.0}, "gamma"),
    (PDUArgs, {"dual_init": -0.5}, "dual_init"),
    (PDUArgs, {"dual_step_size": float("nan")}, "dual_step_size"),
    (PDUArgs, {"epsilon": 0.0}, "epsilon"),
    (PDUArgs, {"epsilon": float("nan")}, "epsilon"),
    (PDUArgs, {"tolerance": -0.1}, "tolerance"),
    (PDUArgs, {"dual_warmup_steps": -1}, "dual_warmup_steps"),
    (PDUArgs, {"dual_warmup_steps": 1.5}, "dual_warmup_steps"),
    (AltPOArgs, {"beta": 0.0}, "beta"),
    (AltPOArgs, {"alpha": -1.0}, "alpha"),
    (AltPOArgs, {"retain_loss": "mse"}, "retain_loss"),
])
def test_bad_args_raise(cls, kwargs, field):
    with pytest.raises(FieldError, match=field) as err:
        cls(**kwargs)
    assert err.value.key == field


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(ValueError, match="dual_init"):
        METHODS.get("pdu").make_args({"alpha": 1.0})
