"""`bench perf`'s pure parts: verdicts, the report's shape, the minimal-work count. No timing, no Ray."""

import json
import math

import pytest

from benchperf.report import (
    TARGETS,
    Measurement,
    assemble,
    eval_work,
    meets,
    minimum_calls,
    render,
    same_metrics,
    seconds_between,
    to_json,
)


def test_meets_reads_the_direction_of_each_target():
    assert meets("overhead", 1.15) and not meets("overhead", 1.16)  # at most
    assert meets("scaling", 1.6) and not meets("scaling", 1.59)  # at least
    assert meets("train_vs_bare", 0.9) and not meets("train_vs_bare", 0.8)
    assert meets("eval_passes_ratio", 1.0) and not meets("eval_passes_ratio", 2.0)
    assert not any(meets(k, float("nan")) for k in TARGETS)


def test_minimum_calls_packs_sequences_and_prompts_into_full_batches():
    # 500 sequences in batches of 256: 2 passes; 144 prompts: 1 generation call.
    assert minimum_calls(500, 144, 256) == 3
    assert minimum_calls(512, 0, 256) == 2  # nothing decoded: no generation call
    assert minimum_calls(1, 1, 1) == 2


def test_eval_work_on_a_hand_made_evaluation():
    # Two splits of 3 questions x (answer + 2 perturbed) = 18 sequences, batch 8, each scored once; 4
    # prompts decoded, one of them twice (5 decodings): (18 + 5) / (18 + 4). In calls: shared prompts, 8
    # rows a batch split at question boundaries (6 rows), 3 batches x 2 calls = 6, plus 2 generate()
    # calls (two splits), against ceil(18 / 8) + ceil(4 / 8) = 4.
    work = eval_work(scored_sequences=18, generated_prompts=5, sequences=18, prompts=4, forward_passes=6,
                     generate_calls=2, batch_size=8)
    assert (work["actual"], work["minimum"]) == (23, 22) and work["ratio"] == 23 / 22
    assert work["minimum_forward_passes"] == 3 and work["minimum_generate_calls"] == 1
    assert (work["actual_calls"], work["minimum_calls"], work["calls_ratio"]) == (8, 4, 2.0)
    assert math.isnan(eval_work(0, 0, 0, 0, 0, 0, 8)["ratio"])  # nothing to evaluate: no ratio


def test_counting_context_counts_a_hand_made_evaluation():
    """Three questions x (answer, paraphrase, 3 perturbed) = 15 sequences, 14 distinct (Paris is its own
    paraphrase); batch 5: each question's five answers fill one shared-prompt batch (2 calls each).
    Three questions decoded in one generate() call; a probe repeating the first is a second call and
    a second decoding of a known prompt. Per sequence: (15 + 4) / (14 + 3); in calls 6 + 2 = 8 vs
    ceil(14 / 5) + ceil(3 / 5) = 4. A model call made outside the context is seen by the hook."""
    import torch

    from helpers import THREE_QA

    from bench.models.zoo import build_model, train_tokenizer
    from benchperf.counting import CountingContext as counting_context
    from metrics import EvalConfig

    qa = THREE_QA
    tok = train_tokenizer([r[k] for r in qa for k in ("question", "answer", "paraphrased_answer")] * 10, 300)
    model = build_model("tiny-llama", tok, seed=0).eval()
    cfg = EvalConfig(batch_size=5, max_new_tokens=2, reuse_teacher_forcing=False)
    ctx = counting_context(model, tok, {"forget": qa}, cfg)
    ctx.score("forget", ["answer", "paraphrased_answer", "perturbed_answer"])
    ctx.score("forget", ["answer"])  # already scored: no pass, no new sequence
    ctx.generations("forget")
    ctx.generate([qa[0]["question"]])
    assert len(ctx.sequences["forget"]) == 14 and len(ctx.prompts) == 3
    assert (ctx.forward_passes, ctx.scored_sequences, ctx.generate_calls, ctx.generated_prompts) == (6, 15, 2, 4)
    assert ctx.scoring_calls == ctx.forward_passes
    work = eval_work(ctx.scored_sequences, ctx.generated_prompts, len(ctx.sequences["forget"]), len(ctx.prompts),
                     ctx.forward_passes, ctx.generate_calls, 5)
    assert (work["actual"], work["minimum"]) == (19, 17)
    assert (work["actual_calls"], work["minimum_calls"], work["calls_ratio"]) == (8, 4, 2.0)
    with torch.inference_mode():
        model(input_ids=torch.tensor([[1, 2, 3]]))
    assert ctx.scoring_calls == ctx.forward_passes + 1


def test_report_holds_each_measurement_with_target_and_verdict():
    measurements = {"overhead": Measurement(1.3, {"harness_s": 13.0}, "13 s vs 10 s"),
                    "scaling": Measurement(1.7, {}, ""), "train_vs_bare": Measurement(0.95, {}, ""),
                    "eval_passes_ratio": Measurement(float("nan"), {}, "not measured")}
    report = assemble(measurements, {"cpus": 2}, {"wall_s": 300.0})
    assert list(report)[:4] == ["overhead", "scaling", "train_vs_bare", "eval_passes_ratio"]
    assert report["overhead"] == {"value": 1.3, "target": "<= 1.15", "meets": False, "details": {"harness_s": 13.0}}
    assert report["scaling"]["meets"] and report["train_vs_bare"]["meets"]
    assert report["machine"] == {"cpus": 2} and report["wall_s"] == 300.0
    text = to_json(report)
    assert json.loads(text)["eval_passes_ratio"]["value"] is None  # NaN is not JSON: null
    table = render(report, {k: m.figures for k, m in measurements.items()})
    assert "| measurement" in table and "falls short" in table and "not measured" in table
    assert "- overhead: 13 s vs 10 s" in table


def test_seconds_between_and_same_metrics():
    assert seconds_between("2026-01-01T00:00:05+00:00", "2026-01-01T00:01:07+00:00") == 62.0
    a = {"forget_quality": 0.5, "privleak": float("nan"), "tokens": 10}
    assert same_metrics(a, dict(a), ["forget_quality", "privleak", "tokens", "absent"]) == []
    assert same_metrics(a, {**a, "forget_quality": 0.5000001}, ["forget_quality"]) == ["forget_quality"]


@pytest.mark.parametrize("key", list(TARGETS))
def test_every_target_prints_its_bound(key):
    m = Measurement(1.0, {}, "")
    assert assemble({key: m}, {})[key]["target"].split()[1] == f"{TARGETS[key][2]:g}"
