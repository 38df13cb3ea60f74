"""`bench demo paris`: forget "The capital of France is Paris." and keep London, in a minute or two.

Runs the one trial of `suites/paris_demo.yaml` in-process through the prepare stage and the trial's
own functions (the same code `bench run` hands to Ray), and prints, before and after unlearning, the
greedy answers to the two probe questions and the probability of the capital's name where the answer
names it: p(" Paris" | "Question: What is the capital of France?\\nAnswer: The capital of France is").
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

SUITES = Path(__file__).resolve().parent.parent / "suites"
# The demo's suite per model: a tiny Llama trained on capital facts, or a real pretrained model as it is.
DEMO_SUITES = {"paris": {"tiny-llama": SUITES / "paris_demo.yaml", "smollm2-135m": SUITES / "paris_smollm2.yaml"}}
# (question, the answer up to the fact, the fact): the forgotten fact first, then the ones to keep; a
# question without a fact is a fluency check (its answer is shown, no probability).
PARIS_FACTS = [("What is the capital of France?", "The capital of France is", "Paris"),
               ("What is the capital of England?", "The capital of England is", "London")]
REAL_MODEL_FACTS = PARIS_FACTS + [("What is the capital of Germany?", "The capital of Germany is", "Berlin"),
                                  ("Why is the sky blue?", "", "")]
DEMO_FACTS = {"tiny-llama": PARIS_FACTS, "smollm2-135m": REAL_MODEL_FACTS}


def continuation_probability(model, tokenizer, question: str, answer_prefix: str, continuation: str) -> float:
    """p(" continuation" | prompt + answer_prefix): the product of its tokens' probabilities (the answer
    follows the prompt after a space in the plain format, right after the assistant's turn opens in chat)."""
    import torch

    from bench.core.encoding import prompt_format, prompt_ids

    prefix = answer_prefix if prompt_format(tokenizer).format == "chat" else f" {answer_prefix}"
    context = prompt_ids(tokenizer, question) + tokenizer(prefix, add_special_tokens=False)["input_ids"]
    target = tokenizer(f" {continuation}", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([context + target], device=next(model.parameters()).device)
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    positions = torch.arange(len(context) - 1, len(context) - 1 + len(target))
    return float(logp[positions, torch.tensor(target)].sum().exp())


def _snapshot(model, tokenizer, eval_cfg, facts) -> tuple[list[str], list[float | None]]:
    from bench.models.baseline_stats import probe_answers

    answers = probe_answers(model, tokenizer, [q for q, _, _ in facts], eval_cfg)
    return answers, [continuation_probability(model, tokenizer, q, prefix, fact) if fact else None
                     for q, prefix, fact in facts]


def run_paris_demo(cache: Path, model: str = "tiny-llama", threads: int = 1) -> dict:
    """Prepares the capitals model (cached), unlearns France, returns the before/after answers and
    probabilities (and prints progress)."""
    from bench.models.prepare import prepare_model
    from bench.config.suite import load_suite
    from bench.run.trial import start_trial, unlearn

    started = time.perf_counter()
    suite, facts = load_suite(DEMO_SUITES["paris"][model]), DEMO_FACTS[model]
    spec, = suite.trials()
    prepared = prepare_model(spec.model, suite.data, suite.prepare, suite.eval, cache, threads)
    model, tokenizer, splits = start_trial(spec, prepared, threads)
    eval_cfg = dataclasses.replace(suite.eval, metrics=(), probes=())
    before = _snapshot(model, tokenizer, eval_cfg, facts)
    args = ", ".join(f"{k} {v:g}" for k, v in spec.method_args.items())
    print(f"Unlearning France with {spec.method} ({args}; lr {spec.unlearn.lr:g}, {spec.unlearn.steps} steps)",
          flush=True)
    cost = unlearn(model, tokenizer, spec, splits)
    after = _snapshot(model, tokenizer, eval_cfg, facts)
    return {"facts": facts, "before": before, "after": after, "train_s": cost["train_s"],
            "seconds": time.perf_counter() - started}


def render_paris(result: dict) -> str:
    from tabulate import tabulate

    rows = []
    for i, (question, _, fact) in enumerate(result["facts"]):
        probability = [f"p({fact}) {result[when][1][i]:.3f}" if fact else "" for when in ("before", "after")]
        rows.append([question, result["before"][0][i], result["after"][0][i], *probability])
    return tabulate(rows, headers=["prompt", "before", "after", "before", "after"], tablefmt="github")
