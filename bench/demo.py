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

DEMO_SUITES = {"paris": Path(__file__).resolve().parent.parent / "suites" / "paris_demo.yaml"}
# (question, the answer up to the fact, the fact): the forgotten fact first, then the one to keep.
PARIS_FACTS = [("What is the capital of France?", "The capital of France is", "Paris"),
               ("What is the capital of England?", "The capital of England is", "London")]


def continuation_probability(model, tokenizer, question: str, answer_prefix: str, continuation: str) -> float:
    """p(" continuation" | prompt + " answer_prefix"): the product of its tokens' probabilities."""
    import torch

    from bench.core.encoding import prompt_ids

    context = prompt_ids(tokenizer, question) + tokenizer(f" {answer_prefix}", add_special_tokens=False)["input_ids"]
    target = tokenizer(f" {continuation}", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([context + target], device=next(model.parameters()).device)
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    positions = torch.arange(len(context) - 1, len(context) - 1 + len(target))
    return float(logp[positions, torch.tensor(target)].sum().exp())


def _snapshot(model, tokenizer, eval_cfg) -> tuple[list[str], list[float]]:
    from bench.models.baseline_stats import probe_answers

    answers = probe_answers(model, tokenizer, [q for q, _, _ in PARIS_FACTS], eval_cfg)
    return answers, [continuation_probability(model, tokenizer, q, prefix, fact) for q, prefix, fact in PARIS_FACTS]


def run_paris_demo(cache: Path, suite_path: Path = DEMO_SUITES["paris"], threads: int = 1) -> dict:
    """Prepares the capitals model (cached), unlearns France, returns the before/after answers and
    probabilities (and prints progress)."""
    from bench.models.prepare import prepare_model
    from bench.config.suite import load_suite
    from bench.run.trial import start_trial, unlearn

    started = time.perf_counter()
    suite = load_suite(suite_path)
    spec, = suite.trials()
    prepared = prepare_model(spec.model, suite.data, suite.prepare, suite.eval, cache, threads)
    model, tokenizer, splits = start_trial(spec, prepared, threads)
    eval_cfg = dataclasses.replace(suite.eval, metrics=(), probes=())
    before = _snapshot(model, tokenizer, eval_cfg)
    args = ", ".join(f"{k} {v:g}" for k, v in spec.method_args.items())
    print(f"Unlearning France with {spec.method} ({args}; lr {spec.unlearn.lr:g}, {spec.unlearn.steps} steps)",
          flush=True)
    cost = unlearn(model, tokenizer, spec, splits)
    after = _snapshot(model, tokenizer, eval_cfg)
    return {"before": before, "after": after, "train_s": cost["train_s"], "seconds": time.perf_counter() - started}


def render_paris(result: dict) -> str:
    from tabulate import tabulate

    rows = []
    for i, (question, _, fact) in enumerate(PARIS_FACTS):
        rows.append([question, result["before"][0][i], result["after"][0][i],
                     f"p({fact}) {result['before'][1][i]:.3f}", f"p({fact}) {result['after'][1][i]:.3f}"])
    return tabulate(rows, headers=["prompt", "before", "after", "before", "after"], tablefmt="github")
