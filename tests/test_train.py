"""The training loop, its schedule, and the seeded batch streams."""

import math

import pytest
import torch

from bench.batches import aligned_stream, batch_stream, merge_streams
from bench.encoding import IGNORE_INDEX, Encoded, collate, encode, encode_many
from bench.models import build_model, train_tokenizer
from bench.train import OptimConfig, lr_factor, make_accelerator, train
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
    from bench.encoding import pad

    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
