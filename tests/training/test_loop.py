"""The training loop, its schedule, and the seeded batch streams."""

import math

import pytest
import torch
from helpers import FixedLogits, qa_inputs
from torch.optim.optimizer import register_optimizer_step_pre_hook
from transformers import AutoModelForCausalLM, LlamaConfig

from bench.training.batches import aligned_stream, batch_stream, merge_streams
from bench.core.encoding import IGNORE_INDEX, Encoded, collate, encode, encode_many
from bench.models.zoo import PRECISIONS, build_model, enable_gradient_checkpointing, load_model, torch_dtype, train_tokenizer
from bench.training.loop import DivergenceGuard, OptimConfig, lr_factor, make_accelerator, train
from methods.losses import mean_nll


def test_lr_factor_warmup_then_cosine():
    """Warm-up 2 of 6 steps: 1/2, 1; then cosine over 4 steps: cos(0)=1 ... (1+cos(3pi/4))/2."""
    cfg = OptimConfig(steps=6, lr=1.0, schedule="cosine", warmup_steps=2)
    got = [lr_factor(s, cfg) for s in range(6)]
    expected = [0.5, 1.0, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]
    assert got == pytest.approx(expected)
    assert lr_factor(5, OptimConfig(steps=6, lr=1.0)) == 1.0  # constant
    with pytest.raises(ValueError, match="schedule"):
        OptimConfig(steps=1, lr=1.0, schedule="linear")


def _examples(n, length=3, start=0):
    return [Encoded([start + i] * length, 1) for i in range(n)]


def test_batch_stream_is_seeded_and_covers_every_example_each_epoch():
    examples = _examples(10)
    first = [b["input_ids"][:, 0].tolist() for b, _ in zip(batch_stream([examples], 4, 0, seed=3), range(3))]
    again = [b["input_ids"][:, 0].tolist() for b, _ in zip(batch_stream([examples], 4, 0, seed=3), range(3))]
    other = [b["input_ids"][:, 0].tolist() for b, _ in zip(batch_stream([examples], 4, 0, seed=4), range(3))]
    assert first == again and first != other
    assert sorted(sum(first, [])) == list(range(10))  # batches of 4, 4, 2 make one epoch


def test_batch_stream_weights_choose_groups_and_never_mix():
    qa, text = _examples(20, 3, 0), _examples(20, 9, 100)
    counts = {3: 0, 9: 0}
    for batch, _ in zip(batch_stream([qa, text], 4, 0, seed=0, weights=[0.9, 0.1]), range(400)):
        counts[batch["input_ids"].shape[1]] += 1  # a mixed batch would have padded width 9 with short rows
        assert not ((batch["input_ids"] < 100).any() and (batch["input_ids"] >= 100).any())
    assert 300 < counts[3] < 390 and counts[9] == 400 - counts[3]


def test_encode_many_of_nothing_is_empty():
    tok = train_tokenizer(["a b c"] * 5, 270)
    assert encode_many(tok, [], 16) == []


def test_collate_labels_only_answer_tokens():
    batch = collate([Encoded([5, 6, 7, 8], 2), Encoded([5, 9], 1)], pad_id=0)
    assert batch["labels"].tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7, 8], [IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]


def test_train_lowers_loss_and_is_reproducible():
    texts = ["Question: Where was Ana born?\nAnswer: Ana was born in Velmora."] * 10
    tok = train_tokenizer(texts, 300)
    enc = [encode(tok, "Where was Ana born?", "Ana was born in Velmora.", 64)]

    def run():
        torch.manual_seed(0)
        model = build_model("tiny-llama", tok, seed=0)
        stream = merge_streams(aligned_stream({"forget": enc}, 1, tok.pad_token_id, seed=0))
        loss_fn = lambda m, b, _s: (mean_nll(m, b["forget"]), {})
        return train(model, loss_fn, stream, OptimConfig(steps=15, lr=3e-3), make_accelerator())

    first, second = run(), run()
    assert first.losses[-1] < 0.5 * first.losses[0]
    assert first.losses == second.losses and first.steps == 15 and first.tokens > 0


def test_aligned_stream_of_one_view_draws_what_batch_stream_draws():
    """The unlearning loop relies on this: the same seed gives the same forget and retain batches."""
    examples = _examples(11)
    plain = batch_stream([examples], 4, 0, seed=7)
    aligned = aligned_stream({"forget": examples}, 4, 0, seed=7)
    for _ in range(9):  # more than two epochs
        assert torch.equal(next(plain)["input_ids"], next(aligned)["forget"]["input_ids"])


def test_aligned_views_share_indices_and_merge():
    """Two views of the same examples (e.g. answers and refusals) stay row-aligned; merge names both."""
    answers, refusals = _examples(6, 3, 0), _examples(6, 3, 50)
    merged = merge_streams(aligned_stream({"forget": answers, "alternate": refusals}, 4, 0, seed=1),
                           aligned_stream({"retain": _examples(5, 3, 90)}, 4, 0, seed=2))
    batch = next(merged)
    assert set(batch) == {"forget", "alternate", "retain"}
    assert torch.equal(batch["alternate"]["input_ids"][:, 0] - 50, batch["forget"]["input_ids"][:, 0])
    assert torch.equal(batch["forget"]["index"], batch["alternate"]["index"])
    for row, i in enumerate(batch["forget"]["index"].tolist()):  # index: the example's position in its view
        assert batch["forget"]["input_ids"][row].tolist() == answers[i].input_ids
    with pytest.raises(ValueError, match="equal length"):
        next(aligned_stream({"forget": answers, "alternate": refusals[:5]}, 4, 0, seed=1))


def test_pad_right_and_left():
    from bench.core.encoding import pad

    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


# Gradient accumulation, gradient checkpointing and weight precision.


def _tiny_llama(seed=0):
    """Llama with hidden 16, 1 layer, vocab 32: milliseconds per step."""
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def _full_batch(ids):
    """Every token is answer: rows of equal length give every micro-batch the same token count."""
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def _grads_at_first_step(batches, grad_accum_steps):
    """The gradients the optimizer sees at its first step (after accumulation and any clipping)."""
    model, seen = _tiny_llama(), {}

    def grab(optimizer, _args, _kwargs):
        seen.update({i: p.grad.clone() for i, p in enumerate(optimizer.param_groups[0]["params"])})

    handle = register_optimizer_step_pre_hook(grab)
    try:
        cfg = OptimConfig(steps=1, lr=1e-3, max_grad_norm=0.0, grad_accum_steps=grad_accum_steps)
        result = train(model, lambda m, b, _s: (mean_nll(m, b), {}), iter(batches), cfg, make_accelerator())
    finally:
        handle.remove()
    return seen, result


def test_grad_accumulation_of_equal_micro_batches_matches_one_big_batch():
    """8 rows of 6 tokens in one batch vs 2 micro-batches of 4 rows: each micro-batch's token-mean
    loss has half the tokens, so (g1 + g2) / 2 is the big batch's gradient. Summing without the
    1/2, or keeping only the last micro-batch, would fail this."""
    ids = torch.randint(0, 32, (8, 6), generator=torch.Generator().manual_seed(0))
    big, big_result = _grads_at_first_step([_full_batch(ids)], 1)
    accum, accum_result = _grads_at_first_step([_full_batch(ids[:4]), _full_batch(ids[4:])], 2)
    assert big.keys() == accum.keys() and len(big) > 0
    for i in big:
        torch.testing.assert_close(accum[i], big[i], rtol=0, atol=1e-6)
    assert accum_result.losses == pytest.approx(big_result.losses, abs=1e-6)
    assert accum_result.tokens == big_result.tokens == 48


def test_grad_accumulation_accounts_losses_parts_and_tokens():
    """2 steps of 3 micro-batches with different token counts: one loss per step, the mean of its
    3 micro-batch losses; parts averaged likewise; tokens summed over all 6 micro-batches."""
    answers = [[[1, 2]], [[3, 4, 5], [6]], [[7]], [[1, 2, 3, 4]], [[5], [6], [7]], [[2, 2]]]
    batches = [qa_inputs(a) for a in answers]
    calls = []  # (step, loss) of every micro-batch

    def loss_fn(m, b, step):
        loss = mean_nll(m, b)
        calls.append((step, float(loss.detach())))
        return loss, {"loss_again": float(loss.detach()), "rows": float(len(b["input_ids"]))}

    steps_seen = []
    cfg = OptimConfig(steps=2, lr=0.1, grad_accum_steps=3)
    result = train(FixedLogits([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), loss_fn, iter(batches), cfg,
                   make_accelerator(), on_step=lambda step, loss, parts: steps_seen.append((step, loss, parts)))
    assert [s for s, _ in calls] == [0, 0, 0, 1, 1, 1]  # the step index is shared by its micro-batches
    assert result.steps == 2 and len(result.losses) == 2
    for step in range(2):
        micro = [loss for _, loss in calls[3 * step:3 * step + 3]]
        assert result.losses[step] == pytest.approx(sum(micro) / 3)
    assert result.losses[0] != result.losses[1]  # the step moved the parameters
    assert result.last_parts == pytest.approx({"loss_again": result.losses[1], "rows": (1 + 3 + 1) / 3})
    assert result.tokens == sum(int(b["attention_mask"].sum()) for b in batches) == 3 + 6 + 2 + 5 + 6 + 3  # prompt + answer
    assert [(s, v) for s, v, _ in steps_seen] == list(zip(range(2), result.losses))
    with pytest.raises(ValueError, match="grad_accum_steps"):
        OptimConfig(steps=1, lr=1.0, grad_accum_steps=0)


def _loss_and_grads(model, batch):
    model.train()
    loss = mean_nll(model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    batch = _full_batch(torch.randint(0, 32, (3, 7), generator=torch.Generator().manual_seed(1)))
    loss, grads = _loss_and_grads(_tiny_llama(), batch)
    model = _tiny_llama()
    enable_gradient_checkpointing(model)
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())  # set on the layers
    assert model.config.use_cache is False
    ckpt_loss, ckpt_grads = _loss_and_grads(model, batch)
    torch.testing.assert_close(ckpt_loss, loss, rtol=0, atol=1e-6)
    assert ckpt_grads.keys() == grads.keys()
    for name in grads:
        torch.testing.assert_close(ckpt_grads[name], grads[name], rtol=0, atol=1e-6)


def test_gradient_checkpointing_on_an_unsupported_model_names_it():
    with pytest.raises(ValueError, match="FixedLogits does not support gradient checkpointing"):
        enable_gradient_checkpointing(FixedLogits([0.0, 1.0]))


def test_torch_dtype_and_load_model_precision(tmp_path):
    assert [torch_dtype(p) for p in PRECISIONS] == [torch.float32, torch.bfloat16, torch.float16]
    with pytest.raises(ValueError, match=r"one of \('fp32', 'bf16', 'fp16'\), got 'float16'"):
        torch_dtype("float16")
    _tiny_llama().save_pretrained(tmp_path)
    assert {p.dtype for p in load_model(tmp_path, "bf16").parameters()} == {torch.bfloat16}
    assert {p.dtype for p in load_model(tmp_path, torch.float16).parameters()} == {torch.float16}
    assert {p.dtype for p in load_model(tmp_path).parameters()} == {torch.float32}  # as saved


class _Scalar(torch.nn.Module):
    """One weight; the scripted loss below moves it by exactly -lr per AdamW step (gradient 1)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))  # float64: the losses stay exact


def _scripted_run(values, guard, steps=None, lr=0.1):
    """Trains `_Scalar` with loss w + (values[step] - w.detach()): the value is `values[step]`, the
    gradient always 1. Returns the result, the weight after each optimizer step, and the final weight."""
    model, after_step = _Scalar(), []
    loss_fn = lambda m, _b, step: (m.w.sum() + (values[step] - m.w.detach().sum()), {})
    batches = iter(lambda: {"x": torch.zeros(1)}, None)
    cfg = OptimConfig(steps=steps or len(values), lr=lr, max_grad_norm=0.0)
    result = train(model, loss_fn, batches, cfg, make_accelerator(),
                   on_step=lambda *_: after_step.append(float(model.w.detach())), guard=guard)
    return result, after_step, float(model.w.detach())


def test_divergence_on_nan_restores_the_weights_from_before_the_last_step():
    """Losses 1, 2, 3, NaN: the NaN comes from the weights after 3 steps, so step 4 diverged and the
    model is put back as it was after step 2, the last weights whose loss (3) was computed and fine."""
    result, after_step, final = _scripted_run([1.0, 2.0, 3.0, float("nan"), 5.0], DivergenceGuard())
    assert result.diverged_step == 4 and result.steps == 2 and result.losses == [1.0, 2.0]
    assert after_step == pytest.approx([-0.1, -0.2, -0.3]) and final == after_step[1]
    assert result.divergence == "loss nan at step 4; evaluated as after step 2"


def test_divergence_on_a_loss_beyond_the_bound():
    result, _, final = _scripted_run([1.0, -2e5, 1.0], DivergenceGuard(max_loss=1e4))
    assert result.diverged_step == 2 and result.steps == 0 and final == 0.0  # back to the start
    assert result.divergence.startswith("loss -2e+05 beyond the bound |loss| <= 10000 at step 2")
    within, _, _ = _scripted_run([1.0, -2e5, 1.0], DivergenceGuard(max_loss=0))  # 0: no bound
    assert within.diverged_step is None and within.steps == 3


def test_divergence_at_the_first_step_keeps_the_untouched_model():
    result, after_step, final = _scripted_run([float("inf"), 1.0], DivergenceGuard())
    assert result.diverged_step == 1 and result.steps == 0 and after_step == [] and final == 0.0


def test_divergence_without_kept_weights_leaves_the_model_as_it_stands():
    result, after_step, final = _scripted_run([1.0, 2.0, float("nan")], DivergenceGuard(keep_last_finite=False))
    assert result.diverged_step == 3 and result.steps == 2 and final == after_step[-1]
    assert "weights not kept" in result.divergence


def test_non_finite_weights_after_the_last_step_diverge():
    result, _, final = _scripted_run([1.0], DivergenceGuard(), lr=float("inf"))  # one step: w = -inf
    assert result.diverged_step == 1 and result.steps == 0 and final == 0.0
    assert result.divergence.startswith("a weight is not finite after the last step at step 1")


def test_no_guard_trains_through_a_nan_loss():
    result, _, _ = _scripted_run([1.0, float("nan"), 2.0], None)
    assert result.diverged_step is None and result.steps == 3


def test_a_diverged_row_says_why_its_metrics_are_missing():
    import json

    from bench.run.rows import result_columns

    evaluation = {"forget_quality": float("nan"), "model_utility": 0.5,
                  "metrics_unavailable": json.dumps({"privleak": "no retain model"})}
    stats = {"train_s": 1.0, "diverged_step": 4, "divergence": "loss nan at step 4; evaluated as after step 2"}
    row = result_columns(stats, evaluation)
    assert (row["status"], row["diverged_step"], row["train_s"]) == ("diverged", 4, 1.0)
    assert row["error"].startswith("loss nan at step 4") and "divergence" not in row
    assert json.loads(row["metrics_unavailable"]) == {"privleak": "no retain model",
                                                      "forget_quality": "not finite: the model diverged"}
    fine = result_columns({**stats, "diverged_step": None, "divergence": None}, evaluation)
    assert (fine["status"], fine["error"], fine["diverged_step"]) == ("ok", None, None)
    assert fine["metrics_unavailable"] == evaluation["metrics_unavailable"]  # a NaN of an ok row is the metric's own


class _RecordingScaler(torch.amp.GradScaler):
    """torch's own loss scaler on the CPU, recording what the training loop asks of it."""

    def __init__(self):
        super().__init__("cpu", init_scale=1024.0)
        self.calls = []

    def unscale_(self, optimizer):
        self.calls.append("unscale_")
        return super().unscale_(optimizer)

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")
        return super().update(new_scale)


def _one_weight_run(accelerator, steps=3):
    model = FixedLogits([0.0, 0.0])
    stream = iter(lambda: qa_inputs([[1], [0, 1]]), None)
    cfg = OptimConfig(steps=steps, lr=0.1, warmup_steps=0, schedule="constant", max_grad_norm=1.0)
    train(model, lambda m, b, _s: (mean_nll(m, b), {}), stream, cfg, accelerator)
    return model.logits.detach().clone()


def test_fp16_loss_scaling_goes_through_the_scaler(monkeypatch):
    """With a loss scaler (fp16 on a GPU), every step unscales the gradients before clipping, steps
    through the scaler and updates its scale; the weights then move as without scaling. (CPU: accelerate
    makes no scaler there, so the accelerator is set up as on a GPU with fp16, with torch's CPU scaler.)"""
    plain = _one_weight_run(make_accelerator("no"))
    accelerator = make_accelerator("no")
    accelerator.scaler = scaler = _RecordingScaler()
    accelerator.native_amp = True
    monkeypatch.setattr(type(accelerator), "mixed_precision", property(lambda self: "fp16"))
    scaled = _one_weight_run(accelerator)
    assert scaler.calls == ["unscale_", "step", "update"] * 3
    torch.testing.assert_close(scaled, plain)


def test_mixed_precision_may_change_between_trials_of_one_process():
    """Ray reuses a worker process for the next trial, and `mixed_precision` may be a grid axis:
    accelerate's per-process state must follow each trial's setting."""
    assert make_accelerator("bf16").mixed_precision == "bf16"
    assert make_accelerator("no").mixed_precision == "no"
    bf16 = make_accelerator("bf16")
    assert bf16.mixed_precision == "bf16"
    with bf16.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    make_accelerator("no")


@pytest.mark.parametrize("settings, key, allowed", [
    ({"schedule": "linear"}, "schedule", "constant, cosine"),
    ({"steps": -1}, "steps", "an integer >= 0"),
    ({"lr": -1e-3}, "lr", "a number >= 0"),
    ({"warmup_steps": -2}, "warmup_steps", "an integer >= 0"),
    ({"max_grad_norm": -1.0}, "max_grad_norm", "a number >= 0 (0: off)"),
    ({"grad_accum_steps": 0}, "grad_accum_steps", "an integer >= 1"),
])
def test_optim_config_refuses_a_bad_setting_with_a_field_error(settings, key, allowed):
    from bench.core.errors import FieldError

    with pytest.raises(FieldError) as err:
        OptimConfig(**{"steps": 1, "lr": 1e-3, **settings})
    assert (err.value.key, err.value.allowed) == (key, allowed)
