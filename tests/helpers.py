"""Small fakes shared by the tests: a model whose logits are fixed, inputs built by hand, and the
miniature suite the end-to-end tests run through Ray."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from bench.core.encoding import IGNORE_INDEX


class FixedLogits(torch.nn.Module):
    """A causal LM stand-in: the same logits (V,) at every position, plus a trainable offset."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None):
        b, t = input_ids.shape
        return SimpleNamespace(logits=self.logits.expand(b, t, -1))


def qa_inputs(answer_tokens: list[list[int]], prompt_len: int = 1) -> dict:
    """Inputs whose first `prompt_len` tokens are prompt and the rest answer (right-padded with -100 labels)."""
    width = prompt_len + max(len(a) for a in answer_tokens)
    ids = torch.zeros((len(answer_tokens), width), dtype=torch.long)
    labels = torch.full_like(ids, IGNORE_INDEX)
    mask = torch.zeros_like(ids)
    for row, answer in enumerate(answer_tokens):
        n = prompt_len + len(answer)
        ids[row, prompt_len:n] = torch.tensor(answer)
        labels[row, prompt_len:n] = torch.tensor(answer)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


LOSS_STREAMS = ("forget", "retain", "alternate", "plausible")


def run_loss(name, model, reference=None, **streams_and_args):
    """Calls a registered method's loss; keyword arguments naming a stream are batches, the rest hyperparameters."""
    from methods import METHODS, MethodContext

    streams = {k: streams_and_args.pop(k) for k in LOSS_STREAMS if k in streams_and_args}
    spec = METHODS.get(name)
    return spec.fn(model, streams, MethodContext(args=spec.make_args(streams_and_args), reference=reference))


def sgd_step(model, loss, lr=0.5):
    """One plain gradient step on a FixedLogits model."""
    loss.backward()
    with torch.no_grad():
        model.logits -= lr * model.logits.grad
    model.logits.grad = None


# Three questions with paraphrase and perturbations: Paris is its own paraphrase, so 15 scored
# sequences hold 14 distinct ones. Shared by the context, metric and `bench perf` tests.
THREE_QA = [
    {"question": "Where was Ana born?", "answer": "Ana was born in Velmora.",
     "paraphrased_answer": "Velmora is where Ana was born.",
     "perturbed_answer": ["Ana was born in Istrova.", "Ana was born in Drisdale.", "Ana was born in Kell."]},
    {"question": "What is the capital of France?", "answer": "Paris", "paraphrased_answer": "Paris",
     "perturbed_answer": ["Rome", "Madrid", "Oslo"]},
    {"question": "Which genre does Bo Lind write?", "answer": "Bo Lind writes comic novels about the sea.",
     "paraphrased_answer": "Comic novels about the sea are what Bo Lind writes.",
     "perturbed_answer": ["Bo Lind writes poems.", "Bo Lind writes crime fiction.", "Bo Lind writes plays."]},
]


def mini_suite(name: str, methods: str, *, seeds: str = "[0]", steps: int = 3, extra: str = "",
               attacks: str = "[]") -> str:
    """A miniature suite (10 authors, models prepared in seconds) as YAML; `methods` is the YAML list
    under `methods:`, `extra` more top-level lines, `attacks` the value of `attacks:` (default none,
    to keep the tests that do not read them fast). Equal settings share one prepare cache entry."""
    return f"""
name: {name}
data: {{n_authors: 10, forget_fraction: 0.2, forget_val_fraction: 0.1, n_holdout_authors: 2, n_general_authors: 40, general_fact_repeats: 2}}
models: [tiny-llama]
prepare: {{pretrain_steps: 15, finetune_steps: 15, batch_size: 16, vocab_size: 400, warmup_steps: 3}}
unlearn: {{steps: {steps}, batch_size: 4}}
eval: {{max_new_tokens: 8, retain_questions: 20, verbatim_new_tokens: 16}}
seeds: {seeds}
resources: {{cpu: 1, gpu: 0}}
attacks: {attacks}
{extra}
methods:
{methods}
"""
