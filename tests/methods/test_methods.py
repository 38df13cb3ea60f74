"""Every method's loss on inputs small enough to compute by hand.

The fake model has a 2-token vocabulary with equal logits, so every answer token has probability
1/2 and NLL ln 2, whatever the token.
"""

import math
import re

import pytest
import torch

from helpers import FixedLogits, qa_inputs
from methods import METHODS, MethodContext
from methods.ga_gd import GAGDArgs, signed_factor_loss
from methods.grad_diff import GradDiffArgs
from methods.losses import kl_ref_to_model, mean_nll, retain_kl, sequence_logp

LN2 = math.log(2)


def run(name, batch, reference=None, **args):
    spec = METHODS.get(name)
    return spec.fn(batch["model"], batch, MethodContext(args=spec.make_args(args), reference=reference))


def test_mean_nll_is_token_weighted():
    """p(0) = 3/4, p(1) = 1/4 at every position. One example of 1 token (NLL ln 4) and one of 3 tokens
    (NLL ln 4/3 each): the token-weighted mean is (ln 4 + 3 ln 4/3) / 4; the mean of the two examples'
    means, (ln 4 + ln 4/3) / 2, would be another number."""
    model = FixedLogits([math.log(3.0), 0.0])
    token_weighted = (math.log(4) + 3 * math.log(4 / 3)) / 4
    per_example = (math.log(4) + math.log(4 / 3)) / 2
    assert abs(token_weighted - per_example) > 0.1
    assert mean_nll(model, qa_inputs([[1], [0, 0, 0]])).item() == pytest.approx(token_weighted)


def test_sequence_logp_sums_tokens():
    """log p(a|q) of a 3-token answer with p = 1/2 per token = -3 ln 2."""
    model = FixedLogits([0.0, 0.0])
    torch.testing.assert_close(sequence_logp(model, qa_inputs([[1, 0, 1], [1]])), torch.tensor([-3 * LN2, -LN2]))


def test_grad_ascent_is_negative_forget_nll():
    model = FixedLogits([0.0, 0.0])
    loss, parts = run("grad_ascent", {"model": model, "forget": qa_inputs([[0, 1]])})
    assert loss.item() == pytest.approx(-LN2)
    assert parts["forget_nll"] == pytest.approx(LN2)


def test_grad_diff_nll_weights():
    """-gamma ln2 + alpha ln2 with gamma=2, alpha=0.5 -> -1.5 ln 2."""
    model = FixedLogits([0.0, 0.0])
    batch = {"model": model, "forget": qa_inputs([[0, 1]]), "retain": qa_inputs([[1]])}
    loss, _ = run("grad_diff", batch, gamma=2.0, alpha=0.5)
    assert loss.item() == pytest.approx(-1.5 * LN2)


def test_kl_hand_computed():
    """p_ref = (1/2, 1/2), p = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)."""
    logits = torch.tensor([[[math.log(3), 0.0]]])
    ref = torch.zeros(1, 1, 2)
    assert kl_ref_to_model(logits, ref, torch.ones(1, 1)).item() == pytest.approx(0.5 * math.log(4 / 3))


def test_grad_diff_kl_uses_reference_and_is_zero_when_equal():
    """With the model equal to its reference the KL retain term is 0, leaving -gamma ln 2."""
    model, reference = FixedLogits([0.3, -0.2]), FixedLogits([0.3, -0.2])
    batch = {"model": model, "forget": qa_inputs([[0]]), "retain": qa_inputs([[1, 1]])}
    loss, parts = run("grad_diff", batch, reference=reference, retain_loss="kl")
    p0 = torch.softmax(torch.tensor([0.3, -0.2]), 0)[0].item()
    assert parts["retain_loss"] == pytest.approx(0.0, abs=1e-7)
    assert loss.item() == pytest.approx(math.log(p0))
    assert retain_kl(FixedLogits([math.log(3), 0.0]), FixedLogits([0.0, 0.0]), qa_inputs([[1]])).item() == pytest.approx(
        0.5 * math.log(4 / 3))


def test_signed_factor_loss_by_hand():
    """Forget NLLs 1, 2 (factor -0.1); retain NLL 3 (factor 5, repeated 5x):
    (-0.1*3 + 5*5*3) / (2 + 5*1) = 74.7 / 7."""
    loss = signed_factor_loss(
        [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]])],
        [torch.tensor([[1, 1]]), torch.tensor([[1, 0]])],
        [-0.1, 5.0], [1, 5],
    )
    assert loss.item() == pytest.approx(74.7 / 7)


def test_ga_gd_equals_repeating_retain_examples():
    """Weighting retain tokens by `retain_repeat` equals literally repeating the retain examples."""
    model = FixedLogits([0.5, -0.5])
    forget, retain = qa_inputs([[0, 1, 1]]), qa_inputs([[1], [0, 0]])
    loss, _ = run("ga_gd", {"model": model, "forget": forget, "retain": retain}, retain_repeat=3)
    repeated = qa_inputs([[1], [0, 0]] * 3)
    lp = torch.log_softmax(torch.tensor([0.5, -0.5]), 0)
    f_sum = -(lp[0] + 2 * lp[1])
    r_sum = -(lp[1] + 2 * lp[0]) * 3
    expected = (-0.1 * f_sum + 5.0 * r_sum) / (3 + 9)
    assert loss.item() == pytest.approx(expected.item())
    loss_rep, _ = run("ga_gd", {"model": model, "forget": forget, "retain": repeated}, retain_repeat=1)
    assert loss.item() == pytest.approx(loss_rep.item())


def test_needs_are_declared():
    assert METHODS.get("grad_ascent").needs(METHODS.get("grad_ascent").make_args({})) == {"forget"}
    gd = METHODS.get("grad_diff")
    assert "reference" not in gd.needs(GradDiffArgs())
    assert gd.needs(GradDiffArgs(retain_loss="kl")) == {"forget", "retain", "reference"}
    assert METHODS.get("ga_gd").needs(GAGDArgs()) == {"forget", "retain"}


def test_unknown_hyperparameter_and_method():
    with pytest.raises(ValueError, match="allowed: gamma, alpha, retain_loss"):
        METHODS.get("grad_diff").make_args({"beta": 1.0})
    with pytest.raises(KeyError, match="allowed: .*grad_ascent"):
        METHODS.get("grad_assent")
    with pytest.raises(ValueError, match="nll"):
        GradDiffArgs(retain_loss="mse")


def test_gradient_ascent_lowers_forget_probability():
    """One step of ascent on token 1 must lower its probability (the loss moves the right way)."""
    model = FixedLogits([0.0, 0.0])
    loss, _ = run("grad_ascent", {"model": model, "forget": qa_inputs([[1, 1]])})
    loss.backward()
    with torch.no_grad():
        model.logits -= 0.1 * model.logits.grad
    assert torch.softmax(model.logits, 0)[1] < 0.5


@pytest.mark.parametrize("name, args", [("grad_diff", {"alpha": 0.0}), ("ga_gd", {"retain_factor": 0.0})])
def test_forget_term_step_lowers_forget_probability(name, args):
    """With the retain term switched off, one step must lower the forget answer token's probability."""
    model = FixedLogits([0.0, 0.0])
    loss, _ = run(name, {"model": model, "forget": qa_inputs([[1, 1]]), "retain": qa_inputs([[1]])}, **args)
    loss.backward()
    with torch.no_grad():
        model.logits -= 0.1 * model.logits.grad
    assert torch.softmax(model.logits, 0)[1] < 0.5


def test_joint_forward_equals_separate_passes():
    """Stacking forget and retain batches of different widths into one pass changes no token's NLL."""
    from methods.losses import joint_token_nll, token_nll

    from bench.models.zoo import build_model, train_tokenizer

    tok = train_tokenizer(["Question: Who?\nAnswer: Ana Lind wrote it, then Bo."] * 10, 300)
    model = build_model("tiny-llama", tok, seed=0)
    short, long = qa_inputs([[5, 6], [7]]), qa_inputs([[8, 9, 10, 11, 12]])
    (n1, m1), (n2, m2) = joint_token_nll(model, short, long)
    for (joint, mask), (nll, single_mask) in zip([(n1, m1), (n2, m2)], [token_nll(model, short), token_nll(model, long)]):
        width = nll.shape[1]  # the joint pass pads the narrower batch; the padding adds nothing
        torch.testing.assert_close(joint[:, :width], nll, atol=1e-5, rtol=1e-5)
        assert torch.equal(mask[:, :width], single_mask) and not mask[:, width:].any() and (joint[:, width:] == 0).all()


def test_an_unknown_hyperparameter_is_a_field_error_keyed_by_its_name():
    from bench.core.errors import FieldError

    with pytest.raises(FieldError) as err:
        METHODS.get("npo").make_args({"bta": 0.5})
    assert err.value.key == "bta" and err.value.allowed == "beta, alpha, retain_loss"
    assert err.value.detail.startswith("method 'npo' has no hyperparameter 'bta'") and "Did you mean beta?" in str(err.value)


def test_every_built_in_method_cites_its_paper():
    """Fourteen methods, each with the paper it comes from (authors, year and a quoted title)."""
    names = METHODS.names()
    assert len(names) == 14 and {"idk_nll", "wga", "satimp", "ce_u", "pdu", "altpo"} <= set(names)
    for spec in METHODS:
        assert re.search(r"\b(19|20)\d\d\b.*\"", spec.paper), spec.name
