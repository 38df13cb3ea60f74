"""TOFU metric formulas on hand-computable numbers, and the evaluation context against a slow reference."""

import math

import numpy as np
import pytest
import torch

from helpers import THREE_QA

from bench.models.zoo import build_model, train_tokenizer
from metrics import EvalConfig, EvalContext, evaluate
from metrics.tofu import (
    forget_truth_ratio_stat,
    harmonic_mean,
    kept_truth_ratio_stat,
    ks_forget_quality,
    normalized_option_prob,
    rouge_l_recall,
    truth_ratio,
)


def test_truth_ratio_by_hand():
    """Perturbed mean log-probs ln(1/4), ln(1/16): geometric mean 1/8; paraphrase P̄ = 1/2 -> R = 1/4."""
    r = truth_ratio(np.array([math.log(0.5)]), np.array([[math.log(1 / 4), math.log(1 / 16)]]))
    assert r[0] == pytest.approx(0.25)


def test_truth_ratio_statistics():
    """R = (1/4, 2): forget mean(min(R, 1/R)) = (1/4 + 1/2)/2; kept mean(max(0, 1-R)) = (3/4 + 0)/2."""
    r = np.array([0.25, 2.0])
    assert forget_truth_ratio_stat(r) == pytest.approx(0.375)
    assert kept_truth_ratio_stat(r) == pytest.approx(0.375)
    assert kept_truth_ratio_stat(np.array([0.5])) == pytest.approx(0.5)


def test_normalized_option_prob():
    """P̄(a) = 1/2 and perturbed 1/4, 1/4: 0.5 / (0.5 + 0.5) = 1/2."""
    p = normalized_option_prob(np.log([0.5]), np.log([[0.25, 0.25]]))
    assert p[0] == pytest.approx(0.5)


def test_ks_identical_samples_is_one_and_disjoint_is_small():
    a = np.linspace(0.1, 1.0, 50)
    assert ks_forget_quality(a, a.copy()) == pytest.approx(1.0)
    assert ks_forget_quality(a, a + 10) < 1e-10


def test_harmonic_mean():
    """hmean(1, 1/2) = 2 / (1 + 2) = 2/3; any zero makes it zero."""
    assert harmonic_mean([1.0, 0.5]) == pytest.approx(2 / 3)
    assert harmonic_mean([1.0, 0.0, 0.9]) == 0.0


def test_rouge_l_recall():
    """LCS of 'the cat sat' (reference) and 'the cat' is 2 tokens: recall 2/3; stemming matches 'sits'/'sit'."""
    assert rouge_l_recall("the cat sat", "the cat") == pytest.approx(2 / 3)
    assert rouge_l_recall("she sits", "she sit") == pytest.approx(1.0)
    assert rouge_l_recall("Paris", "Rome") == 0.0


QA = THREE_QA


@pytest.fixture(scope="module")
def tiny():
    texts = [r[k] for r in QA for k in ("question", "answer", "paraphrased_answer")] * 20
    tok = train_tokenizer(texts, 320)
    model = build_model("tiny-llama", tok, seed=0).eval()
    return model, tok


@pytest.mark.parametrize("share_prompts", [False, True])
def test_batched_logprobs_match_one_at_a_time(tiny, share_prompts):
    """Padding and sorting in batched scoring must not change any token's log-prob."""
    model, tok = tiny
    batched = EvalContext(model, tok, {"forget": QA}, EvalConfig(batch_size=8, share_prompts=share_prompts)
                          ).token_logprobs("forget", "perturbed_answer")
    single = EvalContext(model, tok, {"forget": QA}, EvalConfig(batch_size=1, share_prompts=False)
                         ).token_logprobs("forget", "perturbed_answer")
    assert len(batched) == 9
    for b, s in zip(batched, single):
        np.testing.assert_allclose(b, s, atol=1e-5)


@pytest.mark.parametrize("arch", ["tiny-llama", "tiny-gpt2"])
def test_shared_prompt_scoring_matches_whole_sequences(tiny, arch):
    """Reusing a question's KV cache for all its answers gives the log-probs of scoring each whole.

    Several fields at once, uneven prompt lengths (left padding) and a batch size that splits the
    questions: every answer's per-token log-probs agree with the one-sequence-at-a-time path.
    """
    _, tok = tiny
    model = build_model(arch, tok, seed=1).eval()
    fields = ["answer", "paraphrased_answer", "perturbed_answer"]
    whole = EvalContext(model, tok, {"forget": QA}, EvalConfig(batch_size=1, share_prompts=False))
    shared = EvalContext(model, tok, {"forget": QA}, EvalConfig(batch_size=6, share_prompts=True))
    shared.score("forget", fields)
    assert shared.forward_passes == 6  # 5 answers a question, at most 6 rows a batch: 3 batches of 2 passes
    for field in fields:
        got, want = shared.token_logprobs("forget", field), whole.token_logprobs("forget", field)
        assert [len(g) for g in got] == [len(w) for w in want]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=2e-5)


def test_logprobs_match_model_directly(tiny):
    """The context's log-probs are the model's next-token log-probs of the answer tokens, EOS included."""
    model, tok = tiny
    ctx = EvalContext(model, tok, {"forget": QA[:1]}, EvalConfig())
    got = ctx.token_logprobs("forget")[0]
    prompt = [tok.bos_token_id] + tok("Question: Where was Ana born?\nAnswer:", add_special_tokens=False)["input_ids"]
    answer = tok(" Ana was born in Velmora.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0], -1)
    expected = [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer)]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_context_caches_forward_passes(tiny):
    """Asking for the same quantity twice costs no extra forward pass; generation is counted per prompt."""
    model, tok = tiny
    ctx = EvalContext(model, tok, {"forget": QA}, EvalConfig(batch_size=64, max_new_tokens=4))
    ctx.mean_logprob("forget", "answer")
    passes = ctx.forward_passes
    ctx.mean_logprob("forget", "answer")
    ctx.token_logprobs("forget", "answer")
    assert ctx.forward_passes == passes == 2  # the prompts, then the answers on their KV cache
    assert ctx.mean_logprob("forget", "perturbed_answer").shape == (3, 3)
    ctx.generations("forget")
    ctx.generations("forget")
    assert ctx.generated_prompts == 3


BIOS = [{"author": "Ana", "text": "Ana was born in Velmora and writes comic novels about the sea, " * 3}]


def all_splits():
    """Every split a metric reads, the questions with the keyword a correct answer names (keyword accuracy)."""
    qa = [{**r, "keyword": r["answer"].split()[-1]} for r in QA]
    return {**{s: qa for s in ("forget", "retain", "holdout", "real_authors", "world_facts")}, "forget_bio": BIOS,
            "general_text": [{"question": "", "answer": b["text"]} for b in BIOS]}


def test_full_metric_set_runs_and_comparisons_without_a_retain_model_say_why(tiny):
    model, tok = tiny
    cfg = EvalConfig(max_new_tokens=4, verbatim_prefix_tokens=4, verbatim_new_tokens=8)
    ctx = EvalContext(model, tok, all_splits(), cfg)
    row = evaluate(ctx, ["forget_quality", "privacy_leakage", "mia"])
    assert math.isnan(row["forget_quality"]) and math.isnan(row["privleak"])
    assert "retain model" in ctx.unavailable["forget_quality"] and "retain model" in ctx.unavailable["privleak"]
    assert all(0 <= row[f"mia_{a}_auc"] <= 1 for a in ("loss", "zlib", "mink", "mink_pp"))

    ctx = EvalContext(model, tok, all_splits(), cfg)
    r = truth_ratio(ctx.mean_logprob("forget", "paraphrased_answer"), ctx.mean_logprob("forget", "perturbed_answer"))
    ctx.baselines.update(retain_forget_truth_ratio=r, retain_mia_mink_auc=0.5,  # compared with itself
                         base_mia_loss={s: [0.0] * len(QA) for s in ("forget", "holdout")})  # the reference's losses
    row = evaluate(ctx)
    assert row["forget_quality"] == pytest.approx(1.0) and row["privleak"] == pytest.approx(0.0)
    assert all(np.isfinite(v) for v in row.values()) and not ctx.unavailable
    assert 0 <= row["model_utility"] <= 1


def test_a_missing_split_makes_only_its_families_unavailable(tiny):
    model, tok = tiny
    splits = all_splits()
    del splits["holdout"], splits["forget_bio"]
    ctx = EvalContext(model, tok, splits, EvalConfig(max_new_tokens=4))
    row = evaluate(ctx, ["mia", "verbatim_memorization", "exact_memorization"])
    assert math.isnan(row["mia_mink_pp_auc"]) and "holdout" in ctx.unavailable["mia_mink_pp_auc"]
    assert math.isnan(row["forget_verbmem"]) and "forget_bio" in ctx.unavailable["forget_verbmem"]
    assert np.isfinite(row["forget_exact_mem"]) and "forget_exact_mem" not in ctx.unavailable


def test_the_full_metric_set_adds_only_the_holdout_and_general_text_passes_and_the_continuations(tiny):
    """The memorization, membership and keyword families read the cached scores and generations: the only new
    model work is scoring the holdout answers and the general text (one prompt pass + one answer pass each)
    and continuing the forget texts. GradNorm, the one family that takes gradients, is opt-in: named, it adds
    one forward and one backward pass per forget and holdout answer."""
    from metrics import METRICS, default_families

    model, tok = tiny
    core = ["forget_quality", "greedy_exact_match", "model_utility", "probability", "rouge", "truth_ratio"]
    cfg = EvalConfig(max_new_tokens=4, verbatim_prefix_tokens=4, verbatim_new_tokens=8)
    costs = {}
    every = [*default_families(), "mia_gradnorm"]
    for name, families in (("core", core), ("default", None), ("every", every)):
        ctx = EvalContext(model, tok, all_splits(), cfg, baselines={"retain_forget_truth_ratio": np.ones(3),
                                                                   "retain_mia_mink_auc": 0.5})
        evaluate(ctx, metrics=families)
        costs[name] = (ctx.forward_passes, ctx.generated_prompts, ctx.backward_passes)
    assert len(METRICS.names()) > len(core) + 5 and "mia_gradnorm" not in default_families()
    assert costs["default"] == (costs["core"][0] + 4, costs["core"][1] + len(BIOS), 0)
    gradnorm = 2 * len(QA)  # forget and holdout answers
    assert costs["every"] == (costs["default"][0] + gradnorm, costs["default"][1], gradnorm)


@pytest.fixture(scope="module")
def memorised(tiny):
    """A tiny model trained on the answers of QA[:2] until it reproduces them under teacher forcing."""
    from bench.training.batches import aligned_stream, merge_streams
    from bench.core.encoding import encode_many
    from bench.training.loop import OptimConfig, make_accelerator, train
    from methods.losses import mean_nll

    _, tok = tiny
    model = build_model("tiny-llama", tok, seed=0)
    encoded = encode_many(tok, [(r["question"], r["answer"]) for r in QA[:2]], 64)
    stream = merge_streams(aligned_stream({"forget": encoded}, 2, tok.pad_token_id, seed=0))
    train(model, lambda m, b, _s: (mean_nll(m, b["forget"]), {}), stream, OptimConfig(steps=100, lr=3e-3),
          make_accelerator())
    return model.eval(), tok


@pytest.mark.parametrize("max_new_tokens", [64, 3])
def test_teacher_forced_answers_are_what_greedy_decoding_gives(memorised, max_new_tokens):
    """Skipping the decoding of memorised answers changes no generation, only the work done."""
    model, tok = memorised
    fast = EvalContext(model, tok, {"forget": QA}, EvalConfig(max_new_tokens=max_new_tokens))
    slow = EvalContext(model, tok, {"forget": QA}, EvalConfig(max_new_tokens=max_new_tokens, reuse_teacher_forcing=False))
    assert fast.greedy_match("forget") == [True, True, False]  # the test is only meaningful if some match
    assert fast.generations("forget") == slow.generations("forget")
    if max_new_tokens == 64:
        assert fast.generations("forget")[:2] == [QA[0]["answer"], QA[1]["answer"]]
    assert (fast.generated_prompts, slow.generated_prompts) == (1, 3)


def test_membership_inference_separates_trained_from_unseen_answers(memorised):
    """Members = the two answers the model was trained on, non-member = the third: every attack ranks
    both members above it (AUROC 1), and a model compared with itself leaks nothing."""
    model, tok = memorised
    ctx = EvalContext(model, tok, {"forget": QA[:2], "holdout": QA[2:]}, EvalConfig())
    ctx.baselines["retain_mia_mink_auc"] = 0.5
    row = evaluate(ctx, ["mia", "privacy_leakage", "exact_memorization", "extraction_strength"])
    assert [row[f"mia_{a}_auc"] for a in ("loss", "zlib", "mink", "mink_pp")] == [1.0] * 4
    assert row["privleak"] == pytest.approx(-100.0)  # A = 0 against the retain model's 0.5
    assert math.isnan(row["retain_exact_mem"])  # no retain split given
    assert row["forget_exact_mem"] == 1.0 and row["forget_extraction_strength"] == 1.0


def test_verbatim_memorization_of_a_memorised_text(tiny):
    """A model trained on one text continues its prefix with the true rest: VerbMem (ROUGE-L F1) = 1;
    the truth is the text's tokens after the prefix, decoded."""
    from bench.training.batches import aligned_stream, merge_streams
    from bench.core.encoding import encode_many
    from bench.training.loop import OptimConfig, make_accelerator, train
    from methods.losses import mean_nll

    _, tok = tiny
    text = "Ana was born in Velmora and writes comic novels about the sea."
    model = build_model("tiny-llama", tok, seed=0)
    stream = merge_streams(aligned_stream({"forget": encode_many(tok, [("", text)], 64)}, 1, tok.pad_token_id, seed=0))
    train(model, lambda m, b, _s: (mean_nll(m, b["forget"]), {}), stream, OptimConfig(steps=200, lr=1e-2),
          make_accelerator())
    cfg = EvalConfig(verbatim_prefix_tokens=3, verbatim_new_tokens=64)
    ctx = EvalContext(model.eval(), tok, {"forget_bio": [{"text": text}]}, cfg)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    (generated, truth), = ctx.continuations("forget_bio")
    assert truth == tok.decode(ids[3:]).strip() and generated == truth
    assert evaluate(ctx, ["verbatim_memorization"])["forget_verbmem"] == 1.0
    assert ctx.generated_prompts == 1
