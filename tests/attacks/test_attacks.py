"""Attacks on unlearned models: quantization by hand, the relearning split, relearning on a tiny
model, the prompt rewrites, and the registry. Every attack must leave the model it is given as it was."""

import pytest
import torch
from transformers.pytorch_utils import Conv1D

import attacks.relearn as relearn_mod
from attacks import (
    ATTACKS,
    DEFAULT_PREFIXES,
    AttackContext,
    MissingKeyError,
    paraphrased_questions,
    prefixed_questions,
    quantize_model,
    quantize_rtn,
    run_attack,
    split_for_relearning,
)
from attacks.relearn import relearn
from bench.core.encoding import collate, encode_many
from bench.core.registry import UnknownNameError
from methods.losses import mean_nll

# ---------------------------------------------------------------------------
# quantize_rtn
# ---------------------------------------------------------------------------

# Row 0: absmax 0.7; row 1: absmax 1.4. No entry lands on a rounding tie.
W = torch.tensor([[0.7, -0.33, 0.12, 0.04],
                  [-1.4, 0.45, 0.95, -0.06]])


def test_quantize_rtn_4bit_by_hand():
    """4 bits: qmax = 2**3 - 1 = 7.
    Row 0: scale = 0.7 / 7 = 0.1; w / scale = [7, -3.3, 1.2, 0.4] -> q = [7, -3, 1, 0]
           -> q * scale = [0.7, -0.3, 0.1, 0.0].
    Row 1: scale = 1.4 / 7 = 0.2; w / scale = [-7, 2.25, 4.75, -0.3] -> q = [-7, 2, 5, 0]
           -> q * scale = [-1.4, 0.4, 1.0, 0.0]."""
    expected = torch.tensor([[0.7, -0.3, 0.1, 0.0],
                             [-1.4, 0.4, 1.0, 0.0]])
    torch.testing.assert_close(quantize_rtn(W, 4), expected, rtol=0, atol=1e-6)


def test_quantize_rtn_8bit_by_hand():
    """8 bits: qmax = 2**7 - 1 = 127.
    Row 0: scale = 0.7 / 127; w / scale = [127, -59.871, 21.771, 7.257] -> q = [127, -60, 22, 7]
           -> q * 0.7 / 127 = [0.7, -42/127, 15.4/127, 4.9/127] = [0.7, -0.3307087, 0.1212598, 0.0385827].
    Row 1: scale = 1.4 / 127; w / scale = [-127, 40.821, 86.179, -5.443] -> q = [-127, 41, 86, -5]
           -> q * 1.4 / 127 = [-1.4, 57.4/127, 120.4/127, -7/127] = [-1.4, 0.4519685, 0.9480315, -0.0551181]."""
    expected = torch.tensor([[0.7, -0.3307087, 0.1212598, 0.0385827],
                             [-1.4, 0.4519685, 0.9480315, -0.0551181]])
    torch.testing.assert_close(quantize_rtn(W, 8), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantize_rtn_error_is_at_most_half_a_step_per_row(bits):
    w = torch.randn(16, 33, generator=torch.Generator().manual_seed(bits)) * torch.logspace(-3, 1, 16)[:, None]
    scale = w.abs().amax(dim=1, keepdim=True) / (2 ** (bits - 1) - 1)  # (16, 1)
    deq = quantize_rtn(w, bits)
    assert ((w - deq).abs() <= scale / 2 * (1 + 1e-5)).all()
    # at most 2 * qmax + 1 distinct levels per row, each an integer multiple of the row's scale
    q = deq / scale
    torch.testing.assert_close(q, q.round(), rtol=0, atol=1e-3)
    assert q.abs().max() <= 2 ** (bits - 1) - 1 + 1e-3


def test_quantize_rtn_zero_row_stays_zero_without_nan():
    w = torch.tensor([[0.0, 0.0, 0.0], [0.5, -1.0, 0.2]])
    deq = quantize_rtn(w, 4)
    assert torch.isfinite(deq).all()
    assert torch.equal(deq[0], torch.zeros(3))


def test_quantize_rtn_keeps_the_dtype_and_refuses_bad_bits():
    w16 = W.to(torch.bfloat16)
    out = quantize_rtn(w16, 4)
    assert out.dtype == torch.bfloat16 and out.shape == w16.shape
    for bits in (1, 0, 17, 4.0):
        with pytest.raises(ValueError, match="bits: .* is not allowed; allowed: an integer from 2 to 16"):
            quantize_rtn(W, bits)


# ---------------------------------------------------------------------------
# quantize_model
# ---------------------------------------------------------------------------


def snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_identical(model: torch.nn.Module, before: dict) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{k} changed"


def changed(model: torch.nn.Module, before: dict) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def test_conv1d_is_quantized_per_output_column():
    """GPT-2's Conv1D stores (in, out): the output channels are columns, so the result is
    quantize_rtn of the transposed weight, transposed back, not quantize_rtn of the stored matrix."""
    layer = Conv1D(nf=2, nx=4)  # weight (in=4, out=2)
    with torch.no_grad():
        layer.weight.copy_(W.t())
    model = torch.nn.Sequential(layer)
    attacked = quantize_model(model, 4)
    got = attacked[0].weight.detach()
    torch.testing.assert_close(got, quantize_rtn(W, 4).t(), rtol=0, atol=1e-6)
    assert not torch.allclose(got, quantize_rtn(W.t(), 4))  # per input row would differ
    assert torch.equal(model[0].weight, W.t())  # the original is untouched


class UntiedLM(torch.nn.Module):
    """An embedding, a norm, a hidden Linear and an untied output head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(10, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.hidden = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 10, bias=False)

    def get_input_embeddings(self):
        return self.embed


def test_quantize_model_quantizes_linears_and_an_untied_head_only():
    model = UntiedLM()
    before = snapshot(model)
    attacked = quantize_model(model, 4)
    assert_identical(model, before)
    assert changed(attacked, before) == {"hidden.weight", "head.weight"}
    torch.testing.assert_close(attacked.head.weight, quantize_rtn(before["head.weight"], 4), rtol=0, atol=0)


@pytest.fixture(scope="module")
def qa():
    colours = ["red", "blue", "green", "amber", "violet"]
    return [{"question": f"What colour does Mira Tolven {i} like best?",
             "answer": f"Mira Tolven {i} likes {colours[i % 5]} and the number {i * 7}.",
             "paraphrased_question": f"Which colour is the favourite of Mira Tolven {i}?"}
            for i in range(20)]


@pytest.fixture(scope="module")
def tok(qa):
    from bench.models.zoo import train_tokenizer

    texts = [r[k] for r in qa for k in ("question", "answer", "paraphrased_question")]
    return train_tokenizer(texts * 5, 300)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_quantize_model_on_zoo_models_leaves_the_original_and_the_tied_head(tok, name):
    from bench.models.zoo import build_model

    model = build_model(name, tok, seed=0).eval()
    before = snapshot(model)
    attacked = quantize_model(model, 4)
    assert_identical(model, before)
    moved = changed(attacked, before)
    embedding_ptr = model.get_input_embeddings().weight.data_ptr()
    embedding = {k for k, v in model.state_dict().items() if v.data_ptr() == embedding_ptr}
    assert moved and not moved & embedding  # the tied head is the embedding: left as it was
    assert all(k.endswith("weight") for k in moved)  # biases and norms stay
    n_linear = sum(isinstance(m, (torch.nn.Linear, Conv1D)) and m.weight is not model.get_input_embeddings().weight
                   for m in model.modules())
    assert len(moved) == n_linear
    assert attacked.get_output_embeddings().weight is attacked.get_input_embeddings().weight  # still tied


# ---------------------------------------------------------------------------
# split_for_relearning
# ---------------------------------------------------------------------------

RECORDS = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(100)]


def questions(records):
    return [r["question"] for r in records]


def test_split_is_disjoint_covers_and_keeps_order():
    train, held = split_for_relearning(RECORDS, 0.1, seed=3)
    assert len(train) == 10 and len(held) == 90
    assert not set(questions(train)) & set(questions(held))
    assert sorted(questions(train) + questions(held)) == sorted(questions(RECORDS))
    position = {q: i for i, q in enumerate(questions(RECORDS))}
    for part in (train, held):
        assert [position[q] for q in questions(part)] == sorted(position[q] for q in questions(part))


def test_split_is_deterministic_per_seed():
    assert split_for_relearning(RECORDS, 0.1, seed=0) == split_for_relearning(RECORDS, 0.1, seed=0)
    seed0, seed1 = (questions(split_for_relearning(RECORDS, 0.1, seed=s)[0]) for s in (0, 1))
    assert seed0 != seed1


def test_split_edge_sizes():
    two = RECORDS[:2]
    for fraction in (0.001, 0.5, 0.999):  # always one to relearn and one to evaluate
        train, held = split_for_relearning(two, fraction, seed=0)
        assert (len(train), len(held)) == (1, 1)
    assert len(split_for_relearning(RECORDS, 1e-6, seed=0)[0]) == 1  # at least one
    assert len(split_for_relearning(RECORDS, 0.9999, seed=0)[1]) == 1  # at most n - 1
    assert len(split_for_relearning(RECORDS[:7], 0.5, seed=0)[0]) == 4  # round(3.5) = 4 (half to even)


def test_split_refuses_bad_input_and_does_not_alias():
    with pytest.raises(ValueError, match="at least 2 records"):
        split_for_relearning(RECORDS[:1], 0.5, seed=0)
    for fraction in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"fraction: .*allowed: a number in \(0, 1\)"):
            split_for_relearning(RECORDS, fraction, seed=0)
    train, _ = split_for_relearning(RECORDS, 0.1, seed=0)
    train[0]["question"] = "changed"
    assert "changed" not in questions(RECORDS)


# ---------------------------------------------------------------------------
# relearning on a tiny model
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tok):
    from bench.models.zoo import build_model

    return build_model("tiny-llama", tok, seed=0).eval()


def nll(model, tok, records) -> float:
    batch = collate(encode_many(tok, [(r["question"], r["answer"]) for r in records], 256), tok.pad_token_id)
    with torch.no_grad():
        return float(mean_nll(model.eval(), batch))


def test_relearn_lowers_the_nll_of_its_records_on_a_copy(tiny, tok, qa):
    train, _ = split_for_relearning(qa, 0.25, seed=0)
    before = snapshot(tiny)
    nll_before = nll(tiny, tok, train)
    attacked = relearn(tiny, tok, train, steps=10, lr=1e-3, batch_size=8, seed=0)
    assert_identical(tiny, before)
    assert changed(attacked, before)
    assert nll(attacked, tok, train) < nll_before
    assert nll(tiny, tok, train) == nll_before


@pytest.fixture
def encoded_questions(monkeypatch) -> list[str]:
    """The questions relearning encodes to train on, in order (a spy on its `encode_many`)."""
    seen: list[str] = []

    def recording(tokenizer, pairs, max_length):
        seen.extend(q for q, _ in pairs)
        return encode_many(tokenizer, pairs, max_length)

    monkeypatch.setattr(relearn_mod, "encode_many", recording)
    return seen


def test_relearn_attack_never_encodes_the_evaluated_questions(tiny, tok, qa, encoded_questions):
    seen = encoded_questions
    result = run_attack("relearn", tiny, AttackContext(tok, {"forget": qa}, seed=5), {"steps": 1})
    expected_train, expected_eval = split_for_relearning(qa, 0.1, seed=5)
    assert seen == questions(expected_train) and len(seen) == 2
    assert questions(result.forget) == questions(expected_eval)
    assert not set(seen) & set(questions(result.forget))
    assert result.info["relearn_questions"] == 2 and result.info["eval_questions"] == 18
    assert result.model is not tiny


def test_relearn_retain_trains_on_retain_only_and_evaluates_relearns_questions(tiny, tok, qa, encoded_questions):
    seen = encoded_questions
    forget, retain = qa[:10], qa[10:]
    before = snapshot(tiny)
    result = run_attack("relearn_retain", tiny, AttackContext(tok, {"forget": forget, "retain": retain}), {"steps": 1})
    assert len(seen) == 1 and set(seen) <= set(questions(retain))  # round(0.1 * 10) = 1 retain question
    held_out = split_for_relearning(forget, 0.1, 0)[1]  # what `relearn` evaluates at the same seed
    assert questions(result.forget) == questions(held_out) and len(held_out) == 9
    assert_identical(tiny, before)


def test_relearn_refuses_records_without_answers(tiny, tok):
    with pytest.raises(MissingKeyError, match="'answer'"):
        relearn(tiny, tok, [{"question": "q"}], steps=1)


# ---------------------------------------------------------------------------
# prompt attacks
# ---------------------------------------------------------------------------


def test_paraphrased_questions_replace_the_question_on_copies(qa):
    records = [dict(r) for r in qa[:3]]
    out = paraphrased_questions(records)
    assert questions(out) == [r["paraphrased_question"] for r in qa[:3]]
    assert [r["original_question"] for r in out] == questions(qa[:3])
    assert [r["answer"] for r in out] == [r["answer"] for r in qa[:3]]
    assert records == [dict(r) for r in qa[:3]]  # input not mutated


def test_paraphrased_questions_name_the_missing_key():
    with pytest.raises(MissingKeyError, match=r"record 1 has no 'paraphrased_question'.*'question', 'answer'"):
        paraphrased_questions([{"question": "q", "answer": "a", "paraphrased_question": "p"},
                               {"question": "q", "answer": "a"}])


def test_prefixed_questions_one_record_per_record_and_prefix():
    records = [{"question": "Who?", "answer": "A"}, {"question": "Where?", "answer": "B"}]
    out = prefixed_questions(records, ("Answer from memory: ", "Hi. "))
    assert questions(out) == ["Answer from memory: Who?", "Hi. Who?", "Answer from memory: Where?", "Hi. Where?"]
    assert [r["answer"] for r in out] == ["A", "A", "B", "B"]
    assert [r["question_prefix"] for r in out] == ["Answer from memory: ", "Hi. "] * 2
    assert records == [{"question": "Who?", "answer": "A"}, {"question": "Where?", "answer": "B"}]
    assert len(prefixed_questions(records)) == 2 * len(DEFAULT_PREFIXES)
    with pytest.raises(ValueError, match="non-empty list"):
        prefixed_questions(records, ())


def test_record_attacks_return_the_same_model_untouched(tiny, tok, qa):
    before = snapshot(tiny)
    result = run_attack("paraphrase", tiny, AttackContext(tok, {"forget": qa[:4]}))
    assert result.model is tiny and questions(result.forget) == [r["paraphrased_question"] for r in qa[:4]]
    result = run_attack("prefix", tiny, AttackContext(tok, {"forget": qa[:4]}), {"prefixes": ["Say: "]})
    assert questions(result.forget) == ["Say: " + q for q in questions(qa[:4])]
    assert_identical(tiny, before)


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------


def test_registry_lists_the_attacks_and_their_grids():
    assert ATTACKS.names() == ["paraphrase", "prefix", "quantize", "relearn", "relearn_retain"]
    assert [s.bits for s in ATTACKS.get("quantize").grid_settings()] == [8, 4]
    assert [s.steps for s in ATTACKS.get("relearn").grid_settings(lr=1e-4)] == [10, 25]
    assert ATTACKS.get("relearn").defaults() == {"steps": 10, "lr": 1e-3, "batch_size": 8, "fraction": 0.1}
    assert all(spec.description and "\n" not in spec.description for spec in ATTACKS)


def test_registry_errors_name_the_allowed_values(tiny, tok):
    with pytest.raises(UnknownNameError, match="unknown attack 'quantise'.*Did you mean quantize"):
        ATTACKS.get("quantise")
    allowed = r"no setting 'step'; allowed: steps, lr, batch_size, fraction\. Did you mean steps\?"
    with pytest.raises(ValueError, match=allowed):
        ATTACKS.get("relearn").make_settings({"step": 5})
    with pytest.raises(ValueError, match="needs the split\\(s\\) 'retain'"):
        run_attack("relearn_retain", tiny, AttackContext(tok, {"forget": [{"question": "q", "answer": "a"}]}))
    with pytest.raises(ValueError, match="bits: .*allowed: an integer"):
        ATTACKS.get("quantize").make_settings({"bits": 1})


def test_quantize_attack_returns_a_copy(tiny, tok):
    before = snapshot(tiny)
    result = run_attack("quantize", tiny, AttackContext(tok), {"bits": 8})
    assert result.model is not tiny and result.forget is None and result.info == {"bits": 8}
    assert changed(result.model, before)
    assert_identical(tiny, before)


def test_an_unknown_setting_is_a_field_error_keyed_by_its_name():
    from bench.core.errors import FieldError

    with pytest.raises(FieldError) as err:
        ATTACKS.get("quantize").make_settings({"bit": 4})
    assert err.value.key == "bit" and "attack 'quantize' has no setting 'bit'" in err.value.detail
