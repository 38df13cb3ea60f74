"""RMU on hand-computable activations, and on a real tiny model: what it trains and which way it moves."""

import pytest
import torch

from bench.models.zoo import build_model, train_tokenizer
from helpers import qa_inputs
from methods import METHODS, MethodContext
from methods.rmu import (
    RMUArgs,
    activation_mse,
    layer_activations,
    mlp_output_projection,
    random_direction,
    rmu_parameters,
)


def test_activation_mse_by_hand():
    """Tokens h = (1, 1) and (3, 3) against target (1, 1), d = 2: 0 and (4 + 4)/2 = 4 -> mean 2.
    A masked-out third token (100, 100) adds nothing."""
    h = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    assert activation_mse(h, torch.tensor([1.0, 1.0]), mask).item() == pytest.approx(2.0)


def test_random_direction_is_a_seeded_unit_vector_in_the_positive_orthant():
    u = random_direction(16, seed=3)
    assert u.norm().item() == pytest.approx(1.0) and (u >= 0).all()
    assert torch.equal(u, random_direction(16, seed=3)) and not torch.equal(u, random_direction(16, seed=4))


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["Question: Who wrote it?\nAnswer: Ana Lind wrote it in Velmora."] * 10, 300)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_trains_only_mlp_output_projections_of_layers_up_to_l(tok, name):
    model = build_model(name, tok, seed=0)
    params = rmu_parameters(model, RMUArgs(layer=1))  # layers max(0, 1-2)=0 and 1
    blocks = [mlp_output_projection(b) for b in (model.model.layers if name == "tiny-llama" else model.transformer.h)]
    expected = [p for b in blocks[:2] for p in b.parameters()]
    assert [id(p) for p in params] == [id(p) for p in expected]
    with pytest.raises(ValueError, match=r"layer: .*allowed: an integer in \[0, 1\]"):
        rmu_parameters(model, RMUArgs(layer=2))


def _run_steps(model, reference, args, batch, steps, lr=0.05):
    spec = METHODS.get("rmu")
    ctx = MethodContext(args=args, reference=reference, seed=0)
    params = spec.trainable_parameters(model, args)
    opt = torch.optim.SGD(params, lr=lr)
    losses = []
    for step in range(steps):
        ctx.step = step
        loss, parts = spec.fn(model, batch, ctx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["forget_mse"])
    return ctx, losses


def test_steps_move_forget_activations_toward_the_target_and_nothing_else(tok):
    torch.manual_seed(0)
    model = build_model("tiny-llama", tok, seed=0)
    reference = build_model("tiny-llama", tok, seed=0).eval().requires_grad_(False)
    batch = {"forget": qa_inputs([[5, 6, 7], [8, 9]]), "retain": qa_inputs([[10, 11]])}
    args = RMUArgs(layer=1, steering_coeff=4.0)
    untouched = {n: p.detach().clone() for n, p in model.named_parameters() if "down_proj" not in n}
    ctx, losses = _run_steps(model, reference, args, batch, steps=5)
    assert losses[-1] < losses[0]  # the forget activations approach c·u
    assert torch.allclose(ctx.state["target"].norm(), torch.tensor(4.0))
    for n, p in model.named_parameters():
        if n in untouched:
            assert torch.equal(p, untouched[n]), n


def test_adaptive_coefficient_is_scale_times_initial_activation_norm(tok):
    model = build_model("tiny-gpt2", tok, seed=0)
    reference = build_model("tiny-gpt2", tok, seed=0).eval().requires_grad_(False)
    batch = {"forget": qa_inputs([[5, 6, 7]]), "retain": qa_inputs([[10, 11]])}
    with torch.no_grad():
        h, mask = layer_activations(model, batch["forget"], 1)
    expected = 3.0 * h.norm(dim=-1)[mask].mean().item()
    ctx, _ = _run_steps(model, reference, RMUArgs(layer=1, adaptive=True, adaptive_scale=3.0), batch, steps=2)
    assert ctx.state["c"] == pytest.approx(expected, rel=1e-5)  # fixed after the first batch


def test_retain_term_is_zero_when_model_equals_reference(tok):
    model = build_model("tiny-llama", tok, seed=0)
    reference = build_model("tiny-llama", tok, seed=0).eval().requires_grad_(False)
    batch = {"forget": qa_inputs([[5, 6]]), "retain": qa_inputs([[10, 11, 12]])}
    _, parts = METHODS.get("rmu").fn(model, batch, MethodContext(args=RMUArgs(), reference=reference, seed=1))
    assert parts["retain_mse"] == pytest.approx(0.0, abs=1e-10)
    assert METHODS.get("rmu").needs(RMUArgs()) == {"forget", "retain", "reference", "hidden_states"}
